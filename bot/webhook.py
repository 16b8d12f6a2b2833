"""Webhook mode: the address Telegram posts updates to, closed to anyone without the secret."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import Update
from telegram.ext import Application

log = logging.getLogger(__name__)

PATH = "/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - the header's name


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signals to the program it runs in."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """The program handles SIGINT and SIGTERM itself (it sets the stop event)."""
        yield


class WebhookReceiver:
    """Takes Telegram's POSTs on ``/telegram`` and queues their updates for the application.

    A request without the right secret token (``X-Telegram-Bot-Api-Secret-Token``) gets 403
    before its body is read; each refusal is logged with the remote address and the path,
    never the header's value, and counted in :attr:`refused`.
    """

    def __init__(self, application: Application[Any, Any, Any, Any, Any, Any], secret: str):
        if not secret:
            raise ValueError("the webhook needs a secret token")
        self.application = application
        self.refused = 0
        self._secret = secret.encode()
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self.asgi = Starlette(routes=[Route(PATH, self.receive, methods=["POST"])])

    def _authentic(self, request: Request) -> bool:
        supplied = request.headers.get(SECRET_HEADER)
        if supplied is None:
            return False
        # Starlette decodes headers as Latin-1: encoding back gives the bytes that came.
        return hmac.compare_digest(supplied.encode("latin-1"), self._secret)

    async def receive(self, request: Request) -> Response:
        """One request from Telegram (or from anyone who found the address)."""
        if not self._authentic(request):
            self.refused += 1
            log.warning(
                "webhook request refused (%s secret token) from %s to %s: %d refused so far",
                "wrong" if SECRET_HEADER in request.headers else "no",
                request.client.host if request.client else "an unknown address",
                request.url.path,
                self.refused,
            )
            return Response(status_code=403)
        try:
            update = Update.de_json(json.loads(await request.body()), self.application.bot)
        except Exception as error:  # anything unreadable: Telegram's own retries will not help
            log.warning("webhook: an update could not be read (%s)", type(error).__name__)
            return Response(status_code=400)
        await self.application.update_queue.put(update)
        return Response()

    async def start(self, host: str, port: int) -> None:
        """Listen on host:port (in this event loop) until :meth:`stop`."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            listener = socket.create_server((host, port), family=family)
        except OSError as error:
            raise RuntimeError(
                f"the webhook cannot listen on {host}:{port}: {error.strerror}"
            ) from None
        config = uvicorn.Config(
            self.asgi,
            log_config=None,
            log_level="warning",
            access_log=False,
            proxy_headers=False,
            server_header=False,
            lifespan="off",
        )
        self._server = _EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[listener]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError(f"the webhook stopped before listening on {host}:{port}")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop listening, and say how many requests were refused."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
            self._server = self._task = None
        log.info("webhook stopped: %d request(s) refused for want of the secret", self.refused)
