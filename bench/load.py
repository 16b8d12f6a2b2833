"""One load run: N simulated professionals running whole incidents against the real bot process.

The bot (``sexto run``, or the echo bot of :mod:`bench.echo`, with or without its log in
PostgreSQL) is a separate process polling a local Bot API server
(:class:`~tests.support.loadserver.StampedBotApiServer`) that runs with the simulated users in
this process. Each professional walks one incident (buttons and typed text), pausing ``think``
seconds between actions; an officer per school acknowledges every alert.
Latency is measured on the server: from a user's update being enqueued to the bot's reply
reaching the server. Afterwards the database is audited against what the server received.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import re
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import asyncpg
from sqlalchemy import make_url

from bench.echo import DATABASE as ECHO_LOG_URL
from storage.models import EscalationKind, Role
from tests.support.audit import audit_deliveries, audit_reminders, read_ledger, timeline_problems
from tests.support.chaos import SourceBotProcess
from tests.support.databases import postgres_available, postgres_database
from tests.support.fleet import create_codes, crew, enroll
from tests.support.loadserver import StampedBotApiServer
from tests.support.process import BotProcess, environment, run, write_config
from tests.support.professionals import (
    Chat,
    IncidentRun,
    OfficerDesk,
    Sample,
    echo_session,
    professional_incident,
    thinker,
)

TOKEN = "123456789:AAload-bench_token_for_sexto"
Target = Literal["sqlite", "postgres", "echo", "echo-postgres"]
TARGETS: tuple[Target, ...] = ("echo", "echo-postgres", "sqlite", "postgres")  # in run order
ECHOES = ("echo", "echo-postgres")  # the floors: bench.echo, without and with its log
ON_POSTGRES = ("postgres", "echo-postgres")


@dataclass(frozen=True)
class Scenario:
    """What to run: which bot and database, how many users, how fast they act."""

    target: Target
    users: int
    think: tuple[float, float] = (3.0, 9.0)
    reminder_every: float = 3.0
    seed: int = 2026
    reply_timeout: float = 60.0
    run_timeout: float = 600.0
    nlu_engine: str = "embedded"
    bot_source: Path | None = None
    concurrent_updates: int = 32
    max_messages_per_second: int = 0


@dataclass
class Result:
    """The figures of one run (milliseconds unless named otherwise)."""

    target: str
    users: int
    finished: int = 0
    stuck: list[str] = field(default_factory=list)
    actions: int = 0
    updates_per_s: float = 0.0
    first_p50: float = 0.0
    first_p95: float = 0.0
    first_p99: float = 0.0
    first_max: float = 0.0
    step_p50: float = 0.0
    step_p95: float = 0.0
    step_p99: float = 0.0
    peak_rss_mb: float = 0.0
    cpu_ms_per_update: float | None = None
    reminders: int = 0
    reminder_late_median: float | None = None
    reminder_late_max: float | None = None
    reminders_missed: int = 0
    reminders_duplicated: int = 0
    reminder_skipped_periods: int = 0
    alerts: int = 0
    alert_latency_median: float | None = None
    alert_latency_max: float | None = None
    alerts_missed: int = 0
    alerts_duplicated: int = 0
    deliveries: int = 0
    deliveries_missing: int = 0
    deliveries_duplicated: int = 0
    deliveries_failed: int = 0
    timeline_problems: int = 0
    bot_errors: int = 0
    bot_warnings: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    skipped: str | None = None
    by_action: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict, lists of problems cut to a few examples."""
        data = dict(self.__dict__)
        data["stuck"] = self.stuck[:3]
        data["problems"] = self.problems[:5]
        return data


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (share in 0..1) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(share * len(ordered) + 0.5)))
    return ordered[rank - 1]


