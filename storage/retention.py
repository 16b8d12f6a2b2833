"""The retention purge: what old incidents lose, and when (Québec Law 25: destroy or anonymise).

Two periods, counted from the day an incident was closed or cancelled (open incidents are
never touched):

- after ``transcript_after``, its **conversation** goes: the text of every message to and from
  the bot in its timeline, the text of its alerts and reminders, the cancellation reason, and
  the member's saved place in the guide if it still points at the incident. The timeline rows
  stay, with their kind, step and time, marked ``redacted_at``;
- after ``anonymise_after``, the incident is **anonymised**: nothing points at a person any
  more (who opened it, who was alerted, who acknowledged, whose chat, which Telegram chat), and
  the 911 event number goes. What the statistics need stays: school, dates and step times,
  status, outcome, drill or real, device count, alert and acknowledgement times.

Chat outside any incident (before one opens) loses its text after ``transcript_after`` too.
Each incident is changed in a transaction of its own; a run is idempotent, and records one
entry in the audit log. Timeline rows are changed here and nowhere else.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import (
    AuditEntry,
    Conversation,
    Delivery,
    Escalation,
    EventKind,
    Incident,
    IncidentStatus,
    TimelineEvent,
)
from storage.repositories import AuditLog, EnrollmentAttempts

log = logging.getLogger(__name__)

AUDIT_ACTION = "retention_purge"
FINISHED = (IncidentStatus.CLOSED, IncidentStatus.CANCELLED)
MESSAGES = (EventKind.MESSAGE_IN, EventKind.MESSAGE_OUT)
# Timeline data keys holding what people wrote or were told.
TEXT_KEYS = frozenset({"text"})
# ... and, on these kinds, also free text under another key.
TEXT_KEYS_OF_KIND = {EventKind.INCIDENT_CANCELLED.value: frozenset({"reason"})}
# Timeline data keys that point at people, or that anonymisation removes.
PERSON_KEYS = frozenset({"to", "event_number"})


class Action(enum.StrEnum):
    """What the purge does to an incident."""

    TRANSCRIPT = "transcript"
    ANONYMISE = "anonymise"


@dataclass(frozen=True)
class RetentionPolicy:
    """How long a closed incident keeps its conversation, and its links to people."""

    transcript_after: timedelta
    anonymise_after: timedelta

    def __post_init__(self) -> None:
        if self.transcript_after <= timedelta(0) or self.anonymise_after <= timedelta(0):
            raise ValueError("retention periods must be positive")
        if self.transcript_after > self.anonymise_after:
            raise ValueError("the transcript cannot be kept longer than the incident")

    @classmethod
    def days(cls, transcript_days: int, incident_days: int) -> RetentionPolicy:
        """A policy in days, as config.yml writes it."""
        return cls(timedelta(days=transcript_days), timedelta(days=incident_days))


@dataclass(frozen=True)
class DueIncident:
    """An incident the purge would change now, and how."""

    incident_id: int
    code: str
    school_id: str
    drill: bool
    status: IncidentStatus
    closed_at: datetime
    actions: tuple[Action, ...]

    @property
    def what(self) -> str:
        """The actions in words: transcript, anonymise, or both."""
        return " + ".join(action.value for action in self.actions)


@dataclass(frozen=True)
class RetentionPlan:
    """Everything the purge would change at ``at``."""

    at: datetime
    incidents: tuple[DueIncident, ...]
    messages: int  # chat messages outside incidents whose text would go
    attempts: int = 0  # wrong enrollment codes no count or lockout needs any more

    @property
    def empty(self) -> bool:
        """Nothing is due."""
        return not self.incidents and not self.messages and not self.attempts

    def codes(self, action: Action) -> list[str]:
        """The codes of the incidents due for ``action``."""
        return [due.code for due in self.incidents if action in due.actions]


@dataclass(frozen=True)
class RetentionReport:
    """What a run of the purge changed."""

    at: datetime
    trigger: str
    transcripts: tuple[str, ...]  # codes of incidents whose conversation was removed
    anonymised: tuple[str, ...]  # codes of incidents anonymised
    messages: int  # chat messages outside incidents whose text was removed
    events: int  # timeline rows changed in all
    failed: tuple[str, ...] = ()
    attempts: int = 0  # wrong enrollment codes forgotten (their Telegram accounts with them)

    @property
    def changed(self) -> bool:
        """Something was removed."""
        return bool(self.transcripts or self.anonymised or self.messages or self.attempts)


def _without(data: dict[str, Any] | None, keys: Iterable[str]) -> dict[str, Any] | None:
    """``data`` without ``keys``, or None when it has none of them."""
    if not data:
        return None
    dropped = set(keys) & data.keys()
    if not dropped:
        return None
    return {key: value for key, value in data.items() if key not in dropped}


class Retention:
    """Plans and applies the retention purge on a database."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        policy: RetentionPolicy,
        attempts_window: timedelta | None = None,
    ):
        self.sessions = sessions
        self.policy = policy
        # Wrong enrollment codes are counted over this window (None: not purged here).
        self.attempts_window = attempts_window

    # ---- what is due -------------------------------------------------------------------------

    def _actions(self, incident: Incident, now: datetime) -> tuple[Action, ...]:
        if incident.status not in FINISHED or incident.closed_at is None:
            return ()
        age = now - incident.closed_at
        actions = []
        if incident.transcript_purged_at is None and age >= self.policy.transcript_after:
            actions.append(Action.TRANSCRIPT)
        if incident.anonymised_at is None and age >= self.policy.anonymise_after:
            actions.append(Action.ANONYMISE)
        return tuple(actions)

    async def plan(self, now: datetime) -> RetentionPlan:
        """What a run at ``now`` would change (nothing is changed)."""
        async with self.sessions() as session:
            rows = await session.scalars(
                select(Incident)
                .where(
                    Incident.status.in_(FINISHED),
                    Incident.closed_at.is_not(None),
                    or_(
                        Incident.transcript_purged_at.is_(None)
                        & (Incident.closed_at <= now - self.policy.transcript_after),
                        Incident.anonymised_at.is_(None)
                        & (Incident.closed_at <= now - self.policy.anonymise_after),
                    ),
                )
                .order_by(Incident.closed_at, Incident.id)
            )
            due = []
            for incident in rows.all():
                actions = self._actions(incident, now)
                if actions and incident.closed_at is not None:
                    due.append(
                        DueIncident(
                            incident.id,
                            incident.code,
                            incident.school_id,
                            incident.drill,
                            incident.status,
                            incident.closed_at,
                            actions,
                        )
                    )
            messages = await session.scalar(
                select(func.count(TimelineEvent.id)).where(*self._loose_messages(now))
            )
            attempts = (
                await EnrollmentAttempts(session).stale(now, self.attempts_window)
                if self.attempts_window is not None
                else 0
            )
        return RetentionPlan(now, tuple(due), int(messages or 0), attempts)

    def _loose_messages(self, now: datetime) -> tuple[Any, ...]:
        return (
            TimelineEvent.incident_id.is_(None),
            TimelineEvent.kind.in_(MESSAGES),
            TimelineEvent.redacted_at.is_(None),
            TimelineEvent.at <= now - self.policy.transcript_after,
        )

    async def last_run(self) -> datetime | None:
        """When the purge last ran (dry runs do not count), from the audit log."""
        async with self.sessions() as session:
            return await session.scalar(
                select(func.max(AuditEntry.at)).where(AuditEntry.action == AUDIT_ACTION)
            )

    # ---- applying it -------------------------------------------------------------------------

    async def apply(self, now: datetime, trigger: str) -> RetentionReport:
        """Carry out what is due at ``now``: one transaction per incident, then the audit entry."""
        plan = await self.plan(now)
        transcripts: list[str] = []
        anonymised: list[str] = []
        failed: list[str] = []
        events = 0
        for due in plan.incidents:
            try:
                done, changed = await self._apply_one(due.incident_id, now)
            except Exception:
                log.exception("retention: incident %s could not be purged", due.code)
                failed.append(due.code)
                continue
            events += changed
            if Action.TRANSCRIPT in done:
                transcripts.append(due.code)
            if Action.ANONYMISE in done:
                anonymised.append(due.code)
        async with self.sessions() as session, session.begin():
            messages = await self._purge_loose_messages(session, now)
            events += messages
            attempts = (
                await EnrollmentAttempts(session).forget_stale(now, self.attempts_window)
                if self.attempts_window is not None
                else 0
            )
            report = RetentionReport(
                now,
                trigger,
                tuple(transcripts),
                tuple(anonymised),
                messages,
                events,
                tuple(failed),
                attempts,
            )
            await AuditLog(session).append(
                at=now,
                member_id=None,
                action=AUDIT_ACTION,
                data={
                    "trigger": trigger,
                    "transcript_days": self.policy.transcript_after.days,
                    "incident_days": self.policy.anonymise_after.days,
                    "transcripts": len(transcripts),
                    "anonymised": len(anonymised),
                    "messages": messages,
                    "enrollment_attempts": attempts,
                    "events": events,
                    "incidents": {"transcript": transcripts, "anonymise": anonymised},
                    "failed": failed,
                },
            )
        return report

    async def _apply_one(self, incident_id: int, now: datetime) -> tuple[tuple[Action, ...], int]:
        """Purge one incident in its own transaction; returns what was done and rows changed."""
        async with self.sessions() as session, session.begin():
            incident = await session.scalar(
                select(Incident).where(Incident.id == incident_id).with_for_update()
            )
            if incident is None:
                return (), 0
            # Looked at again under the lock: another run may have been first.
            actions = self._actions(incident, now)
            if not actions:
                return (), 0
            events = await session.scalars(
                select(TimelineEvent)
                .where(TimelineEvent.incident_id == incident.id)
                .order_by(TimelineEvent.id)
            )
            timeline = list(events.all())
            chains = list(
                (
                    await session.scalars(
                        select(Escalation).where(Escalation.incident_id == incident.id)
                    )
                ).all()
            )
            deliveries: Sequence[Delivery] = []
            if chains:
                deliveries = (
                    await session.scalars(
                        select(Delivery).where(Delivery.escalation_id.in_([c.id for c in chains]))
                    )
                ).all()
            changed: set[int] = set()
            if incident.transcript_purged_at is None:
                changed |= await self._remove_transcript(
                    session, incident, timeline, deliveries, now
                )
            if Action.ANONYMISE in actions:
                changed |= self._anonymise(incident, timeline, chains, deliveries, now)
            await session.flush()
            return actions, len(changed)

    async def _remove_transcript(
        self,
        session: AsyncSession,
        incident: Incident,
        timeline: Sequence[TimelineEvent],
        deliveries: Sequence[Delivery],
        now: datetime,
    ) -> set[int]:
        changed = set()
        for event in timeline:
            keys = TEXT_KEYS | TEXT_KEYS_OF_KIND.get(event.kind, frozenset())
            kept = _without(event.data, keys)
            if kept is not None:
                event.data = kept
                event.redacted_at = now
                changed.add(event.id)
        for delivery in deliveries:
            delivery.text = ""
            delivery.buttons = []
            if delivery.status == "pending":
                # Never sent, and now never will be: there is nothing left to send.
                delivery.status = "failed"
                delivery.error = "removed by the retention purge"
        incident.cancel_reason = None
        incident.transcript_purged_at = now
        # The opener's saved place in the guide, if it is still this incident's summary.
        if incident.opened_by is not None:
            saved = await session.get(Conversation, incident.opened_by)
            if saved is not None and (saved.state or {}).get("incident_id") == incident.id:
                saved.state = {"language": saved.state.get("language", "fr")}
                saved.updated_at = now
        return changed

    def _anonymise(
        self,
        incident: Incident,
        timeline: Sequence[TimelineEvent],
        chains: Sequence[Escalation],
        deliveries: Sequence[Delivery],
        now: datetime,
    ) -> set[int]:
        changed = set()
        for event in timeline:
            kept = _without(event.data, PERSON_KEYS)
            if kept is not None:
                event.data = kept
                event.redacted_at = event.redacted_at or now
                changed.add(event.id)
            if event.member_id is not None:
                event.member_id = None
                changed.add(event.id)
        for chain in chains:
            chain.acknowledged_by = None
        for delivery in deliveries:
            delivery.member_id = None
            delivery.chat_id = None
            delivery.message_id = None
        incident.opened_by = None
        incident.event_number = None
        incident.anonymised_at = now
        return changed

    async def _purge_loose_messages(self, session: AsyncSession, now: datetime) -> int:
        """Remove the text of chat outside incidents that is old enough; returns how many."""
        rows = await session.scalars(
            select(TimelineEvent).where(*self._loose_messages(now)).order_by(TimelineEvent.id)
        )
        count = 0
        for event in rows.all():
            kept = _without(event.data, TEXT_KEYS)
            if kept is not None:
                event.data = kept
            event.redacted_at = now
            count += 1
        await session.flush()
        return count
