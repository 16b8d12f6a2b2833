"""The Rasa HTTP interpreter against a fake Rasa server, and the fallback when it fails."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from nlu.rasa_client import FallbackInterpreter, NluUnavailableError, RasaInterpreter
from nlu.types import NLU_FALLBACK, Entity, Parse

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

RASA_ANSWER: dict[str, Any] = {
    "text": "j'ai mis les trois cells dans les sacs",
    "intent": {"name": "confirm_devices_secured", "confidence": 0.97},
    "entities": [
        {
            "entity": "device_count",
            "start": 13,
            "end": 18,
            "value": "3",
            "extractor": "DIETClassifier",
            "processors": ["EntitySynonymMapper"],
        }
    ],
    "intent_ranking": [
        {"name": "confirm_devices_secured", "confidence": 0.97},
        {"name": "ask_device_handling", "confidence": 0.02},
        {"name": "deny", "confidence": 0.01},
    ],
}


class FakeRasa:
    """A stand-in for `rasa run --enable-api`: records requests, answers as told."""

    def __init__(self) -> None:
        """Answer RASA_ANSWER until told otherwise."""
        self.requests: list[Any] = []
        self.answer: dict[str, Any] = RASA_ANSWER
        self.delay = 0.0
        self.status = 200

    async def parse(self, request: web.Request) -> web.StreamResponse:
        """POST /model/parse."""
        self.requests.append(await request.json())
        await asyncio.sleep(self.delay)
        if self.status != 200:
            return web.Response(status=self.status, text="boom")
        return web.json_response(self.answer)


@pytest.fixture
async def fake_rasa() -> AsyncIterator[tuple[FakeRasa, str]]:
    """A fake Rasa server on a free local port, and its URL."""
    fake = FakeRasa()
    app = web.Application()
    app.router.add_post("/model/parse", fake.parse)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield fake, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


class Local:
    """The fallback engine: answers "local"."""

    def __init__(self) -> None:
        """Count calls."""
        self.calls = 0

    async def parse(self, text: str) -> Parse:
        """Answer a fixed intent."""
        self.calls += 1
        return Parse(text, "greet", 1.0, (("greet", 1.0),), ())


async def test_maps_rasa_answer(fake_rasa: tuple[FakeRasa, str]) -> None:
    fake, url = fake_rasa
    rasa = RasaInterpreter(url)
    try:
        parse = await rasa.parse("j'ai mis les trois cells dans les sacs")
    finally:
        await rasa.aclose()
    assert fake.requests == [{"text": "j'ai mis les trois cells dans les sacs"}]
    assert parse.intent == "confirm_devices_secured"
    assert parse.confidence == 0.97
    assert parse.ranking[:2] == (("confirm_devices_secured", 0.97), ("ask_device_handling", 0.02))
    assert parse.entities == (Entity("device_count", "3", 13, 18),)


async def test_rasa_fallback_intent_uses_our_threshold(fake_rasa: tuple[FakeRasa, str]) -> None:
    fake, url = fake_rasa
    fake.answer = {
        "intent": {"name": NLU_FALLBACK, "confidence": 0.4},
        "entities": [],
        "intent_ranking": [
            {"name": NLU_FALLBACK, "confidence": 0.4},
            {"name": "greet", "confidence": 0.3},
            {"name": "thank", "confidence": 0.25},
        ],
    }
    async with httpx.AsyncClient() as client:
        parse = await RasaInterpreter(url, client=client).parse("hmm")
        assert parse.intent == NLU_FALLBACK
        assert parse.confidence == 0.3
        assert parse.ranking[0] == ("greet", 0.3)
        lenient = await RasaInterpreter(url, client=client, threshold=0.2).parse("hmm")
        assert lenient.intent == "greet"


@pytest.mark.parametrize("answer", [{"intent": None}, {"entities": [{"entity": "x"}]}, []])
async def test_incoherent_answer_is_unavailable(
    fake_rasa: tuple[FakeRasa, str], answer: Any
) -> None:
    fake, url = fake_rasa
    fake.answer = answer
    async with httpx.AsyncClient() as client:
        with pytest.raises(NluUnavailableError):
            await RasaInterpreter(url, client=client).parse("x")


async def test_falls_back_when_rasa_is_down(
    closed_port_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    local = Local()
    interpreter = FallbackInterpreter(RasaInterpreter(closed_port_url), local)
    with caplog.at_level(logging.WARNING, logger="nlu.rasa_client"):
        parse = await interpreter.parse("bonjour")
    await interpreter.aclose()
    assert parse.intent == "greet"
    assert local.calls == 1
    assert interpreter.fallbacks == 1
    assert "falls back" in caplog.text


async def test_falls_back_when_rasa_is_slow(fake_rasa: tuple[FakeRasa, str]) -> None:
    fake, url = fake_rasa
    fake.delay = 1.0
    local = Local()
    interpreter = FallbackInterpreter(RasaInterpreter(url, timeout=0.1), local)
    loop = asyncio.get_running_loop()
    start = loop.time()
    parse = await interpreter.parse("bonjour")
    elapsed = loop.time() - start
    await interpreter.aclose()
    assert parse.intent == "greet"
    assert elapsed < 0.5


async def test_falls_back_on_server_error(fake_rasa: tuple[FakeRasa, str]) -> None:
    fake, url = fake_rasa
    fake.status = 500
    local = Local()
    interpreter = FallbackInterpreter(RasaInterpreter(url), local)
    assert (await interpreter.parse("bonjour")).intent == "greet"
    await interpreter.aclose()


async def test_dead_server_is_left_alone_then_retried(fake_rasa: tuple[FakeRasa, str]) -> None:
    fake, url = fake_rasa
    fake.status = 503
    now = [100.0]
    local = Local()
    interpreter = FallbackInterpreter(
        RasaInterpreter(url), local, retry_after=30.0, monotonic=lambda: now[0]
    )
    await interpreter.parse("un")
    await interpreter.parse("deux")
    assert len(fake.requests) == 1  # the second message did not wait on Rasa
    fake.status = 200
    now[0] += 31.0
    parse = await interpreter.parse("trois")
    await interpreter.aclose()
    assert parse.intent == "confirm_devices_secured"
    assert len(fake.requests) == 2
    assert local.calls == 2