def peak_rss_mb(pid: int) -> float:
    """The peak resident set size of a live process (VmHWM), in MiB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return 0.0
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, flags=re.MULTILINE)
    return int(found.group(1)) / 1024 if found else 0.0


def cpu_seconds(pid: int) -> float | None:
    """The processor time a live process has used so far, user and system, in seconds."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return None
    # The name, in parentheses, may hold spaces: the fields are counted after it.
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def database(target: Target, folder: Path) -> AsyncIterator[str]:
    """A fresh database for the run."""
    if target in ON_POSTGRES:
        async with postgres_database() as url:
            yield url
    else:
        yield f"sqlite+aiosqlite:///{folder / 'load.db'}"


def _latencies(result: Result, samples: list[Sample]) -> None:
    """Fill in the latency percentiles."""
    if not samples:
        return
    first = [s.first_ms for s in samples]
    done = [s.done_ms for s in samples]
    result.actions = len(samples)
    result.first_p50 = round(percentile(first, 0.50), 1)
    result.first_p95 = round(percentile(first, 0.95), 1)
    result.first_p99 = round(percentile(first, 0.99), 1)
    result.first_max = round(max(first), 1)
    result.step_p50 = round(percentile(done, 0.50), 1)
    result.step_p95 = round(percentile(done, 0.95), 1)
    result.step_p99 = round(percentile(done, 0.99), 1)
    kinds: dict[str, list[float]] = {}
    for sample in samples:
        kinds.setdefault(_kind(sample.action), []).append(sample.first_ms)
    result.by_action = {
        kind: {
            "n": len(values),
            "p50": round(percentile(values, 0.50), 1),
            "p95": round(percentile(values, 0.95), 1),
            "max": round(max(values), 1),
        }
        for kind, values in sorted(kinds.items())
    }


def _kind(action: str) -> str:
    """An action's kind for the per-kind figures: the button's label, or typed text."""
    if action.startswith("button:"):
        return action
    return action.split(":", 1)[0]


async def _drive(
    scenario: Scenario,
    server: StampedBotApiServer,
    chats: dict[int, Chat],
    professionals: list[int],
    desks: list[OfficerDesk],
) -> tuple[list[IncidentRun], float]:
    """Run every professional's incident concurrently; returns the runs and the duration."""
    stop = asyncio.Event()
    serving = [asyncio.create_task(desk.serve(stop)) for desk in desks]
    low, high = scenario.think

    async def one(user_id: int) -> IncidentRun:
        rng = random.Random(scenario.seed * 1_000_003 + user_id)
        await asyncio.sleep(rng.uniform(0, high))
        chat = chats[user_id]
        if scenario.target in ECHOES:
            return await echo_session(chat, rng, thinker(rng, low, high))
        return await professional_incident(chat, rng, thinker(rng, low, high))

    started = time.monotonic()
    tasks = [asyncio.create_task(one(user_id)) for user_id in professionals]
    try:
        await asyncio.wait(tasks, timeout=scenario.run_timeout)
        duration = time.monotonic() - started
        await asyncio.sleep(1.5)  # late reminders, alerts and acknowledgements
    finally:
        for task in tasks:
            task.cancel()
        stop.set()
        await asyncio.gather(*serving, *tasks, return_exceptions=True)
    runs = []
    for user_id, task in zip(professionals, tasks, strict=True):
        if task.cancelled() or task.exception() is not None:
            runs.append(IncidentRun(user_id, error=f"not done in {scenario.run_timeout:g}s"))
        else:
            runs.append(task.result())
    return runs, duration


@contextlib.contextmanager
def _no_collector_pauses() -> Iterator[None]:
    """No garbage collection in the harness while it measures.

    The local server stamps each reply when it reads it, in this process: a pause here shows
    as the bot's latency, whichever bot runs. With 200 people, what the harness records grew
    until its full collections took 84 to 146 ms, every 30 s. Reference counting still frees
    what it can; the rest is collected once the load is over.
    """
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


