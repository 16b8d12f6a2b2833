"""After a load or chaos run: compare what the database recorded with what Telegram received.

- every delivery of the ``deliveries`` table (reminders, alerts, escalation notices) reached the
  Bot API server exactly once: one accepted ``sendMessage`` to its chat with its text;
- every 911 reminder chain sent reminders 1, 2, ... without a gap or a repeat, none due well
  before the call was confirmed left out, each at its due time (lateness);
- every incident's timeline is complete and in order.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from storage.crypto import KeyRing
from storage.database import create_engine, session_factory
from storage.models import (
    Delivery,
    Escalation,
    EscalationKind,
    EventKind,
    Incident,
    IncidentStatus,
    TimelineEvent,
)
from tests.conftest import TEST_ENCRYPTION_KEY
from tests.support.botapi import CallRecord

REMINDER = re.compile(r"Reminder (\d+)|Rappel (\d+)")
# The steps of a whole incident without immediate danger, as the timeline stamps them.
FULL_WALK = (
    "danger",
    "never",
    "victim",
    "devices",
    "grid",
    "call911",
    "event_number",
    "waiting",
    "after",
)
FORWARD = (
    IncidentStatus.POLICE_CALLED.value,
    IncidentStatus.KIT_COLLECTED.value,
    IncidentStatus.AWAITING_DECISION.value,
)


def _aware(moment: datetime) -> datetime:
    """A datetime in UTC (SQLite may hand back naive ones)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass
class Ledger:
    """What the database holds about incidents and escalations after a run."""

    incidents: list[Incident]
    escalations: list[Escalation]
    deliveries: list[Delivery]
    timeline: list[TimelineEvent]

    def code_of(self, incident_id: int) -> str:
        """An incident's public code."""
        return next(i.code for i in self.incidents if i.id == incident_id)


async def read_ledger(database_url: str) -> Ledger:
    """Load incidents, escalations, deliveries and the timeline."""
    engine = create_engine(database_url, KeyRing([TEST_ENCRYPTION_KEY]))
    try:
        async with session_factory(engine)() as session:
            incidents = list(await session.scalars(select(Incident).order_by(Incident.id)))
            escalations = list(await session.scalars(select(Escalation).order_by(Escalation.id)))
            deliveries = list(await session.scalars(select(Delivery).order_by(Delivery.id)))
            timeline = list(
                await session.scalars(select(TimelineEvent).order_by(TimelineEvent.id))
            )
    finally:
        await engine.dispose()
    return Ledger(incidents, escalations, deliveries, timeline)


def accepted_texts(calls: Iterable[CallRecord]) -> Counter[tuple[int, str]]:
    """How many times each (chat, text) was accepted by sendMessage."""
    counts: Counter[tuple[int, str]] = Counter()
    for call in calls:
        if call.method.lower() == "sendmessage" and call.ok:
            counts[(int(call.params.get("chat_id", 0)), str(call.params.get("text", "")))] += 1
    return counts


