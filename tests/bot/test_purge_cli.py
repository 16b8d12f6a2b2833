"""The purge as operators meet it: config.yml, `sexto purge`, and the bot's nightly job."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import select

from bot.application import serve
from bot.retention import JOB_ID, RetentionService, plan_lines, report_lines
from bot.runtime import Runtime
from bot.scheduler import Wakeups
from bot.settings import Config, ConfigError, parse_config
from storage.models import AuditEntry
from storage.repositories import EnrollmentAttempts
from tests.conftest import TEST_CONFIG, settings_for
from tests.support.botapi import BotApiServer
from tests.support.clock import FrozenClock
from tests.support.jobs import stored_job_ids
from tests.support.messenger import RecordingMessenger
from tests.support.process import environment, run, write_config
from tests.support.retention import (
    BEFORE_OPENING,
    CANCEL_REASON,
    EVENT_NUMBER,
    STILL_OPEN,
    TYPED,
    stored_text,
    tell_story,
)

RETENTION = {"transcript_days": 30, "incident_days": 180}
TOKEN = "123456789:AAtest-token_for_the_purge"


@pytest.fixture
def config() -> Config:
    """The test configuration with short retention periods."""
    return parse_config(dict(TEST_CONFIG, retention=RETENTION))


async def audit_entries(runtime: Runtime) -> list[AuditEntry]:
    async with runtime.sessions() as session:
        rows = await session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "retention_purge")
            .order_by(AuditEntry.id)
        )
        return list(rows.all())


# ---- config.yml -------------------------------------------------------------------------------


def test_the_shipped_defaults() -> None:
    retention = parse_config(TEST_CONFIG).retention
    assert (retention.transcript_days, retention.incident_days) == (90, 365)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"transcript_days": 400}, "retention: transcript_days (400) must not be more than"),
        ({"transcript_days": 0}, "retention.transcript_days: Input should be greater than"),
        ({"incident_days": -5}, "retention.incident_days: Input should be greater than"),
        ({"incident_days": "a year"}, "retention.incident_days: Input should be a valid integer"),
        ({"incident_days": 12.5}, "retention.incident_days: Input should be a valid integer"),
        ({"transcript_days": True}, "retention.transcript_days: Input should be a valid integer"),
        ({"keep_forever": True}, "retention.keep_forever: unknown key"),
    ],
)
def test_bad_retention_settings_are_named(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(yaml.safe_load(yaml.safe_dump(dict(TEST_CONFIG, retention=values))))
    assert message in str(error.value)


# ---- what sexto purge prints -------------------------------------------------------------------


async def test_the_dry_run_table_then_the_counts(
    runtime: Runtime, clock: FrozenClock, config: Config
) -> None:
    story = await tell_story(runtime, clock)
    service = RetentionService(runtime.sessions, clock, config)
    assert plan_lines(await service.plan(), config)[0].startswith("Nothing is due")

    clock.current = story.closed_at + timedelta(days=30)
    await service.run("command")  # the conversations go
    clock.current = story.closed_at + timedelta(days=180, minutes=5)
    before = await stored_text(runtime)
    lines = plan_lines(await service.plan(), config)
    assert await stored_text(runtime) == before
    assert lines[:3] == [
        "code          school                    closed            what",
        "SX-2026-0001  École secondaire du Nord  2026-11-23 09:58  anonymise",
        "SX-2026-0002  École secondaire du Nord  2026-11-23 10:28  anonymise",
    ]
    assert lines[-2:] == [
        "Would remove the conversation of 0 incident(s) (closed more than 30 days ago), "
        "anonymise 2 incident(s) (more than 180 days ago), and clear 2 chat message(s) "
        "outside incidents.",  # the question and answer before the open incident began
        "Dry run: nothing was changed.",
    ]
    assert await audit_entries(runtime)
    assert len(await audit_entries(runtime)) == 1

    assert report_lines(await service.run("command"), config) == [
        "Removed the conversation of 0 incident(s), anonymised 2 incident(s), cleared 2 chat "
        "message(s) outside incidents.",
        "Recorded in the audit log.",
    ]
    again = report_lines(await service.run("command"), config)
    assert again[0].startswith("Nothing is due: no incident closed or cancelled more than 30")
    assert [e.data["trigger"] for e in await audit_entries(runtime)] == ["command"] * 3


async def test_an_owed_run_happens_at_start_up(
    runtime: Runtime, clock: FrozenClock, config: Config
) -> None:
    service = RetentionService(runtime.sessions, clock, config)
    assert await service.catch_up() is not None  # never ran
    clock.advance(hours=23)
    assert await service.catch_up() is None  # ran less than a day ago
    clock.advance(hours=2)
    assert await service.catch_up() is not None
    assert [e.data["trigger"] for e in await audit_entries(runtime)] == ["start-up"] * 2


# ---- the nightly job ---------------------------------------------------------------------------


async def test_the_nightly_job_is_stored_once_and_runs(
    runtime: Runtime, clock: FrozenClock, config: Config, database_url: str
) -> None:
    story = await tell_story(runtime, clock)
    clock.current = story.closed_at + timedelta(days=31)
    wakeups = Wakeups(database_url, runtime.escalator.fire)
    await wakeups.start()
    try:
        service = RetentionService(runtime.sessions, clock, config)
        next_run = await service.start(wakeups)
        job = wakeups.scheduler.get_job(JOB_ID)
        assert job is not None
        assert next_run == job.next_run_time
        local = next_run.astimezone(ZoneInfo("America/Montreal")) if next_run else None
        assert local is not None
        assert (local.hour, local.minute) == (3, 30)
        assert job.coalesce is True
        assert job.misfire_grace_time == 6 * 3600
        assert [e.data["trigger"] for e in await audit_entries(runtime)] == ["start-up"]

        clock.current = story.closed_at + timedelta(days=181)
        # What the scheduler's thread does at 03:30: call the stored job.
        await asyncio.to_thread(job.func, *job.args)
        entries = await audit_entries(runtime)
        assert [e.data["trigger"] for e in entries] == ["start-up", "daily"]
        assert entries[-1].data["anonymised"] == 2
        assert EVENT_NUMBER not in await stored_text(runtime)
    finally:
        await wakeups.shutdown()

    # A restart registers the job again without a second copy, and owes no run yet.
    again = Wakeups(database_url, runtime.escalator.fire)
    await again.start()
    try:
        await RetentionService(runtime.sessions, clock, config).start(again)
        assert [j.id for j in again.scheduler.get_jobs() if j.id == JOB_ID] == [JOB_ID]
        assert len(await audit_entries(runtime)) == 2
    finally:
        await again.shutdown()


async def test_the_bot_schedules_the_purge_when_it_starts(
    config: Config, database_url: str
) -> None:
    async with BotApiServer(token=TOKEN) as server:
        settings = settings_for(
            config, database_url, telegram_token=TOKEN, telegram_api_url=server.url
        )
        runtime = Runtime.create(settings)
        runtime.escalator.messenger = RecordingMessenger()
        await runtime.prepare_database()
        stop = asyncio.Event()
        serving = asyncio.create_task(serve(runtime, stop, poll_timeout=1))
        try:
            await server.wait_for_call("getUpdates")
            assert JOB_ID in await asyncio.to_thread(stored_job_ids, database_url)
            [entry] = await audit_entries(runtime)  # a first start owes a run
            assert entry.data["trigger"] == "start-up"
        finally:
            stop.set()
            await serving
            await runtime.close()


# ---- the command itself ------------------------------------------------------------------------


@pytest.mark.slow
async def test_sexto_purge_lists_then_applies(
    config: Config, database_url: str, tmp_path: Path
) -> None:
    # The command reads the real clock, so the incidents are made in the real past.
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0) - timedelta(days=400))
    runtime = Runtime.create(settings_for(config, database_url), clock=clock)
    runtime.escalator.messenger = RecordingMessenger()
    await runtime.prepare_database()
    try:
        story = await tell_story(runtime, clock)
        async with runtime.sessions() as session, session.begin():
            await EnrollmentAttempts(session).record_wrong(
                777, clock.now(), window=timedelta(minutes=15), limit=5, lockout=timedelta(hours=1)
            )
        env = environment(write_config(tmp_path, retention=RETENTION), database_url)
        before = await stored_text(runtime)

        dry = run(env, "purge", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        rows = [line.split() for line in dry.stdout.splitlines()[1:3]]
        assert [(r[0], " ".join(r[-3:])) for r in rows] == [
            (story.closed, "transcript + anonymise"),
            (story.drill, "transcript + anonymise"),
        ]
        assert "anonymise 2 incident(s)" in dry.stdout
        assert "Would forget 1 wrong enrollment code attempt(s)" in dry.stdout
        assert "Dry run: nothing was changed." in dry.stdout
        assert story.open not in dry.stdout
        assert await stored_text(runtime) == before

        real = run(env, "purge")
        assert real.returncode == 0, real.stderr
        assert "Removed the conversation of 2 incident(s), anonymised 2 incident(s)" in real.stdout
        assert "Forgot 1 wrong enrollment code attempt(s)" in real.stdout
        everything = await stored_text(runtime)
        for sentence in (TYPED, BEFORE_OPENING, CANCEL_REASON, EVENT_NUMBER):
            assert sentence not in everything
        assert STILL_OPEN in everything

        again = run(env, "purge")
        assert again.returncode == 0, again.stderr
        assert again.stdout.startswith("Nothing is due")
        assert [e.data["trigger"] for e in await audit_entries(runtime)] == ["command"] * 2
    finally:
        await runtime.close()
