"""Escalation: 911 reminders, officer alerts with acknowledgement, and nudges when stalled.

Every chain lives in the ``escalations`` table and every message it sends in ``deliveries``:
the database decides what is due; the scheduler only wakes :meth:`Escalator.fire`. A message
is recorded as pending before it is sent and marked delivered (or failed) after, so a crash
in between is caught up at start-up by :meth:`Escalator.recover`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import event, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.messenger import BotRefused, DeliveryError, Messenger, Rows
from bot.settings import Config
from dialogues.effects import Button
from dialogues.engine import clock as hhmm
from dialogues.events import ReminderDue
from dialogues.protocol import Markup
from dialogues.protocol import Protocol as GuideProtocol
from storage.models import (
    Delivery,
    Escalation,
    EscalationKind,
    EventKind,
    Incident,
    IncidentStatus,
    Member,
    Role,
)
from storage.repositories import Escalations, Incidents, Members, Officers, Schools, Timeline

if TYPE_CHECKING:
    from bot.guide import Guide, Outcome

log = logging.getLogger(__name__)

ACK_PREFIX = "ack:"
OPEN_STATUSES = (IncidentStatus.OPEN, IncidentStatus.POLICE_CALLED, IncidentStatus.KIT_COLLECTED)


@dataclass(frozen=True)
class Wake:
    """Wake chain ``escalation_id`` at ``at``, then every ``every`` if given (until changed);
    ``at=None`` cancels its wake-up."""

    escalation_id: int
    at: datetime | None
    every: timedelta | None = None


class Wakeup(Protocol):
    """The scheduler, as the escalator sees it."""

    async def schedule(
        self, escalation_id: int, at: datetime, every: timedelta | None = None
    ) -> None:
        """Wake a chain at a time (then every ``every``, if given)."""
        ...

    async def cancel(self, escalation_id: int) -> None:
        """Forget a chain's wake-up."""
        ...

    async def scheduled(self) -> dict[int, datetime]:
        """The stored wake-ups: chain id -> time."""
        ...

    async def reconcile(
        self, running: Sequence[tuple[int, datetime]], known: Mapping[int, datetime]
    ) -> tuple[int, int]:
        """Match the stored wake-ups to the running chains (see :func:`reconciliation`)."""
        ...

    def watch(self) -> contextlib.AbstractContextManager[set[int]]:
        """A set of the chains whose stored wake-up is at work (fired, not finished) when the
        block starts or fires within it, filled as they fire."""
        ...


def _chains(wakes: Sequence[Wake]) -> list[int]:
    return [w.escalation_id for w in wakes]


def reconciliation(
    known: Mapping[int, datetime], running: Sequence[tuple[int, datetime]]
) -> tuple[list[int], dict[int, datetime]]:
    """What makes the stored wake-ups match the running chains: the chains whose wake-up to
    cancel, and the wake-ups to store; ``known`` is a snapshot of the stored wake-ups.

    The snapshot must be taken *before* the chains are read: the program goes on meanwhile, and
    a chain started after that read, its wake-up already stored, would otherwise look obsolete
    and lose its wake-up. A chain's wake-up stored earlier than its time is kept (the chain
    re-arms it when it comes).
    """
    wanted = dict(running)
    cancel = [chain for chain in known if chain not in wanted]
    store = {
        chain: at
        for chain, at in wanted.items()
        if (stored := known.get(chain)) is None or stored > at
    }
    return cancel, store


class BusyChains:
    """Chains some work is under way for (counted: a chain may be busy twice at once), and the
    sets of the watches under way, each noting every chain that becomes busy during it. Safe to
    use from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count: Counter[int] = Counter()
        self._watches: list[set[int]] = []

    def enter(self, chains: Iterable[int]) -> None:
        """Work starts for these chains."""
        with self._lock:
            for chain in chains:
                self._count[chain] += 1
                for seen in self._watches:
                    seen.add(chain)

    def leave(self, chains: Iterable[int]) -> None:
        """Work noted by :meth:`enter` is over."""
        with self._lock:
            for chain in chains:
                self._count[chain] -= 1
                if self._count[chain] <= 0:
                    del self._count[chain]

    @contextlib.contextmanager
    def holding(self) -> Iterator[Callable[[Iterable[int]], None]]:
        """A block whose work starts, for the chains given to the function it yields as they
        become known, and ends with the block."""
        held: list[int] = []

        def hold(chains: Iterable[int]) -> None:
            chains = list(chains)
            self.enter(chains)
            held.extend(chains)

        try:
            yield hold
        finally:
            self.leave(held)

    @contextlib.contextmanager
    def watch(self) -> Iterator[set[int]]:
        """A set of the chains busy when the block starts or becoming busy within it (filled
        as they do)."""
        with self._lock:
            seen = set(self._count)
            self._watches.append(seen)
        try:
            yield seen
        finally:
            with self._lock:
                self._watches.remove(seen)


class NoWakeup:
    """Wake-ups that are only remembered (until a real scheduler is attached)."""

    def __init__(self) -> None:
        self.jobs: dict[int, datetime] = {}

    async def schedule(
        self, escalation_id: int, at: datetime, every: timedelta | None = None
    ) -> None:
        """Remember (the first time)."""
        self.jobs[escalation_id] = at

    async def cancel(self, escalation_id: int) -> None:
        """Forget."""
        self.jobs.pop(escalation_id, None)

    async def scheduled(self) -> dict[int, datetime]:
        """What is remembered."""
        return dict(self.jobs)

    async def reconcile(
        self, running: Sequence[tuple[int, datetime]], known: Mapping[int, datetime]
    ) -> tuple[int, int]:
        """Apply :func:`reconciliation`."""
        cancel, store = reconciliation(known, running)
        for chain in cancel:
            self.jobs.pop(chain, None)
        self.jobs.update(store)
        return len(store.keys() - known.keys()), len(cancel)

    @contextlib.contextmanager
    def watch(self) -> Iterator[set[int]]:
        """Nothing fires here."""
        yield set()


class Ack(enum.Enum):
    """What pressing Acknowledge did."""

    DONE = "done"
    ALREADY = "already"
    NOT_YOURS = "not_yours"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class AckResult:
    """The outcome of an acknowledgement, and the text of the pop-up when refused."""

    result: Ack
    popup: str = ""


@dataclass
class _Send:
    """A message recorded as pending, to send after the transaction."""

    delivery_id: int
    chat_id: int | None
    text: str
    buttons: Rows
    protect: bool
    kind: str
    incident_id: int
    member_id: int | None
    level: str
    seq: int
    reason: str = ""


@dataclass(frozen=True)
class _ReminderStep:
    """A reminder found due: the professional's guide gives it."""

    escalation_id: int
    kind: EscalationKind
    number: int
    professional_id: int


