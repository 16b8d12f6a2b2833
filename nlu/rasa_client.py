"""The Rasa engine over HTTP (POST /model/parse), and the fallback when it is slow or down."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from nlu.types import NLU_FALLBACK, Entity, Interpreter, Parse, decide

logger = logging.getLogger(__name__)


class NluUnavailableError(RuntimeError):
    """The remote engine did not answer in time, or answered nonsense."""


class RasaInterpreter:
    """Client of a Rasa server started with `rasa run --enable-api`."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 0.5,
        threshold: float = 0.4,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        """Talk to the server at url; the client is ours to close unless one is given."""
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.threshold = threshold
        self._client = client or httpx.AsyncClient(timeout=timeout, trust_env=False)
        self._owns_client = client is None

    async def parse(self, text: str) -> Parse:
        """Ask the server; raise NluUnavailableError if it is slow, down or incoherent."""
        try:
            async with asyncio.timeout(self.timeout):
                response = await self._client.post(
                    f"{self.url}/model/parse", json={"text": text}, timeout=self.timeout
                )
            response.raise_for_status()
            body = response.json()
        except (TimeoutError, httpx.HTTPError, ValueError) as error:
            raise NluUnavailableError(f"Rasa at {self.url}: {error!r}") from error
        return self._to_parse(text, body)

    def _to_parse(self, text: str, body: Any) -> Parse:
        """Map Rasa's answer to a Parse, applying our own threshold to its ranking."""
        try:
            ranking = tuple(
                (str(item["name"]), float(item["confidence"]))
                for item in body.get("intent_ranking") or [body["intent"]]
                if item.get("name") and item["name"] != NLU_FALLBACK
            )
            entities = tuple(
                Entity(
                    name=str(item["entity"]),
                    value=str(item["value"]),
                    start=int(item["start"]),
                    end=int(item["end"]),
                )
                for item in body.get("entities") or []
            )
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            raise NluUnavailableError(f"Rasa at {self.url}: bad answer {body!r}") from error
        return decide(text, ranking, entities, self.threshold)

    async def aclose(self) -> None:
        """Close the HTTP client if this interpreter made it."""
        if self._owns_client:
            await self._client.aclose()


class FallbackInterpreter:
    """Use the primary engine; when it is unavailable, answer with the fallback silently.

    After a failure the primary is left alone for `retry_after` seconds, so a dead server
    costs one timeout, not one per message.
    """

    def __init__(
        self,
        primary: RasaInterpreter,
        fallback: Interpreter,
        *,
        retry_after: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Wrap a remote primary engine and a local fallback."""
        self.primary = primary
        self.fallback = fallback
        self.retry_after = retry_after
        self.fallbacks = 0
        self._monotonic = monotonic
        self._skip_until = float("-inf")

    async def parse(self, text: str) -> Parse:
        """Understand one message with the primary engine, or else the fallback."""
        if self._monotonic() >= self._skip_until:
            try:
                return await self.primary.parse(text)
            except NluUnavailableError as error:
                self._skip_until = self._monotonic() + self.retry_after
                logger.warning("NLU falls back to the embedded engine: %s", error)
        self.fallbacks += 1
        return await self.fallback.parse(text)

    async def aclose(self) -> None:
        """Close the primary engine's connections."""
        await self.primary.aclose()