@dataclass
class DeliveryAudit:
    """Deliveries that did not reach Telegram exactly once."""

    deliveries: int = 0
    missing: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every delivery arrived exactly once."""
        return not (self.missing or self.duplicated or self.failed)


def audit_deliveries(ledger: Ledger, calls: Iterable[CallRecord]) -> DeliveryAudit:
    """Each recorded delivery against the messages the server accepted."""
    counts = accepted_texts(calls)
    audit = DeliveryAudit(deliveries=len(ledger.deliveries))
    for delivery in ledger.deliveries:
        what = f"delivery {delivery.id} ({delivery.level}) to chat {delivery.chat_id}"
        if delivery.status != "delivered":
            audit.failed.append(f"{what}: {delivery.status} {delivery.error or ''}".strip())
            continue
        seen = counts.get((int(delivery.chat_id or 0), delivery.text), 0)
        if seen == 0:
            audit.missing.append(f"{what}: never reached Telegram")
        elif seen > 1:
            audit.duplicated.append(f"{what}: reached Telegram {seen} times")
    return audit


@dataclass
class ReminderAudit:
    """911 reminders: lateness, and the ones missing or repeated."""

    chains: int = 0
    sent: int = 0
    lateness_ms: list[float] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    early: list[str] = field(default_factory=list)
    skipped_periods: int = 0


def audit_reminders(
    ledger: Ledger,
    calls: Sequence[CallRecord],
    every: timedelta,
    grace: timedelta = timedelta(seconds=1),
    outages: Sequence[tuple[datetime, datetime]] = (),
    tolerance: timedelta = timedelta(milliseconds=150),
) -> ReminderAudit:
    """Reminders of each call_911 chain: numbered 1..k once each, on time, none left out.

    Reminder n+1 is due one period after reminder n was due, or one period after the bot
    decided to send reminder n (its delivery's ``created_at``) when that decision came more
    than a period late (the escalator skips missed periods; a reminder resent after a crash
    keeps the schedule decided before it). A reminder is
    missed when it was due more than ``grace`` before the chain stopped and never arrived,
    unless it fell due while the bot was down (``outages``): then the confirmation may rightly
    have been handled first. A reminder that arrived more than ``tolerance`` before it was due
    is early.
    """
    audit = ReminderAudit()
    for chain in ledger.escalations:
        if chain.kind is not EscalationKind.CALL_911:
            continue
        audit.chains += 1
        code = ledger.code_of(chain.incident_id)
        arrivals: dict[int, list[datetime]] = {}
        for call in calls:
            text = str(call.params.get("text", ""))
            if call.method.lower() != "sendmessage" or not call.ok or code not in text:
                continue
            found = REMINDER.search(text)
            if found:
                number = int(found.group(1) or found.group(2))
                arrivals.setdefault(number, []).append(_aware(call.time))
        decided: dict[int, datetime] = {}
        for delivery in ledger.deliveries:
            if delivery.escalation_id != chain.id or delivery.level != "professional":
                continue
            found = REMINDER.search(delivery.text)
            if found:
                decided[int(found.group(1) or found.group(2))] = _aware(delivery.created_at)
        for number, times in arrivals.items():
            if len(times) > 1:
                audit.duplicated.append(f"{code}: reminder {number} sent {len(times)} times")
        due = _aware(chain.started_at) + every
        for number in range(1, max(arrivals, default=0) + 1):
            if number not in arrivals:
                audit.gaps.append(f"{code}: reminder {number} missing")
                continue
            arrived = arrivals[number][0]
            audit.sent += 1
            audit.lateness_ms.append((arrived - due).total_seconds() * 1000)
            if arrived < due - tolerance:
                audit.early.append(
                    f"{code}: reminder {number} {(due - arrived).total_seconds():.2f}s early"
                )
            moment = decided.get(number, arrived)
            if due + every > moment:
                due += every
            else:
                audit.skipped_periods += 1
                due = moment + every
        stopped = _aware(chain.stopped_at) if chain.stopped_at else None
        down = any(start <= due <= end for start, end in outages)
        if stopped is not None and due + grace < stopped and not down:
            audit.missed.append(
                f"{code}: reminder {len(arrivals) + 1} due {due:%H:%M:%S.%f}, "
                f"chain stopped {stopped:%H:%M:%S.%f}"
            )
    return audit


def early_alert_stages(
    ledger: Ledger, ack_timeout: timedelta, tolerance: timedelta = timedelta(milliseconds=150)
) -> list[str]:
    """Alert stages (repeat, backup, coordinators) sent before the previous one timed out.

    The next stage of an officer alert is due ``ack_timeout`` after the previous one, or at
    once when none of the previous stage's messages could be delivered.
    """
    problems = []
    for chain in ledger.escalations:
        if chain.kind is not EscalationKind.OFFICER_ALERT:
            continue
        stages: dict[int, list[Delivery]] = {}
        for delivery in ledger.deliveries:
            if delivery.escalation_id == chain.id:
                stages.setdefault(delivery.seq, []).append(delivery)
        ordered = [stages[seq] for seq in sorted(stages)]
        for before, after in itertools.pairwise(ordered):
            if all(d.status == "failed" for d in before):
                continue
            gap = _aware(after[0].created_at) - _aware(before[0].created_at)
            if gap < ack_timeout - tolerance:
                code = ledger.code_of(chain.incident_id)
                problems.append(
                    f"{code}: {chain.reason} alert stage {after[0].seq} sent "
                    f"{gap.total_seconds():.2f}s after stage {before[0].seq}"
                )
    return problems


def timeline_problems(ledger: Ledger, walk: Sequence[str] = FULL_WALK) -> list[str]:
    """Incidents whose timeline, read as the product reads it, is incomplete or out of order.

    The timeline is read in (time, id) order like ``Timeline.for_incident``: it opens with the
    incident, its steps are done once each in the protocol's order (all of ``walk`` for an
    incident awaiting the DPCP's decision), its statuses only move forward, and the reminders
    it records are numbered in the order they were sent.
    """
    problems = []
    for incident in ledger.incidents:
        events = sorted(
            (e for e in ledger.timeline if e.incident_id == incident.id),
            key=lambda e: (_aware(e.at), e.id),
        )
        kinds = [e.kind for e in events]
        if not kinds or kinds.count(EventKind.INCIDENT_OPENED) != 1:
            problems.append(f"{incident.code}: opened {kinds.count(EventKind.INCIDENT_OPENED)}")
        steps = [e.step for e in events if e.kind == EventKind.STEP_DONE]
        statuses = [
            str(e.data.get("status")) for e in events if e.kind == EventKind.STATUS_CHANGED
        ]
        order = {name: index for index, name in enumerate(walk)}
        if [s for s in steps if s in order] != sorted(
            (s for s in steps if s in order), key=order.__getitem__
        ):
            problems.append(f"{incident.code}: steps out of order {steps}")
        if len(set(steps)) != len(steps):
            problems.append(f"{incident.code}: a step done twice {steps}")
        if tuple(statuses) != FORWARD[: len(statuses)]:
            problems.append(f"{incident.code}: statuses {statuses}")
        if incident.status is IncidentStatus.AWAITING_DECISION:
            if tuple(steps) != tuple(walk):
                problems.append(f"{incident.code}: steps {steps}, expected {list(walk)}")
            if tuple(statuses) != FORWARD:
                problems.append(f"{incident.code}: statuses {statuses}, expected {FORWARD}")
        professional = [
            int(e.data.get("seq", 0))
            for e in events
            if e.kind == EventKind.REMINDER_SENT and e.data.get("level") == "professional"
        ]
        if professional != sorted(professional):
            problems.append(f"{incident.code}: reminders recorded out of order {professional}")
    return problems
