"""python-telegram-bot's requests to the Bot API, made with aiohttp.

python-telegram-bot talks HTTP through a :class:`~telegram.request.BaseRequest`, httpx by
default, and documents the class as the place to plug in another asyncio HTTP library. Each
button press costs three requests (the next step, the answer to the press, the mark on the
pressed message) and every reminder and alert one more, on a single event loop: measured on
the same local server, a request through httpx costs about 0.8-1 ms of processor time and one
through aiohttp 0.1-0.2 ms. The rest (JSON, status codes, Telegram's errors) stays
python-telegram-bot's.

Time-outs keep their python-telegram-bot meaning as far as aiohttp has them: getting a
connection, waiting for a free one in the pool and opening it, is bounded by ``pool_timeout`` +
``connect_timeout`` together (aiohttp does not tell the two apart), opening it by
``connect_timeout`` alone; ``read_timeout`` bounds the wait between two reads of the answer.
aiohttp has no write time-out of its own: the whole request is bounded by the sum of the four.
A time-out raises :class:`~telegram.error.TimedOut`, any other failure to talk to the server
:class:`~telegram.error.NetworkError`, as with httpx.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, cast

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

if TYPE_CHECKING:
    from telegram._utils.types import ODVInput


class AiohttpRequest(BaseRequest):
    """A :class:`~telegram.request.BaseRequest` on an :class:`aiohttp.ClientSession`.

    ``connection_pool_size`` connections at most (to the one Bot API server); a request that
    cannot get one within ``pool_timeout`` + ``connect_timeout`` raises TimedOut unsent.
    """

    def __init__(
        self,
        *,
        connection_pool_size: int = 256,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        if connection_pool_size < 1:
            raise ValueError("connection_pool_size must be at least 1")
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str], str | None] = {}

    @property
    def read_timeout(self) -> float | None:
        """The default read timeout, in seconds (python-telegram-bot adds it to getUpdates's
        long-polling timeout)."""
        return self._read_timeout

    async def initialize(self) -> None:
        """Open the connection pool (again, after a shutdown)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        """Close the connection pool."""
        if self._session is not None and not self._session.closed:
            await self._session.close()

    def _proxy_for(self, url: str) -> str | None:
        """The proxy of the environment (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY) for a
        server, as httpx would use it; read once per server rather than at each request."""
        parts = urllib.parse.urlsplit(url)
        key = (parts.scheme, parts.hostname or "")
        if key not in self._proxies:
            proxies = urllib.request.getproxies()
            proxy = proxies.get(parts.scheme) or proxies.get("all")
            if proxy and urllib.request.proxy_bypass(parts.netloc):
                proxy = None
            self._proxies[key] = proxy or None
        return self._proxies[key]

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Send one request; returns the status code and the body."""
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        read = _given(read_timeout, self._read_timeout)
        connect = _given(connect_timeout, self._connect_timeout)
        pool = _given(pool_timeout, self._pool_timeout)
        write = _given(write_timeout, self._media_write_timeout if files else self._write_timeout)
        timeout = aiohttp.ClientTimeout(
            total=_sum(read, write, connect, pool),
            connect=_sum(pool, connect),
            sock_connect=connect,
            sock_read=read,
        )
        body: aiohttp.FormData | dict[str, str] | None = None
        if request_data is not None:
            body = request_data.json_parameters
            if files:
                form = aiohttp.FormData(body)
                for name, (filename, content, mime) in files.items():
                    form.add_field(name, content, filename=filename, content_type=mime)
                body = form
        proxy = self._proxy_for(url)
        try:
            async with session.request(
                method, url, data=body, timeout=timeout, proxy=proxy
            ) as response:
                return response.status, await response.read()
        except TimeoutError as error:  # aiohttp's own time-outs are TimeoutErrors too
            raise TimedOut from error
        except (aiohttp.ClientError, OSError) as error:
            raise NetworkError(f"aiohttp.{type(error).__name__}: {error}") from error


def _given(seconds: ODVInput[float], default: float | None) -> float | None:
    """A time limit passed to a call, or the default one when the call left it out."""
    if seconds is BaseRequest.DEFAULT_NONE:
        return default
    return cast("float | None", seconds)


def _sum(*seconds: float | None) -> float | None:
    """The sum of time limits, None (no limit) if any of them is None."""
    if any(s is None for s in seconds):
        return None
    return float(sum(s for s in seconds if s is not None))