async def run_scenario(scenario: Scenario, folder: Path) -> Result:
    """Run one scenario in ``folder`` and measure it."""
    result = Result(scenario.target, scenario.users)
    if scenario.target in ON_POSTGRES and (problem := await postgres_available()):
        result.skipped = problem
        return result
    every = timedelta(seconds=scenario.reminder_every)
    config = write_config(
        folder,
        escalation={
            "call_911_reminder_every": f"{scenario.reminder_every:g}s",
            "call_911_reminders_before_escalation": 3,
            "officer_ack_timeout": "30s",
            "officer_alert_repeats": 1,
            "stalled_after": "1h",
        },
        nlu={"engine": scenario.nlu_engine},
        telegram={
            "concurrent_updates": scenario.concurrent_updates,
            "max_messages_per_second": scenario.max_messages_per_second,
        },
    )
    started = time.monotonic()
    async with (
        database(scenario.target, folder) as url,
        StampedBotApiServer(token=TOKEN, bot_username="sexto_load_bot") as server,
    ):
        env = environment(config, url, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=server.url)
        seats = crew(scenario.users)
        bot: BotProcess
        if scenario.target in ECHOES:
            seats = [s for s in seats if s.role is Role.PROFESSIONAL]
            if scenario.target == "echo-postgres":
                env[ECHO_LOG_URL] = _asyncpg_dsn(url)
            bot = EchoProcess(env, folder / "echo.log")
        else:
            if scenario.bot_source is not None:
                bot = SourceBotProcess(env, folder / "bot.log", scenario.bot_source)
                initialised = await asyncio.to_thread(bot.init)
            else:
                bot = BotProcess(env, folder / "bot.log")
                initialised = await asyncio.to_thread(run, env, "init")
            if initialised.returncode != 0:
                raise RuntimeError(f"sexto init failed: {initialised.stderr}")
            codes = await create_codes(url, seats)
        bot.start()
        try:
            await server.polling(within=120)
            if scenario.target in ECHOES:
                chats = {
                    s.user_id: Chat(
                        server,
                        server.add_user(s.user_id, s.name, language_code="en"),
                        timeout=scenario.reply_timeout,
                    )
                    for s in seats
                }
            else:
                chats = await enroll(server, seats, codes, reply_within=scenario.reply_timeout)
            professionals = [s.user_id for s in seats if s.role is Role.PROFESSIONAL]
            desks = [
                OfficerDesk(chats[s.user_id], random.Random(s.user_id))
                for s in seats
                if s.role is Role.OFFICER
            ]
            first_update = server._next_update_id
            assert bot.process is not None
            cpu_before = cpu_seconds(bot.process.pid)
            with _no_collector_pauses():
                runs, duration = await _drive(scenario, server, chats, professionals, desks)
            updates = server._next_update_id - first_update
            cpu_after = cpu_seconds(bot.process.pid)
            result.peak_rss_mb = round(peak_rss_mb(bot.process.pid), 1)
            if cpu_before is not None and cpu_after is not None and updates:
                result.cpu_ms_per_update = round(1000 * (cpu_after - cpu_before) / updates, 2)
        finally:
            await asyncio.to_thread(bot.stop)
        calls = server.calls
        samples = [s for chat in chats.values() for s in chat.samples if s.at > 0]
        samples = [s for s in samples if not s.action.startswith("command:/start")]
        _latencies(result, samples)
        result.updates_per_s = round(updates / duration, 1) if duration else 0.0
        result.finished = sum(r.finished for r in runs)
        result.stuck = [r.error or "" for r in runs if not r.finished]
        log = bot.output()
        result.bot_errors = log.count("Traceback") + len(re.findall(r" ERROR ", log))
        warnings = re.findall(r" WARNING (.*)$", log, re.M)
        result.bot_warnings = len(warnings)
        # Distinct kinds of warning, numbers taken out ("chain 12 failed" = "chain 7 failed").
        kinds = {re.sub(r"\d+", "N", line)[:160] for line in warnings}
        result.problems += sorted(kinds)[:3]
        errors = re.findall(r"^[\w.]*(?:Error|Exception|Timeout)\w*: .*$", log, re.M)
        result.problems += sorted({line[:200] for line in errors})[:5]
        if scenario.target == "echo-postgres":
            await _audit_echo_log(result, url)
        elif scenario.target != "echo":
            await _audit(result, url, calls, every, runs, desks)
    result.seconds = round(time.monotonic() - started, 1)
    return result


