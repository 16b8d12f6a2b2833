"""The Rasa server dies mid-conversation: the answers keep coming, from the embedded engine.

A Rasa 3.6 server of our own is started on a free port from ``SEXTO_TEST_RASA_BIN`` and
``SEXTO_TEST_RASA_MODEL`` (exported by the Makefile; ``make rasa-train`` builds them). Without
them the test is skipped with the reason, except in CI (``CI=true``) where it fails.

Which engine understood each message is read from the timeline: the confidence recorded with
it is Rasa's before the kill and the embedded engine's after.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from nlu.cli import rasa_reachable
from nlu.embedded import EmbeddedInterpreter
from nlu.interpreters import SafeInterpreter
from nlu.rasa_client import RasaInterpreter
from storage.crypto import KeyRing
from storage.database import create_engine, session_factory
from storage.models import EventKind, TimelineEvent
from tests.conftest import TEST_ENCRYPTION_KEY
from tests.support.chaos import TOKEN, Deployment, professionals
from tests.support.databases import in_ci
from tests.support.fleet import crew
from tests.support.loadserver import StampedBotApiServer
from tests.support.professionals import Sample, has_button, says

pytestmark = pytest.mark.slow

RASA_BIN = os.environ.get("SEXTO_TEST_RASA_BIN", "")
RASA_MODEL = os.environ.get("SEXTO_TEST_RASA_MODEL", "")
TIMEOUT_S = 0.5
# A question and the start of its answer; both engines understand each one.
QUESTIONS = (
    ("can I look at the photo to check?", "⛔ No. Never look at the images"),
    ("should I forward the picture to the principal?", "⛔ No. Never forward"),
    ("the mother wants the phone back, what do I say", "No: do not give any phone back"),
    ("do I have to call the DPJ?", "If you see signs of sexual abuse"),
    ("who calls the parents?", "Parents receive the kit's information sheets"),
    ("est-ce que je peux regarder la photo?", "⛔ No. Never look at the images"),
)


def _free_port() -> int:
    """A TCP port nobody listens on at the moment."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def rasa_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Our own Rasa server (still loading when yielded); killed at the end whatever happens."""
    if not (RASA_BIN and RASA_MODEL and Path(RASA_BIN).exists() and Path(RASA_MODEL).exists()):
        reason = "set SEXTO_TEST_RASA_BIN and SEXTO_TEST_RASA_MODEL (make rasa-train) to run this"
        if in_ci():
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)
    port = _free_port()
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}
    with (tmp_path / "rasa.log").open("wb") as log:
        server = subprocess.Popen(
            [
                *(RASA_BIN, "run", "--enable-api", "--model", RASA_MODEL),
                *("--interface", "127.0.0.1", "--port", str(port)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(timeout=30)


async def _wait_for_rasa(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    """Until Rasa answers /status (at most 180 s)."""
    deadline = time.monotonic() + 180
    while not await asyncio.to_thread(rasa_reachable, url, 1.0):
        assert server.poll() is None, log.read_text(errors="replace")[-2000:]
        assert time.monotonic() < deadline, "the Rasa server did not start in 180 s"
        await asyncio.sleep(0.5)


async def _confidences(database_url: str) -> dict[str, list[float]]:
    """Each typed message of the timeline and the confidence recorded with it."""
    engine = create_engine(database_url, KeyRing([TEST_ENCRYPTION_KEY]))
    try:
        async with session_factory(engine)() as session:
            rows = await session.scalars(
                select(TimelineEvent)
                .where(TimelineEvent.kind == EventKind.MESSAGE_IN)
                .order_by(TimelineEvent.id)
            )
            found: dict[str, list[float]] = {}
            for row in rows:
                if "text" in row.data:
                    found.setdefault(row.data["text"], []).append(row.data["confidence"])
            return found
    finally:
        await engine.dispose()


async def test_answers_keep_coming_when_the_rasa_server_dies(
    rasa_server: tuple[str, subprocess.Popen[bytes]],
    tmp_path: Path,
    chaos_rng: random.Random,
) -> None:
    url, rasa = rasa_server
    seats = crew(1)
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'sexto.db'}"
    async with StampedBotApiServer(token=TOKEN, bot_username="sexto_chaos_bot") as server:
        deployment = await Deployment.start(
            server,
            tmp_path,
            database_url,
            seats,
            nlu={"engine": "rasa", "rasa_url": url, "timeout": f"{TIMEOUT_S * 1000:g}ms"},
            escalation={"stalled_after": "1h"},
        )
        try:
            await _wait_for_rasa(url, rasa, tmp_path / "rasa.log")
            chat = deployment.chats[professionals(seats)[0]]
            chat.timeout = 10.0
            step = await chat.send("/incident", has_button("Real situation"))
            step = await chat.press(step, "Real situation", has_button("No immediate danger"))
            # Rasa's first parse is slow (it warms up): one untimed question first.
            chat.timeout = 30.0
            await chat.send("hello", has_button("No immediate danger"))
            chat.timeout = 10.0
            kill_at = chaos_rng.randrange(2, len(QUESTIONS) - 1)
            direct = SafeInterpreter(RasaInterpreter(url, timeout=5.0))
            embedded = SafeInterpreter(EmbeddedInterpreter.from_data())
            expected: dict[str, float] = {}
            answered: list[Sample] = []
            try:
                for index, (question, answer) in enumerate(QUESTIONS):
                    if index == kill_at:
                        rasa.send_signal(signal.SIGKILL)
                        await asyncio.to_thread(rasa.wait, 30)
                    await chat.send(question, says(answer))
                    await chat.expect(has_button("No immediate danger"), chat.samples[-1].at)
                    answered.append(chat.samples[-1])
                    engine = direct if index < kill_at else embedded
                    expected[question] = round((await engine.parse(question)).confidence, 3)
            finally:
                await direct.aclose()
            step = await chat.press(
                chat.latest(has_button("No immediate danger")),
                "No immediate danger",
                has_button("Understood"),
            )
        finally:
            await deployment.stop()
    slowest = max(s.first_ms for s in answered)
    assert slowest < (TIMEOUT_S + 1.5) * 1000, [round(s.first_ms) for s in answered]
    # Which engine understood each question: Rasa's confidence before the kill, then the
    # embedded engine's.
    recorded = {q: values[-1] for q, values in (await _confidences(database_url)).items()}
    assert {q: recorded[q] for q, _ in QUESTIONS} == expected
