"""The wake-up scheduler: where its jobs live, and that they come on time."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.events import EVENT_JOB_SUBMITTED
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from bot import scheduler
from bot.runtime import Runtime
from bot.scheduler import Wakeups, jobs_url
from tests.support.jobs import stored_job_ids


def test_a_sqlite_database_keeps_its_jobs_in_a_file_beside_it() -> None:
    assert jobs_url("sqlite+aiosqlite:///var/sexto.db") == "sqlite:///var/sexto-jobs.db"
    assert jobs_url("sqlite+aiosqlite:////srv/data/main.sqlite") == (
        "sqlite:////srv/data/main-jobs.sqlite"
    )
    assert jobs_url("sqlite+aiosqlite:///:memory:") == "sqlite:///:memory:"


def test_postgresql_keeps_its_jobs_in_the_database() -> None:
    url = "postgresql+asyncpg://sexto:pw@db.example:5432/sexto"
    assert jobs_url(url) == "postgresql+psycopg://sexto:pw@db.example:5432/sexto"


async def test_a_wake_up_is_stored_while_a_bot_transaction_is_writing(
    runtime: Runtime, database_url: str
) -> None:
    """A busy database must not hold reminders back: storing a wake-up does not queue behind
    the bot's own transactions (on SQLite, one writer at a time)."""
    fired: list[int] = []

    async def handler(escalation_id: int) -> None:
        fired.append(escalation_id)

    wakeups = Wakeups(database_url, handler)
    await wakeups.start()
    try:
        async with runtime.sessions() as session, session.begin():
            # A transaction that has written and is still open holds SQLite's write lock.
            await session.execute(text("UPDATE schools SET name = name WHERE id = 'nord'"))
            started = time.monotonic()
            at = datetime.now(UTC) + timedelta(milliseconds=300)
            await asyncio.wait_for(wakeups.schedule(41, at), timeout=3)
            took = time.monotonic() - started
        assert took < 3
        assert "escalation-41" in await asyncio.to_thread(stored_job_ids, database_url)
        for _ in range(50):
            if fired:
                break
            await asyncio.sleep(0.1)
        assert fired == [41]
    finally:
        await wakeups.shutdown()


async def test_a_wake_up_due_while_the_previous_one_is_still_at_work_still_comes(
    tmp_path: Path,
) -> None:
    """A slow wake-up (a busy moment) that sets its chain's next one, due before it ends: the
    next one runs too, it is not dropped as "already running"."""
    calls: list[float] = []
    wakeups: Wakeups

    async def slow(escalation_id: int) -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            await wakeups.schedule(escalation_id, datetime.now(UTC) + timedelta(seconds=0.3))
            await asyncio.sleep(1.0)

    wakeups = Wakeups(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}", slow)
    await wakeups.start()
    try:
        await wakeups.schedule(7, datetime.now(UTC) + timedelta(seconds=0.2))
        for _ in range(40):
            if len(calls) == 2:
                break
            await asyncio.sleep(0.1)
        assert len(calls) == 2
        assert calls[1] - calls[0] < 1.0  # on time, not after the first one finished
    finally:
        await wakeups.shutdown()


async def test_a_wake_up_at_work_is_known_as_busy_until_it_ends(tmp_path: Path) -> None:
    """A fired job is gone from the store while its wake-up runs or waits its turn: the resync
    must be able to tell that chain from one whose wake-up was lost."""
    release = asyncio.Event()
    started: list[int] = []

    async def slow(escalation_id: int) -> None:
        started.append(escalation_id)
        await release.wait()

    wakeups = Wakeups(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}", slow)
    await wakeups.start()
    try:
        await wakeups.schedule(7, datetime.now(UTC) + timedelta(seconds=0.1))
        with wakeups.watch() as seen:
            await wakeups.schedule(8, datetime.now(UTC) + timedelta(seconds=0.1))
            for _ in range(50):
                if len(started) == 2:
                    break
                await asyncio.sleep(0.05)
            assert sorted(started) == [7, 8]
            assert await wakeups.scheduled() == {}  # both jobs are gone from the store
            assert seen == {7, 8}  # 8 started within the block
        with wakeups.watch() as seen:
            assert seen == {7, 8}  # still at work when the block started
        release.set()
        for _ in range(50):
            with wakeups.watch() as seen:
                if not seen:
                    break
            await asyncio.sleep(0.05)
        assert seen == set()
    finally:
        release.set()
        await wakeups.shutdown()


