"""The retention purge as the program runs it: nightly, at start-up when a run is owed, by command.

What goes and when is :mod:`storage.retention`'s business; here are the clock, the schedule
(03:30 in the display time zone, job id ``retention-daily``), the logging, and the words of
``sexto purge``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.scheduler import Wakeups
from bot.settings import Config
from storage.retention import Action, Retention, RetentionPlan, RetentionPolicy, RetentionReport

log = logging.getLogger(__name__)

JOB_ID = "retention-daily"
RUN_AT = time(3, 30)
# A nightly run delayed by less than this (a busy or suspended machine) still happens.
GRACE = timedelta(hours=6)
# At start-up, a run is owed when the last one is older than this.
OWED_AFTER = timedelta(days=1)


def policy_of(config: Config) -> RetentionPolicy:
    """The retention periods of config.yml."""
    retention = config.retention
    return RetentionPolicy.days(retention.transcript_days, retention.incident_days)


def summary(report: RetentionReport) -> str:
    """One line saying what a run removed."""
    return (
        f"conversation removed from {len(report.transcripts)} incident(s), "
        f"{len(report.anonymised)} incident(s) anonymised, "
        f"{report.messages} chat message(s) outside incidents cleared, "
        f"{report.attempts} wrong enrollment code attempt(s) forgotten"
    )


class RetentionService:
    """Runs the purge at the clock's time, one run at a time."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Clock, config: Config
    ) -> None:
        self.retention = Retention(
            sessions, policy_of(config), config.enrollment.wrong_code_window
        )
        self.clock = clock
        self.config = config
        self._lock = asyncio.Lock()

    async def plan(self) -> RetentionPlan:
        """What a run now would change (a dry run: nothing is changed or recorded)."""
        return await self.retention.plan(self.clock.now())

    async def run(self, trigger: str) -> RetentionReport:
        """Purge what is due now, and log it (the audit log gets its entry too)."""
        async with self._lock:
            report = await self.retention.apply(self.clock.now(), trigger)
        log.info("retention purge (%s): %s", trigger, summary(report))
        if report.failed:
            log.warning("retention purge: could not purge %s", ", ".join(report.failed))
        return report

    async def catch_up(self) -> RetentionReport | None:
        """Run now if the last run is more than a day old or there never was one."""
        last = await self.retention.last_run()
        if last is not None and self.clock.now() - last < OWED_AFTER:
            return None
        return await self.run("start-up")

    async def nightly(self) -> None:
        """The daily job: a failure is logged, and the next run tries again."""
        try:
            await self.run("daily")
        except Exception:
            log.exception("the retention purge failed; the next run will try again")

    async def start(self, wakeups: Wakeups) -> datetime | None:
        """Schedule the nightly run and make up a missed one; never stops the program.

        Returns the next nightly run (None if it could not be scheduled).
        """
        next_run: datetime | None = None
        try:
            next_run = await wakeups.every_day(
                JOB_ID, RUN_AT, self.config.zone, self.nightly, GRACE
            )
            log.info(
                "retention purge: next nightly run at %s",
                next_run.astimezone(self.config.zone).strftime("%Y-%m-%d %H:%M %Z"),
            )
        except Exception:
            log.exception("could not schedule the nightly retention purge")
        try:
            await self.catch_up()
        except Exception:
            log.exception("the retention purge at start-up failed; the nightly run will try")
        return next_run


# ---- sexto purge --------------------------------------------------------------------------------


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def plan_lines(plan: RetentionPlan, config: Config) -> list[str]:
    """What a dry run prints: a table of what would go, and the totals."""
    retention = config.retention
    zone: ZoneInfo = config.zone
    names: Mapping[str, str] = {school.id: school.name for school in config.schools}
    if plan.empty:
        return [_nothing(config)]
    lines = []
    if plan.incidents:
        rows = [("code", "school", "closed", "what")]
        rows += [
            (
                due.code,
                names.get(due.school_id, due.school_id),
                due.closed_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                due.what,
            )
            for due in plan.incidents
        ]
        lines += _table(rows)
        lines.append("")
    transcripts = len(plan.codes(Action.TRANSCRIPT))
    anonymised = len(plan.codes(Action.ANONYMISE))
    lines.append(
        f"Would remove the conversation of {transcripts} incident(s) (closed more than "
        f"{retention.transcript_days} days ago), anonymise {anonymised} incident(s) (more than "
        f"{retention.incident_days} days ago), and clear {plan.messages} chat message(s) "
        "outside incidents."
    )
    if plan.attempts:
        lines.append(
            f"Would forget {plan.attempts} wrong enrollment code attempt(s) no longer counted."
        )
    lines.append("Dry run: nothing was changed.")
    return lines


def report_lines(report: RetentionReport, config: Config) -> list[str]:
    """What a real run prints: the counts."""
    if not report.changed and not report.failed:
        lines = [_nothing(config)]
    else:
        lines = [
            f"Removed the conversation of {len(report.transcripts)} incident(s), anonymised "
            f"{len(report.anonymised)} incident(s), cleared {report.messages} chat message(s) "
            "outside incidents."
        ]
    if report.attempts:
        lines.append(
            f"Forgot {report.attempts} wrong enrollment code attempt(s) no longer counted."
        )
    if report.failed:
        lines.append(f"Could not purge: {', '.join(report.failed)} (see the log; run again).")
    lines.append("Recorded in the audit log.")
    return lines


def _nothing(config: Config) -> str:
    retention = config.retention
    return (
        f"Nothing is due: no incident closed or cancelled more than {retention.transcript_days} "
        f"days ago still has its conversation, none older than {retention.incident_days} days "
        "is left to anonymise, and no older chat message remains."
    )