def _asyncpg_dsn(url: str) -> str:
    """The SQLAlchemy URL of a test database as asyncpg takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _audit_echo_log(result: Result, url: str) -> None:
    """The echo bot's log holds every update it answered, and its reply."""
    connection = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        updates = await connection.fetchval("SELECT coalesce(sum(updates), 0) FROM echo_state")
        rows = await connection.fetchval("SELECT count(*) FROM echo_log")
    finally:
        await connection.close()
    if updates != result.actions or rows != 2 * result.actions:
        result.problems.append(
            f"echo log: {updates} updates and {rows} rows for {result.actions} answered actions"
        )


class EchoProcess(BotProcess):
    """The echo bot of :mod:`bench.echo` in the background, like ``sexto run``."""

    def start(self) -> None:
        """Start the echo bot."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bench.echo"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )


async def _audit(
    result: Result,
    url: str,
    calls: list[Any],
    every: timedelta,
    runs: list[IncidentRun],
    desks: list[OfficerDesk],
) -> None:
    """Reminders, alerts, deliveries and timelines against what the server received."""
    ledger = await read_ledger(url)
    deliveries = audit_deliveries(ledger, calls)
    result.deliveries = deliveries.deliveries
    result.deliveries_missing = len(deliveries.missing)
    result.deliveries_duplicated = len(deliveries.duplicated)
    result.deliveries_failed = len(deliveries.failed)
    result.problems += deliveries.missing + deliveries.duplicated + deliveries.failed
    reminders = audit_reminders(ledger, calls, every)
    result.reminders = reminders.sent
    if reminders.lateness_ms:
        result.reminder_late_median = round(statistics.median(reminders.lateness_ms), 1)
        result.reminder_late_max = round(max(reminders.lateness_ms), 1)
    result.reminders_missed = len(reminders.missed) + len(reminders.gaps)
    result.reminders_duplicated = len(reminders.duplicated)
    result.reminder_skipped_periods = reminders.skipped_periods
    result.problems += reminders.gaps + reminders.missed + reminders.duplicated
    timeline = timeline_problems(ledger)
    result.timeline_problems = len(timeline)
    result.problems += timeline
    # Alerts: each incident's "opened" and "911 confirmed" alerts reach its school's officer
    # exactly once (repeats are marked and counted apart); latency from the 911 confirmation.
    seen: dict[tuple[str, str], list[float]] = {}
    for desk in desks:
        for alert in desk.alerts:
            if not alert.repeat:
                seen.setdefault((alert.code, alert.event), []).append(alert.at)
    result.alerts = sum(len(times) for times in seen.values())
    chains = {
        (ledger.code_of(e.incident_id), e.reason)
        for e in ledger.escalations
        if e.kind is EscalationKind.OFFICER_ALERT
    }
    for code, reason in sorted(chains):
        times = seen.get((code, reason), [])
        if not times:
            result.alerts_missed += 1
            result.problems.append(f"{code}: {reason} alert never reached an officer")
        elif len(times) > 1:
            result.alerts_duplicated += 1
            result.problems.append(f"{code}: {reason} alert reached officers {len(times)} times")
    latencies = []
    for incident in runs:
        times = seen.get((incident.code, "police_called"), [])
        if incident.confirmed_911_at is not None and times:
            latencies.append((min(times) - incident.confirmed_911_at) * 1000)
    if latencies:
        result.alert_latency_median = round(statistics.median(latencies), 1)
        result.alert_latency_max = round(max(latencies), 1)