async def test_a_wake_up_handed_over_but_not_yet_run_is_known_as_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """APScheduler deletes a one-off job from the store as it hands it to a job thread; while
    the threads are busy, the chain must already count as at work, or the resync would take
    its wake-up for lost and store it again (running it twice)."""
    gate = threading.Event()
    real_wake = scheduler.wake

    def held(key: str, escalation_id: int) -> None:
        gate.wait(5)
        real_wake(key, escalation_id)

    fired: list[float] = []
    wakeups = Wakeups(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}", _record(fired))
    await wakeups.start()
    try:
        await wakeups.schedule(9, datetime.now(UTC) + timedelta(seconds=0.3))
        # A stored job finds its function by its path when it is due: the threads are busy.
        monkeypatch.setattr(scheduler, "wake", held)
        deadline = time.monotonic() + 5
        while await wakeups.scheduled():
            assert time.monotonic() < deadline, "the job was never handed over"
            await asyncio.sleep(0.02)
        with wakeups.watch() as seen:
            assert seen == {9}
        assert fired == []
        gate.set()
        await _until(lambda: len(fired) == 1)
        await _until(lambda: not _busy(wakeups))
    finally:
        gate.set()
        await wakeups.shutdown()


def _busy(wakeups: Wakeups) -> set[int]:
    with wakeups.watch() as seen:
        return set(seen)


async def test_a_repeating_wake_up_comes_on_its_beat_without_being_stored_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 911 chain's wake-up repeats every period: the next reminder on the same beat needs no
    write of the job store; a time off the beat replaces the job, and a cancel ends it."""
    fired: list[float] = []
    wakeups = Wakeups(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}", _record(fired))
    writes: list[str] = []
    add_job = wakeups.scheduler.add_job

    def counted(*args: Any, **kwargs: Any) -> Any:
        writes.append(kwargs["id"])
        return add_job(*args, **kwargs)

    monkeypatch.setattr(wakeups.scheduler, "add_job", counted)
    every = timedelta(seconds=0.4)
    await wakeups.start()
    try:
        first = datetime.now(UTC) + timedelta(seconds=0.3)
        started = time.monotonic() + 0.3
        await wakeups.schedule(5, first, every)
        await _until(lambda: len(fired) == 1)
        await wakeups.schedule(5, first + every, every)  # the next reminder, on the beat
        await wakeups.schedule(5, first + 2 * every, every)
        assert writes == ["escalation-5"]
        await _until(lambda: len(fired) == 3)
        lateness = [t - (started + n * 0.4) for n, t in enumerate(fired)]
        assert all(-0.05 < late < 0.2 for late in lateness), lateness

        off = datetime.now(UTC) + timedelta(seconds=0.25)  # after periods were skipped
        await wakeups.schedule(5, off, every)
        assert writes == ["escalation-5"] * 2
        assert await wakeups.scheduled() == {5: off}
        await _until(lambda: len(fired) == 4)

        await wakeups.cancel(5)
        assert await wakeups.scheduled() == {}
        await asyncio.sleep(0.6)
        assert len(fired) == 4  # no more after the cancel
        # Cancelled, the beat is forgotten: a wake-up on it is stored again.
        back = off + 3 * every
        await wakeups.schedule(5, back, every)
        assert await wakeups.scheduled() == {5: back}
        assert writes == ["escalation-5"] * 3
    finally:
        await wakeups.shutdown()


async def test_wake_ups_stored_after_the_next_one_planned_cost_the_scheduler_no_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many incidents opened at once store many wake-ups. Those that come after the one the
    scheduler's thread already waits for do not each send it over the job store (queries in a
    thread that shares the interpreter with the people's replies); one that comes before it
    still wakes the thread. All of them come on time."""
    fired: dict[int, float] = {}

    async def handler(escalation_id: int) -> None:
        fired[escalation_id] = time.monotonic()

    wakeups = Wakeups(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}", handler)
    passes: list[float] = []
    process_jobs = wakeups.scheduler._process_jobs

    def counted() -> Any:
        passes.append(time.monotonic())
        return process_jobs()

    monkeypatch.setattr(wakeups.scheduler, "_process_jobs", counted)
    await wakeups.start()
    try:
        now, started = datetime.now(UTC), time.monotonic()
        due = {1: 1.5, **{chain: 2.0 + chain / 50 for chain in range(2, 22)}, 99: 1.0}
        await wakeups.schedule(1, now + timedelta(seconds=due[1]))
        await asyncio.sleep(0.2)
        before = len(passes)
        for chain in range(2, 22):
            await wakeups.schedule(chain, now + timedelta(seconds=due[chain]))
        await asyncio.sleep(0.2)
        assert len(passes) == before
        await wakeups.schedule(99, now + timedelta(seconds=due[99]))  # before the one planned
        await _until(lambda: len(fired) == len(due))
        lateness = {chain: fired[chain] - started - due[chain] for chain in due}
        assert all(-0.05 < late < 0.2 for late in lateness.values()), lateness
    finally:
        await wakeups.shutdown()


