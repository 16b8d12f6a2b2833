"""The periodic check of the stored wake-ups against the chains, as the operator's log shows it."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import pytest

from bot import application


class Escalator:
    """Answers each resync with the next (restored, removed) pair, then stops the loop."""

    def __init__(self, results: list[tuple[int, int]], stop: asyncio.Event) -> None:
        self.results = results
        self.stop = stop

    async def resync(self) -> tuple[int, int]:
        result = self.results.pop(0)
        if not self.results:
            self.stop.set()
        return result


async def _resyncs(results: list[tuple[int, int]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(application, "RESYNC_EVERY", 0.01)
    stop = asyncio.Event()
    runtime = SimpleNamespace(escalator=Escalator(results, stop))
    await asyncio.wait_for(application._keep_in_sync(runtime, stop), 5)  # type: ignore[arg-type]


async def test_restored_wakeups_are_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="bot.application"):
        await _resyncs([(0, 0), (2, 1)], monkeypatch)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["wake-ups resynced: 2 restored, 1 obsolete removed"]


async def test_obsolete_jobs_alone_are_tidied_without_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="bot.application"):
        await _resyncs([(0, 1), (0, 0)], monkeypatch)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in caplog.records] == ["wake-ups resynced: 1 obsolete removed"]