@dataclass
class _Plan:
    sends: list[_Send] = field(default_factory=list)
    wakes: list[Wake] = field(default_factory=list)
    escalation_id: int | None = None


def _rows(stored: list[Any]) -> Rows:
    return tuple(tuple(Button(label, data) for label, data in row) for row in stored)


def _stored(rows: Rows) -> list[Any]:
    return [[[b.label, b.data] for b in row] for row in rows]


class Escalator:
    """Runs every reminder and alert chain, on the database, through a Messenger."""

    def __init__(
        self,
        protocol: GuideProtocol,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        config: Config,
    ) -> None:
        self.protocol = protocol
        self.sessions = sessions
        self.clock = clock
        self.config = config
        self.policy = config.escalation
        self.wakeup: Wakeup = NoWakeup()
        self.messenger: Messenger | None = None
        self.guide: Guide | None = None
        self.closing = False
        self._applying: asyncio.Future[None] | None = None
        self._starting: set[asyncio.Future[None]] = set()
        # Chains whose wake-up is changing (handed to apply_soon or apply, not stored yet).
        self._changing = BusyChains()
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()
        # Reminder chain -> the professional it reminds, as last seen: a hint that lets a
        # wake-up read the chain and give the reminder in one transaction (checked there).
        self._reminded: dict[int, int] = {}
        # Chains with messages left pending by a crash, read at start-up before any wake-up
        # runs (None: not read yet): their wake-ups send those first (see interrupted).
        self._interrupted: set[int] | None = None
        # Incidents whose stalled timer is known to run (started or seen by this program, and
        # committed): a step of theirs need not read the timer again. Every stop of a stalled
        # timer goes through this escalator, which forgets it then (see _stopping).
        self._stalled_running: set[int] = set()

    # ---- called by the guide inside its transaction ---------------------------------------

    async def start(
        self,
        session: AsyncSession,
        incident_id: int,
        kind: str,
        now: datetime,
        professional_id: int | None = None,
    ) -> list[Wake]:
        """Start a reminder chain (call_911); ``professional_id``: whom it will remind."""
        if kind != EscalationKind.CALL_911:
            raise ValueError(f"unknown reminder {kind}")
        row = await Escalations(session).start(
            incident_id, EscalationKind.CALL_911, now, now + self.policy.call_911_reminder_every
        )
        if professional_id is not None:
            self._reminded[row.id] = professional_id
        return [self._reminders(row)]

    async def stop(
        self, session: AsyncSession, incident_id: int, kind: str | None, now: datetime, why: str
    ) -> list[Wake]:
        """Stop a kind of chain; None stops reminders and nudges, "all" stops alerts too."""
        if kind is None:
            kinds = {EscalationKind.CALL_911, EscalationKind.STALLED}
        elif kind == "all":
            kinds = set(EscalationKind)
        else:
            kinds = {EscalationKind(kind)}
        escalations = Escalations(session)
        wakes = []
        for row in await escalations.for_incident(incident_id):
            if row.kind in kinds and row.stopped_at is None:
                self._stopping(row)
            if row.kind in kinds and await escalations.stop(row, now, why):
                wakes.append(Wake(row.id, None))
        return wakes

    async def progress(
        self, session: AsyncSession, incident_id: int, now: datetime, *, fresh: bool = False
    ) -> list[Wake]:
        """The incident moved: start its stalled timer, or restart it after a nudge.

        A running timer is left as it is (no write per step): when it comes due, the chain
        looks at the incident's last completed step and waits again if that is recent.
        ``fresh``: the incident was opened in this same transaction (it has no timer yet).
        """
        if incident_id in self._stalled_running:
            return []  # known to run: nothing to read or write
        next_at = now + self.policy.stalled_after
        row = await Escalations(session).start(
            incident_id, EscalationKind.STALLED, now, next_at, among=[] if fresh else None
        )
        if row.stopped_at is None:
            # Remembered once committed (a rolled-back start must not be taken as running).
            running = self._stalled_running
            event.listen(
                session.sync_session,
                "after_commit",
                lambda _session: running.add(incident_id),
                once=True,
            )
        started = row.started_at == now and row.stopped_at is None
        return [Wake(row.id, row.next_at)] if started and row.next_at else []

    def _reminders(self, row: Escalation) -> Wake:
        """A 911 chain's wake-up at its next reminder, repeating every reminder period: its
        stored job need not be written again at each reminder kept to the schedule."""
        return Wake(row.id, row.next_at, self.policy.call_911_reminder_every)

    def _stopping(self, row: Escalation) -> None:
        """A chain is being stopped: a stalled timer is no longer known to run (forgotten at
        once, before the commit: at worst the next step reads it again)."""
        if row.kind is EscalationKind.STALLED:
            self._stalled_running.discard(row.incident_id)

    async def alert(
        self,
        session: AsyncSession,
        incident_id: int,
        reason: str,
        now: datetime,
        language: str,
        *,
        fresh: bool = False,
    ) -> tuple[list[Wake], str | None]:
        """Start an officer alert chain; returns its wake-up and what to tell the professional.

        ``fresh``: the incident was opened in this same transaction (it has no chains yet).
        """
        incident = await Incidents(session).get(incident_id)
        if incident is None or reason not in self.policy.notify_officer_on:
            return [], None
        escalations = Escalations(session)
        earlier = (
            []
            if fresh
            else await escalations.for_incident(incident_id, EscalationKind.OFFICER_ALERT)
        )
        row = await escalations.start(
            incident_id, EscalationKind.OFFICER_ALERT, now, now, reason=reason, among=earlier
        )
        if earlier:
            return [Wake(row.id, now)], None
        text = self.protocol.text
        if self._drill_only(incident):
            return [Wake(row.id, now)], text("officer.drill_copy", language)
        for level in ("officer", "backup"):
            for member in await self._recipients(session, incident, level):
                note = text("officer.alerting", language, name=member.display_name)
                return [Wake(row.id, now)], note
        school = await Schools(session).get(incident.school_id)
        school_name = school.name if school else incident.school_id
        if await self._recipients(session, incident, "coordinator"):
            return [Wake(row.id, now)], text("officer.coordinators", language, school=school_name)
        return [Wake(row.id, now)], text("officer.none", language, school=school_name)

    def changing(self) -> contextlib.AbstractContextManager[Callable[[Iterable[int]], None]]:
        """A block around a transaction that changes chains: given the chains before the
        commit, it notes them as changing until the block ends, after their wake-ups are
        handed to :meth:`apply_soon` or applied. From the commit until then, the stored
        wake-ups no longer match the chains, and :meth:`resync` must leave them alone."""
        return self._changing.holding()

    def apply_soon(self, wakes: Sequence[Wake]) -> None:
        """:meth:`apply` in the background, so replies do not wait for the scheduler's job store
        (a write to the database of its own).

        Future wake-ups are stored in order, one batch after the other. A wake-up due now (an
        alert to send at once) starts at once instead of queueing behind other incidents' job
        store writes: it needs no stored job, and the chain's row decides what is due anyway
        (a stored job applied later for the same chain finds nothing due, or re-arms it).
        """
        now = self.clock.now()
        due = [w for w in wakes if w.at is not None and w.at <= now]
        later = [w for w in wakes if w.at is None or w.at > now]
        # Noted from now, not only once the batch's turn comes (see resync).
        self._changing.enter(_chains(wakes))
        if due:
            task = asyncio.ensure_future(self.apply(due))
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)
            task.add_done_callback(lambda _: self._changing.leave(_chains(due)))
        if not later:
            return
        previous = self._applying

        async def after_previous() -> None:
            try:
                if previous is not None:
                    await previous
                await self.apply(later)
            finally:
                self._changing.leave(_chains(later))

        self._applying = asyncio.ensure_future(after_previous())

    async def settle(self) -> None:
        """Wait until every wake-up handed to :meth:`apply_soon` is applied."""
        while self._applying is not None or self._starting:
            if self._starting:
                await asyncio.gather(*self._starting)
            if self._applying is not None:
                applying = self._applying
                await applying
                if self._applying is applying:
                    self._applying = None

    async def apply(self, wakes: Sequence[Wake]) -> None:
        """Carry out wake-ups once their transaction is committed.

        Never raises: the chains are already saved, and a wake-up the scheduler could not store
        (its database unreachable) is put back by the next :meth:`resync`.
        """
        self._changing.enter(_chains(wakes))
        try:
            await self._apply(wakes)
        finally:
            self._changing.leave(_chains(wakes))

    async def _apply(self, wakes: Sequence[Wake]) -> None:
        for wake in wakes:
            try:
                if wake.at is None:
                    await self.wakeup.cancel(wake.escalation_id)
                else:
                    await self.wakeup.schedule(wake.escalation_id, wake.at, wake.every)
            except Exception as error:  # any scheduler failure is healed later
                log.warning(
                    "could not store the wake-up of chain %s (%s); the next resync restores it",
                    wake.escalation_id,
                    error,
                )

    # ---- recipients ------------------------------------------------------------------------

    def _drill_only(self, incident: Incident) -> bool:
        return incident.drill and not self.policy.drills_alert_officers

    async def _recipients(
        self, session: AsyncSession, incident: Incident, level: str
    ) -> list[Member]:
        # Their schools are not needed here: not loading them saves a query per recipient.
        members = Members(session)
        if self._drill_only(incident):
            professional = await members.get(incident.opened_by, schools=False)
            return [professional] if professional is not None else []
        if level == "coordinator":
            return list(await members.with_role(Role.COORDINATOR))
        member = await Officers(session).assigned(incident.school_id, backup=level == "backup")
        return [member] if member is not None else []

    def _ladder(self) -> list[str]:
        return ["officer"] * (1 + self.policy.officer_alert_repeats) + ["backup", "coordinator"]

    # ---- wake-ups --------------------------------------------------------------------------

    async def fire(self, escalation_id: int) -> None:
        """A chain's wake-up: send what is due, then schedule the next one.

        One wake-up per chain at a time. When the database cannot be reached, or the Bot API
        server refuses the bot itself (:class:`BotRefused`), the work is tried again after a
        pause (1 s, doubling up to a minute) until it succeeds or the program stops; a retry
        first resends the chain's messages left pending by the failed attempt.
        """
        async with self._chain_lock(escalation_id):
            pause = 1.0
            # A chain with a message left pending by a crash sends that message first, as a
            # retry does: the next one must not overtake it.
            retry = escalation_id in (self._interrupted or ())
            while True:
                try:
                    await self._fire(escalation_id, retry)
                    if self._interrupted:
                        self._interrupted.discard(escalation_id)
                    return
                except (SQLAlchemyError, OSError, BotRefused) as error:
                    if self.closing:
                        raise
                    log.warning(
                        "wake-up of chain %s failed (%s); trying again in %.0f s",
                        escalation_id,
                        type(error).__name__,
                        pause,
                    )
                await asyncio.sleep(pause)
                pause = min(pause * 2, 60.0)
                retry = True

    def _chain_lock(self, escalation_id: int) -> asyncio.Lock:
        lock = self._locks.get(escalation_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[escalation_id] = lock
        return lock

    async def _fire(self, escalation_id: int, retry: bool) -> None:
        professional_id = None if retry else self._reminded.get(escalation_id)
        if professional_id is not None and await self._remind_at_once(
            escalation_id, professional_id
        ):
            return
        now = self.clock.now()
        plan: _Plan | None = None
        step: _ReminderStep | None = None
        async with self.sessions() as session, session.begin():
            escalations = Escalations(session)
            row = await escalations.get(escalation_id)
            if row is None:
                return
            pending = (
                [self._send_of(d, row) for d in await escalations.undelivered(escalation_id)]
                if retry
                else []
            )
            kind = row.kind
            next_at = row.next_at
            stopped = row.stopped_at is not None
            if not stopped and next_at is not None and next_at <= now and not pending:
                # Nothing to resend first: decide what is due in this same transaction.
                plan, step = await self._decide(session, row, now)
        await self._send_all(pending)
        if stopped or next_at is None:
            if kind is EscalationKind.CALL_911:
                # Its repeating job may have been stored again by a reminder that crossed the
                # chain's stop: it would go on waking a chain that is over.
                await self.apply([Wake(escalation_id, None)])
            return
        if next_at > now:
            # A stray wake-up (an old job put back, a retry after the chain moved on): nothing
            # is due yet, so only make sure the real one is there.
            await self.apply([Wake(escalation_id, next_at)])
            return
        if plan is None:
            # Messages left pending went out first; what is due now is decided afresh.
            now = self.clock.now()
            async with self.sessions() as session, session.begin():
                row = await Escalations(session).get(escalation_id)
                assert row is not None  # noqa: S101 - chains are never deleted while running
                plan, step = await self._decide(session, row, now)
        if step is not None:
            self._reminded[escalation_id] = step.professional_id
            plan = await self._remind(step, now)
        failed = await self._send_all(plan.sends)
        if plan.sends and failed == len(plan.sends) and kind is EscalationKind.OFFICER_ALERT:
            plan.wakes = await self._skip_ahead(escalation_id)
        await self.apply(plan.wakes)

    async def _decide(
        self, session: AsyncSession, row: Escalation, now: datetime
    ) -> tuple[_Plan, _ReminderStep | None]:
        """What a due chain does now (in the caller's transaction)."""
        if row.kind is EscalationKind.OFFICER_ALERT:
            return await self._fire_alert(session, row, now), None
        return await self._check_reminder(session, row, now)

    async def _fire_alert(self, session: AsyncSession, row: Escalation, now: datetime) -> _Plan:
        """A due alert: the next stage of the ladder, recorded as pending (in the caller's
        transaction)."""
        plan = _Plan(escalation_id=row.id)
        escalations = Escalations(session)
        incident = await Incidents(session).get(row.incident_id)
        if incident is None or incident.status not in (
            *OPEN_STATUSES,
            IncidentStatus.AWAITING_DECISION,
        ):
            await escalations.stop(row, now, "incident_over")
            return plan
        ladder = self._ladder()
        stage = row.sent
        recipients: list[Member] = []
        while stage < len(ladder):
            recipients = await self._recipients(session, incident, ladder[stage])
            if recipients:
                break
            stage += 1
        if stage >= len(ladder) or not recipients:
            await escalations.stop(row, now, "exhausted")
            await Timeline(session).append(
                at=now,
                kind=EventKind.ALERT_EXHAUSTED,
                incident_id=incident.id,
                data={"reason": row.reason},
            )
            return plan
        level = "drill" if self._drill_only(incident) else ladder[stage]
        repeat = ladder[: stage + 1].count(ladder[stage])
        row.sent = stage
        for member in recipients:
            text = await self._alert_text(session, incident, row.reason, member, repeat)
            label = self.protocol.text("alert.acknowledge", member.language)
            buttons = ((Button(label, f"{ACK_PREFIX}{row.id}"),),)
            plan.sends.append(
                await self._pending(escalations, row, member, level, text, buttons, now)
            )
        row.sent = stage + 1
        more = row.sent < len(ladder)
        row.next_at = now + self.policy.officer_ack_timeout if more else None
        if row.next_at is not None:
            plan.wakes.append(Wake(row.id, row.next_at))
        return plan

    async def _alert_text(
        self, session: AsyncSession, incident: Incident, reason: str, member: Member, repeat: int
    ) -> str:
        text = self.protocol.text
        language = member.language
        school = await Schools(session).get(incident.school_id)
        drill = text("drill.tag", language) if incident.drill else ""
        when = incident.opened_at if reason == "opened" else self.clock.now()
        if repeat > 1:
            drill += text("alert.repeat", language, number=repeat - 1)
        return text(
            "officer.alert",
            language,
            code=incident.code,
            drill=Markup(drill),
            school=school.name if school else incident.school_id,
            event=text(f"officer.event.{reason}", language),
            time=hhmm(self.protocol, when),
            status=text(f"status.{incident.status.value}", language),
        )

    async def _pending(
        self,
        escalations: Escalations,
        row: Escalation,
        member: Member,
        level: str,
        text: str,
        buttons: Rows,
        now: datetime,
        protect: bool = True,
    ) -> _Send:
        delivery = await escalations.add_delivery(
            row, member.id, member.telegram_user_id, level, text, now, _stored(buttons), protect
        )
        return self._send_of(delivery, row)

    def _send_of(self, delivery: Delivery, row: Escalation) -> _Send:
        return _Send(
            delivery_id=delivery.id,
            chat_id=delivery.chat_id,
            text=delivery.text,
            buttons=_rows(delivery.buttons),
            protect=delivery.protect,
            kind=row.kind.value,
            incident_id=row.incident_id,
            member_id=delivery.member_id,
            level=delivery.level,
            seq=delivery.seq,
            reason=row.reason or row.kind.value,
        )

    async def _check_reminder(
        self, session: AsyncSession, row: Escalation, now: datetime
    ) -> tuple[_Plan, _ReminderStep | None]:
        """A due reminder or nudge (in the caller's transaction): whether it is still wanted.

        Returns the plan when the chain stops or waits instead, and the reminder to give the
        professional when it is wanted (see :meth:`_remind`).
        """
        plan = _Plan(escalation_id=row.id)
        escalations = Escalations(session)
        incident = await Incidents(session).get(row.incident_id)
        if incident is None or incident.status not in OPEN_STATUSES or incident.opened_by is None:
            self._stopping(row)
            await escalations.stop(row, now, "incident_over")
            plan.wakes.append(Wake(row.id, None))  # a 911 chain's wake-up repeats
            return plan, None
        if row.kind is EscalationKind.CALL_911 and incident.status is not IncidentStatus.OPEN:
            await escalations.stop(row, now, "police_called")
            plan.wakes.append(Wake(row.id, None))
            return plan, None
        if row.kind is EscalationKind.STALLED:
            # Progress since the timer was set pushes the nudge back.
            moved = await Timeline(session).last_step_done(incident.id)
            due = max(row.started_at, moved or row.started_at) + self.policy.stalled_after
            if due > now:
                row.next_at = due
                plan.wakes.append(Wake(row.id, due))
                return plan, None
            running = await escalations.for_incident(incident.id, EscalationKind.CALL_911)
            if any(r.stopped_at is None for r in running):
                # The 911 reminders already press the professional; look again later.
                row.next_at = now + self.policy.stalled_after
                plan.wakes.append(Wake(row.id, row.next_at))
                return plan, None
        return plan, _ReminderStep(row.id, row.kind, row.sent + 1, incident.opened_by)

    async def _remind(self, due: _ReminderStep, now: datetime) -> _Plan:
        """Give the professional the reminder (a step of their guide) and record what it says
        as pending, in the step's own transaction: both happen, or neither."""
        if self.guide is None:
            raise RuntimeError("the escalator has no guide attached")
        plan = _Plan(escalation_id=due.escalation_id)

        async def record(session: AsyncSession, member: Member, outcome: Outcome) -> None:
            await self._record_reminder(session, member, outcome, due, plan, now)

        await self.guide.handle(
            due.professional_id, ReminderDue(due.kind.value, due.number), then=record
        )
        return plan

    async def _remind_at_once(self, escalation_id: int, professional_id: int) -> bool:
        """A wake-up of a reminder chain whose professional is known: read the chain, decide
        and give the reminder in the professional's guide step, one transaction in all (the
        long way is one to decide, then the step's).

        False, with nothing done: the chain is not a reminder for this professional (any more);
        the caller takes the long way.
        """
        if self.guide is None:
            raise RuntimeError("the escalator has no guide attached")
        now = self.clock.now()
        plan = _Plan(escalation_id=escalation_id)
        due: _ReminderStep | None = None
        held: list[Escalation] = []  # the row, for the session's identity map (weak)
        elsewhere = False

        async def decide(session: AsyncSession) -> ReminderDue | None:
            nonlocal due, elsewhere
            row = await Escalations(session).get(escalation_id)
            if row is None or row.kind is EscalationKind.OFFICER_ALERT:
                elsewhere = True
                return None
            held.append(row)
            if row.stopped_at is not None or row.next_at is None:
                plan.wakes.append(Wake(escalation_id, None))  # see _fire
                return None
            if row.next_at > now:
                # A stray wake-up: only make sure the real one is there.
                plan.wakes.append(Wake(escalation_id, row.next_at))
                return None
            decided, step = await self._check_reminder(session, row, now)
            plan.wakes += decided.wakes
            if step is not None and step.professional_id != professional_id:
                elsewhere = True  # nothing was written: a wanted reminder changes no row
                return None
            due = step
            return None if step is None else ReminderDue(step.kind.value, step.number)

        async def record(session: AsyncSession, member: Member, outcome: Outcome) -> None:
            assert due is not None  # noqa: S101 - decide() found it
            await self._record_reminder(session, member, outcome, due, plan, now)

        await self.guide.handle_decided(professional_id, decide, record)
        if elsewhere:
            self._reminded.pop(escalation_id, None)
            return False
        if plan.sends:
            await self._send_all(plan.sends)
        await self.apply(plan.wakes)
        return True

    async def _record_reminder(
        self,
        session: AsyncSession,
        member: Member,
        outcome: Outcome,
        due: _ReminderStep,
        plan: _Plan,
        now: datetime,
    ) -> None:
        """In the reminder step's transaction: what it says, recorded as pending, and the
        chain's next wake-up."""
        escalations = Escalations(session)
        row = await escalations.get(due.escalation_id)
        assert row is not None  # noqa: S101 - it was there a moment ago
        if not outcome.replies or row.stopped_at is not None:
            await escalations.stop(row, now, "not_pending")
            plan.wakes.append(Wake(row.id, None))  # a 911 chain's wake-up repeats
            return
        for say in outcome.replies:
            plan.sends.append(
                await self._pending(
                    escalations, row, member, "professional", say.text, say.buttons, now
                )
            )
        row.sent = due.number
        if due.kind is EscalationKind.CALL_911:
            # Keep to the schedule (no drift); after a long outage, skip missed periods.
            every = self.policy.call_911_reminder_every
            scheduled = row.next_at or now
            row.next_at = scheduled + every if scheduled + every > now else now + every
            plan.wakes.append(self._reminders(row))
            if due.number == self.policy.call_911_reminders_before_escalation:
                plan.sends += await self._escalate_911(session, row, now)
        else:
            self._stopping(row)
            await escalations.stop(row, now, "nudged")

    async def _escalate_911(
        self, session: AsyncSession, row: Escalation, now: datetime
    ) -> list[_Send]:
        """Tell the school's officer and every coordinator that 911 is still not confirmed."""
        incident = await Incidents(session).get(row.incident_id)
        assert incident is not None  # noqa: S101 - the caller loaded it
        school = await Schools(session).get(incident.school_id)
        people: dict[int, tuple[Member, str]] = {}
        for level in ("officer", "coordinator"):
            for member in await self._recipients(session, incident, level):
                people.setdefault(member.id, (member, level))
        since = row.started_at
        sends = []
        escalations = Escalations(session)
        for member, level in people.values():
            language = member.language
            text = self.protocol.text(
                "escalation.call_911",
                language,
                drill=Markup(self.protocol.text("drill.tag", language) if incident.drill else ""),
                code=incident.code,
                school=school.name if school else incident.school_id,
                since=hhmm(self.protocol, since),
                count=row.sent,
            )
            sends.append(await self._pending(escalations, row, member, level, text, (), now))
        await Timeline(session).append(
            at=now,
            kind=EventKind.ESCALATED,
            incident_id=incident.id,
            data={"reason": "call_911_unconfirmed", "to": sorted(people)},
        )
        return sends

    async def _send_all(self, sends: Sequence[_Send]) -> int:
        """Send pending messages, recording each outcome; returns how many failed."""
        failed = 0
        for send in sends:
            failed += not await self._deliver(send)
        return failed

    async def _deliver(self, send: _Send) -> bool:
        if self.messenger is None:
            raise RuntimeError("the escalator has no messenger attached")
        error: str | None = None
        message_id: int | None = None
        try:
            message_id = await self.messenger.send(
                send.chat_id, send.text, send.buttons, protect=send.protect
            )
        except BotRefused:
            raise  # nothing can be sent now: the wake-up is tried again, this message with it
        except DeliveryError as problem:
            error = str(problem)[:200]
            log.warning(
                "delivery %s to member %s failed: %s", send.delivery_id, send.member_id, error
            )
        pause = 0.5
        while True:
            try:
                await self._record_delivery(send, message_id, error)
                return error is None
            except (SQLAlchemyError, OSError) as problem:
                # Sent (or refused) already: sending it again would repeat it, so only the
                # record is tried again until the database answers. A stop meanwhile leaves
                # it pending, and the next start sends it again (the one window left).
                if self.closing:
                    raise
                log.warning(
                    "delivery %s: could not record that it was sent (%s); trying again in %.1f s",
                    send.delivery_id,
                    type(problem).__name__,
                    pause,
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, 30.0)

    async def _record_delivery(
        self, send: _Send, message_id: int | None, error: str | None
    ) -> None:
        """Mark a message delivered (or failed) and put it on the incident's timeline."""
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            # Recorded before sending; updated in place, without reading it back first.
            await session.execute(
                update(Delivery)
                .where(Delivery.id == send.delivery_id)
                .values(
                    status="failed" if error else "delivered",
                    sent_at=now,
                    message_id=message_id,
                    error=error,
                )
            )
            kinds = {
                ("officer_alert", True): EventKind.ALERT_SENT,
                ("officer_alert", False): EventKind.ALERT_FAILED,
                ("call_911", True): EventKind.REMINDER_SENT,
                ("call_911", False): EventKind.REMINDER_FAILED,
                ("stalled", True): EventKind.NUDGE_SENT,
                ("stalled", False): EventKind.REMINDER_FAILED,
            }
            data: dict[str, Any] = {
                "to": send.member_id,
                "level": send.level,
                "seq": send.seq,
                "delivery": send.delivery_id,
                "reason": send.reason,
            }
            if error:
                data["error"] = error
            if send.level == "professional":
                data["text"] = send.text
            await Timeline(session).extend(
                [
                    {
                        "at": now,
                        "kind": kinds[(send.kind, error is None)],
                        "incident_id": send.incident_id,
                        "data": data,
                    }
                ]
            )

    async def _skip_ahead(self, escalation_id: int) -> list[Wake]:
        """Nobody at this stage could be reached: go on to the next one at once."""
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            row = await Escalations(session).get(escalation_id)
            if row is None or row.stopped_at is not None or row.acknowledged_by is not None:
                return []
            row.next_at = now
            return [Wake(row.id, now)]

    # ---- acknowledgement ---------------------------------------------------------------------

    async def acknowledge(self, escalation_id: int, member_id: int) -> AckResult:
        """An officer pressed Acknowledge on an alert."""
        with self.changing() as changing:
            changing([escalation_id])  # stopped in the transaction, its job cancelled after
            return await self._acknowledge(escalation_id, member_id)

    async def _acknowledge(self, escalation_id: int, member_id: int) -> AckResult:
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            escalations = Escalations(session)
            members = Members(session)
            row = await escalations.get(escalation_id)
            member = await members.get(member_id)
            if row is None or member is None or row.kind is not EscalationKind.OFFICER_ALERT:
                return AckResult(Ack.UNKNOWN)
            language = member.language
            if row.acknowledged_by is not None:
                who = await members.get(row.acknowledged_by)
                name = who.display_name if who else "?"
                return AckResult(
                    Ack.ALREADY, self.protocol.text("alert.already", language, name=name)
                )
            deliveries = await escalations.deliveries(escalation_id)
            # Any message of the chain addressed to them, whatever its record says: one that
            # went out may not be recorded as delivered yet (its record is written after the
            # send, and again later if that write fails), and its addressee's press is theirs.
            if member_id not in {d.member_id for d in deliveries}:
                return AckResult(Ack.NOT_YOURS, self.protocol.text("alert.not_yours", language))
            row.acknowledged_by = member_id
            await escalations.stop(row, now, "acknowledged")
            await Timeline(session).append(
                at=now,
                kind=EventKind.ALERT_ACKNOWLEDGED,
                incident_id=row.incident_id,
                member_id=member_id,
                data={"reason": row.reason},
            )
            incident = await Incidents(session).get(row.incident_id)
            professional = await members.get(incident.opened_by) if incident else None
            edits = [
                (d.chat_id, d.message_id, d.text, d.member_id)
                for d in deliveries
                if d.status == "delivered" and d.message_id is not None
            ]
            recipients = {d.member_id: await members.get(d.member_id) for d in deliveries}
            aware = None
            if incident and professional and professional.id != member_id:
                aware = self.protocol.text(
                    "officer.aware",
                    professional.language,
                    name=member.display_name,
                    code=incident.code,
                    time=hhmm(self.protocol, now),
                )
                await Timeline(session).append(
                    at=now,
                    kind=EventKind.MESSAGE_OUT,
                    incident_id=incident.id,
                    member_id=professional.id,
                    data={"text": aware},
                )
        await self.apply([Wake(escalation_id, None)])
        await self._close_alerts(edits, recipients, member.display_name, now)
        if aware is not None and professional is not None and self.messenger is not None:
            try:
                await self.messenger.send(professional.telegram_user_id, aware)
            except DeliveryError as error:
                log.warning("could not tell the professional: %s", error)
        return AckResult(Ack.DONE)

    async def _close_alerts(
        self,
        edits: Sequence[tuple[int | None, int | None, str, int | None]],
        recipients: dict[int | None, Member | None],
        name: str,
        now: datetime,
    ) -> None:
        if self.messenger is None:
            return
        for chat_id, message_id, text, member_id in edits:
            reader = recipients.get(member_id)
            language = reader.language if reader else self.config.default_language
            line = self.protocol.text(
                "alert.acknowledged", language, name=name, time=hhmm(self.protocol, now)
            )
            try:
                await self.messenger.edit(chat_id, message_id or 0, f"{text}\n\n{line}")
            except DeliveryError as error:
                log.info("could not close alert message %s: %s", message_id, error)

    # ---- start-up ------------------------------------------------------------------------------

    async def interrupted(self) -> set[int]:
        """At start-up, before the scheduler runs: the chains with messages left pending by a
        crash, remembered so that a chain's overdue wake-up sends those first. Otherwise it
        could run before :meth:`recover` resends them, and a chain's next reminder would reach
        the professional, and the timeline, before the one the crash interrupted."""
        async with self.sessions() as session:
            pending = await Escalations(session).undelivered()
        self._interrupted = {d.escalation_id for d in pending}
        return set(self._interrupted)

    async def recover(self) -> tuple[int, int, int]:
        """After a (re)start: resend interrupted messages, then match wake-ups to the chains.

        A chain whose messages the Bot API server refuses (:class:`BotRefused`) is not counted:
        its wake-up, run at once, sends them, trying again as :meth:`fire` does.
        Returns (messages resent, wake-ups created, wake-ups removed).
        """
        known = await self.wakeup.scheduled()  # before the chains: see reconciliation()
        async with self.sessions() as session:
            escalations = Escalations(session)
            chains = sorted({d.escalation_id for d in await escalations.undelivered()})
            running = [(r.id, r.next_at) for r in await escalations.running() if r.next_at]
        resent = 0
        refused: list[int] = []
        for escalation_id in chains:
            try:
                resent += await self._resend(escalation_id)
            except BotRefused as error:
                # The server refuses the bot for now (a 401 or 404): serving must still start.
                # The chain stays interrupted, and its wake-up, run at once, resends its
                # pending messages first, trying again until the server accepts them.
                log.warning("could not resend chain %s's messages yet: %s", escalation_id, error)
                refused.append(escalation_id)
        created, removed = await self.wakeup.reconcile(running, known)
        if refused:
            now = self.clock.now()
            self.apply_soon([Wake(escalation_id, now) for escalation_id in refused])
        return resent, created, removed

    async def _resend(self, escalation_id: int) -> int:
        """Send a chain's messages left pending by a crash; returns how many.

        The scheduler is already running, so an overdue wake-up of the same chain may be
        recording and sending its own messages right now: under the chain's lock, and read
        again there, a message of that wake-up is either not yet recorded or already sent.
        """
        async with self._chain_lock(escalation_id):
            async with self.sessions() as session:
                escalations = Escalations(session)
                row = await escalations.get(escalation_id)
                if row is None:
                    return 0
                sends = [self._send_of(d, row) for d in await escalations.undelivered(row.id)]
            await self._send_all(sends)
            if self._interrupted:
                self._interrupted.discard(escalation_id)
            return len(sends)

    async def resync(self) -> tuple[int, int]:
        """Match the stored wake-ups to the running chains (periodically, while serving).

        Heals a wake-up lost while the database was unreachable; an overdue chain's wake-up is
        put back at its past time, so it runs at once. Returns (created, removed).

        Chains the program is busy with meanwhile are left alone: a wake-up that fired (its job
        no longer stored, or a repeating one already moved on to its next time) and is still at
        work or waiting its turn, or a change of wake-up not stored yet (from the commit of the
        transaction that made it, see :meth:`changing`). Their own work stores what they need;
        counting them would report a busy moment as wake-ups lost (and run them twice). A next
        resync looks at them again.
        """
        with self._changing.watch() as changing, self.wakeup.watch() as fired:
            known = await self.wakeup.scheduled()  # before the chains: see reconciliation()
            async with self.sessions() as session:
                rows = await Escalations(session).running()
            busy = changing | fired
        running = [(r.id, r.next_at) for r in rows if r.next_at and r.id not in busy]
        known = {chain: at for chain, at in known.items() if chain not in busy}
        return await self.wakeup.reconcile(running, known)