async def test_a_wake_up_stored_as_the_scheduler_finishes_a_pass_still_comes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass over the store that read it before a wake-up was stored (the thread still handing
    over a due one) must look again: otherwise that wake-up would wait for the next one the pass
    planned, here none at all."""
    fired: dict[int, float] = {}

    async def handler(escalation_id: int) -> None:
        fired[escalation_id] = time.monotonic()

    wakeups = Wakeups(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}", handler)
    handing_over, release = threading.Event(), threading.Event()
    dispatch = wakeups.scheduler._dispatch_event

    def held(event: Any) -> None:
        # After the pass has read the store and let go of it, before it plans its next look.
        if event.code == EVENT_JOB_SUBMITTED and event.job_id == "escalation-1":
            handing_over.set()
            release.wait(5)
        dispatch(event)

    monkeypatch.setattr(wakeups.scheduler, "_dispatch_event", held)
    await wakeups.start()
    try:
        await wakeups.schedule(1, datetime.now(UTC) + timedelta(seconds=0.2))
        assert await asyncio.to_thread(handing_over.wait, 5)
        started = time.monotonic()
        await wakeups.schedule(2, datetime.now(UTC) + timedelta(seconds=0.3))
        release.set()
        await _until(lambda: 2 in fired)
        assert fired[2] - started < 0.3 + 0.2
    finally:
        release.set()
        await wakeups.shutdown()


async def test_a_repeating_wake_up_stored_late_still_comes_at_its_time(tmp_path: Path) -> None:
    """A wake-up whose time passed while it was being stored (a busy moment) comes at once,
    not a period later."""
    fired: list[float] = []
    wakeups = Wakeups(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}", _record(fired))
    await wakeups.start()
    try:
        at = datetime.now(UTC) - timedelta(seconds=0.5)
        started = time.monotonic()
        await asyncio.to_thread(wakeups._schedule, 3, at, timedelta(seconds=5))
        await _until(lambda: len(fired) == 1)
        assert fired[0] - started < 1.0
        assert await wakeups.scheduled() == {3: at + timedelta(seconds=5)}
    finally:
        await wakeups.shutdown()


async def test_wake_ups_keep_coming_after_the_job_store_fails_in_the_scheduler_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The database failing just as the scheduler moves a fired job on (a server restart at
    that moment) neither ends the wake-ups nor loses the beat: the pass is tried again."""
    fired: list[float] = []
    wakeups = Wakeups(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}", _record(fired))
    monkeypatch.setattr(wakeups.scheduler, "jobstore_retry_interval", 0.3)
    update_job = wakeups.store.update_job
    failures: list[str] = []

    def failing_once(job: Any) -> None:
        if threading.current_thread().name == "APScheduler" and not failures:
            failures.append(job.id)
            raise OperationalError(
                "UPDATE apscheduler_jobs", {}, Exception("server closed the connection")
            )
        update_job(job)

    monkeypatch.setattr(wakeups.store, "update_job", failing_once)
    await wakeups.start()
    try:
        await wakeups.schedule(
            4, datetime.now(UTC) + timedelta(seconds=0.2), timedelta(seconds=0.4)
        )
        await _until(lambda: len(fired) >= 4)
        assert failures == ["escalation-4"]
        assert wakeups.scheduler._thread.is_alive()
        assert "the job store failed (OperationalError" in caplog.text
    finally:
        await wakeups.shutdown()


def _record(fired: list[float]) -> Callable[[int], Coroutine[Any, Any, None]]:
    async def handler(escalation_id: int) -> None:
        fired.append(time.monotonic())

    return handler


async def _until(done: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not done():
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.02)
