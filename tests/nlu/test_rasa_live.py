"""Against a live Rasa 3.6 server (`make rasa-start`): skipped when none answers, unless CI.

The server's URL comes from SEXTO_TEST_RASA_URL (default http://127.0.0.1:5005). With
CI=true a missing server fails these tests instead of skipping them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nlu.cli import rasa_reachable
from nlu.embedded import DEFAULT_DATA_DIR, EmbeddedInterpreter
from nlu.evaluation import evaluate
from nlu.interpreters import SafeInterpreter, build_interpreter
from nlu.rasa_client import FallbackInterpreter, RasaInterpreter
from nlu.settings import NluSettings
from nlu.training_data import load_training_data
from nlu.types import (
    ASK_CALL_911,
    CONFIRM_911_CALLED,
    CONFIRM_DEVICES_SECURED,
    DENY,
    DEVICE_COUNT,
    EMERGENCY,
    EVENT_NUMBER,
    OUT_OF_SCOPE,
)
from tests.nlu.conftest import HOLDOUT

RASA_URL = os.environ.get("SEXTO_TEST_RASA_URL", NluSettings().rasa_url)


@pytest.fixture(scope="module")
def rasa_url() -> str:
    """The live server's URL; skip (or fail under CI) when it does not answer."""
    if not rasa_reachable(RASA_URL):
        reason = f"no Rasa server at {RASA_URL} (run `make rasa-start` or set SEXTO_TEST_RASA_URL)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)
    return RASA_URL


@pytest.fixture
async def rasa(rasa_url: str) -> AsyncIterator[RasaInterpreter]:
    """A client of the live server with a generous timeout (its first call warms up)."""
    interpreter = RasaInterpreter(rasa_url, timeout=5.0)
    try:
        yield interpreter
    finally:
        await interpreter.aclose()


async def test_live_parse_maps_intent_and_entities(rasa: RasaInterpreter) -> None:
    parse = await rasa.parse("j'ai mis les trois cells dans les sacs")
    assert parse.intent == CONFIRM_DEVICES_SECURED
    assert parse.entity(DEVICE_COUNT) == "3"
    called = await rasa.parse("j'ai appelé le 911, numéro d'événement 2026-104522")
    assert called.intent == CONFIRM_911_CALLED
    assert called.entity(EVENT_NUMBER) == "2026-104522"


async def test_live_negation_and_question_are_not_confirmations(rasa: RasaInterpreter) -> None:
    pipeline = SafeInterpreter(rasa)
    assert (await pipeline.parse("j'ai pas encore appelé le 911")).intent == DENY
    assert (await pipeline.parse("should I call 911?")).intent == ASK_CALL_911


@pytest.mark.parametrize(
    "text",
    [
        "où est le local 204?",
        "when is the staff meeting",
        "what's the procedure to book the gym for the grad ceremony",
    ],
)
async def test_live_the_bot_s_pipeline_says_what_is_out_of_scope(
    rasa_url: str, model_cache: Path, text: str
) -> None:
    """Rasa alone read these as protocol questions (911, confidentiality, the phones)."""
    settings = NluSettings(engine="rasa", rasa_url=rasa_url, timeout=5.0, cache_dir=model_cache)
    pipeline = build_interpreter(settings)
    try:
        assert (await pipeline.parse(text)).intent == OUT_OF_SCOPE
    finally:
        await pipeline.aclose()


async def test_live_pipeline_meets_the_targets_on_the_holdout(
    rasa: RasaInterpreter, model_cache: Path
) -> None:
    embedded = EmbeddedInterpreter.from_data(DEFAULT_DATA_DIR, cache_dir=model_cache)
    fallback = FallbackInterpreter(rasa, embedded)
    await fallback.parse("bonjour")
    fallback.fallbacks = 0
    report = await evaluate(
        SafeInterpreter(fallback), load_training_data([HOLDOUT]).examples, engine="rasa"
    )
    assert fallback.fallbacks == 0
    assert report.accuracy >= 0.90
    assert report.emergency_recall == 1.0
    assert report.scores(EMERGENCY).recall == 1.0


RASA_BIN = os.environ.get("SEXTO_TEST_RASA_BIN", "")
RASA_MODEL = os.environ.get("SEXTO_TEST_RASA_MODEL", "")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_the_bot_keeps_answering_when_the_rasa_server_dies(tmp_path: Path) -> None:
    """A Rasa server of our own is started, used, killed: the embedded engine takes over."""
    import asyncio
    import subprocess
    import time

    from nlu.interpreters import build_interpreter

    if not (RASA_BIN and RASA_MODEL and Path(RASA_BIN).exists() and Path(RASA_MODEL).exists()):
        reason = "set SEXTO_TEST_RASA_BIN and SEXTO_TEST_RASA_MODEL (make rasa-train) to run this"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}
    with (tmp_path / "rasa.log").open("wb") as log:
        server = subprocess.Popen(
            [
                RASA_BIN,
                "run",
                "--enable-api",
                "--interface",
                "127.0.0.1",
                "--port",
                str(port),
                "--model",
                RASA_MODEL,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
    interpreter = build_interpreter(NluSettings(engine="rasa", rasa_url=url, timeout=5.0))
    try:
        deadline = time.monotonic() + 180
        while not rasa_reachable(url, timeout=1.0):
            assert server.poll() is None, (tmp_path / "rasa.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the Rasa server did not start in 180 s"
            await asyncio.sleep(1)
        fallback = interpreter.engine
        assert isinstance(fallback, FallbackInterpreter)
        live = await interpreter.parse("la mère veut ravoir le cellulaire")
        assert fallback.fallbacks == 0
        assert live.intent == "ask_return_device"

        server.kill()
        server.wait(timeout=30)
        started = time.monotonic()
        after = await interpreter.parse("je peux transférer la photo au directeur?")
        assert fallback.fallbacks == 1
        assert after.intent == "ask_share_image"
        assert time.monotonic() - started < 5.5
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=30)
        await interpreter.aclose()
