"""Repositories: every query the program makes, each bound to one session (a unit of work)."""

from __future__ import annotations

import enum
import hashlib
import secrets
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    bindparam,
    delete,
    false,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import raiseload

from storage.models import (
    STATUS_ORDER,
    AuditEntry,
    ConfidentialityIncident,
    Conversation,
    Delivery,
    EnrollmentAttempt,
    EnrollmentCode,
    Escalation,
    EscalationKind,
    EventKind,
    Incident,
    IncidentStatus,
    LoginToken,
    Member,
    MemberSchool,
    OfficerAssignment,
    Role,
    School,
    TimelineEvent,
    WebSession,
)

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 12


@dataclass(frozen=True)
class SchoolRecord:
    """A school as config.yml describes it."""

    id: str
    name: str
    board: str
    station: str
    address: str | None


class Schools:
    """Schools, loaded from config.yml."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def sync(self, schools: Iterable[SchoolRecord]) -> tuple[int, int]:
        """Insert or update every school; returns (added, updated)."""
        added = updated = 0
        for record in schools:
            school = await self.session.get(School, record.id)
            if school is None:
                self.session.add(
                    School(
                        id=record.id,
                        name=record.name,
                        board=record.board,
                        station=record.station,
                        address=record.address,
                        active=True,
                    )
                )
                added += 1
                continue
            values = (record.name, record.board, record.station, record.address, True)
            current = (school.name, school.board, school.station, school.address, school.active)
            if values != current:
                school.name, school.board, school.station, school.address = values[:4]
                school.active = True
                updated += 1
        await self.session.flush()
        return added, updated

    async def get(self, school_id: str) -> School | None:
        """The school with this id."""
        return await self.session.get(School, school_id)

    async def of_member(self, member_id: int) -> Sequence[School]:
        """A member's active schools, by name (as ``Member.schools``, without the member)."""
        result = await self.session.scalars(
            select(School)
            .join(MemberSchool, MemberSchool.school_id == School.id)
            .where(MemberSchool.member_id == member_id, School.active.is_(True))
            .order_by(School.name)
        )
        return result.all()


def hash_code(code: str) -> str:
    """The stored form of an enrollment code (codes are random, so a plain digest is enough)."""
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


class EnrollmentProblem(enum.StrEnum):
    """Why an enrollment code was refused."""

    UNKNOWN = "unknown"
    EXPIRED = "expired"
    USED = "used"
    REVOKED = "revoked"
    ALREADY_ENROLLED = "already_enrolled"


class EnrollmentError(Exception):
    """An enrollment code cannot be redeemed."""

    def __init__(self, problem: EnrollmentProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


class Enrollment:
    """Single-use, expiring enrollment codes."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create_code(
        self, role: Role, school_id: str | None, now: datetime, ttl: timedelta
    ) -> tuple[str, EnrollmentCode]:
        """Create a code; the plain code is returned once and never stored."""
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        row = EnrollmentCode(
            code_hash=hash_code(code),
            role=role,
            school_id=school_id,
            created_at=now,
            expires_at=now + ttl,
        )
        self.session.add(row)
        await self.session.flush()
        return code, row

    async def redeem(
        self, code: str, telegram_user_id: int, display_name: str, language: str, now: datetime
    ) -> Member:
        """Bind a Telegram account to a new member, consuming the code (once, even when raced)."""
        existing = await Members(self.session).by_telegram_id(telegram_user_id)
        if existing is not None:
            raise EnrollmentError(EnrollmentProblem.ALREADY_ENROLLED)
        digest = hash_code(code)
        # Claimed in one statement: of two accounts sending the code at once, one gets it.
        claimed = await self.session.execute(
            update(EnrollmentCode)
            .where(
                EnrollmentCode.code_hash == digest,
                EnrollmentCode.used_at.is_(None),
                EnrollmentCode.revoked_at.is_(None),
                EnrollmentCode.expires_at > now,
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        row = await self.session.scalar(
            select(EnrollmentCode)
            .where(EnrollmentCode.code_hash == digest)
            .execution_options(populate_existing=True)
        )
        if row is None:
            raise EnrollmentError(EnrollmentProblem.UNKNOWN)
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            if row.revoked_at is not None:
                raise EnrollmentError(EnrollmentProblem.REVOKED)
            if row.used_at is not None:
                raise EnrollmentError(EnrollmentProblem.USED)
            raise EnrollmentError(EnrollmentProblem.EXPIRED)
        member = Member(
            telegram_user_id=telegram_user_id,
            display_name=display_name[:200] or "?",
            role=row.role,
            language=language,
            active=True,
            created_at=now,
        )
        self.session.add(member)
        await self.session.flush()
        row.used_by = member.id
        if row.school_id is not None:
            self.session.add(MemberSchool(member_id=member.id, school_id=row.school_id))
            if row.role is Role.OFFICER:
                await Officers(self.session).assign(row.school_id, member.id)
        await self.session.flush()
        await self.session.refresh(member, ["schools"])
        return member


MAX_ROW_ID = 2**31 - 1  # the largest id an INTEGER column holds on every backend


def row_id(text: str) -> int | None:
    """A row id that came from outside (button data, a form, a URL), or None if it cannot be one.

    Only ASCII digits within the columns' range: ``int()`` would take "٣" or fail on "²", and an
    id beyond the range makes the database driver raise instead of finding nothing.
    """
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    value = int(text)
    return value if value <= MAX_ROW_ID else None


class EnrollmentAttempts:
    """Wrong enrollment codes per Telegram account, and the lockouts they lead to."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def locked_until(self, telegram_user_id: int, now: datetime) -> datetime | None:
        """When the account's lockout ends, if it is locked out at ``now``."""
        until = await self.session.scalar(
            select(func.max(EnrollmentAttempt.locked_until)).where(
                EnrollmentAttempt.telegram_user_id == telegram_user_id
            )
        )
        return until if until is not None and until > now else None

    @staticmethod
    def _stale(now: datetime, window: timedelta) -> tuple[Any, ...]:
        return (
            EnrollmentAttempt.at < now - window,
            EnrollmentAttempt.locked_until.is_(None) | (EnrollmentAttempt.locked_until <= now),
        )

    async def stale(self, now: datetime, window: timedelta) -> int:
        """How many attempts no count (``window``) or lockout needs any more."""
        count = await self.session.scalar(
            select(func.count(EnrollmentAttempt.id)).where(*self._stale(now, window))
        )
        return int(count or 0)

    async def forget_stale(self, now: datetime, window: timedelta) -> int:
        """Delete the attempts no count or lockout needs any more (Telegram ids are personal
        data); returns how many."""
        result = await self.session.execute(
            delete(EnrollmentAttempt)
            .where(*self._stale(now, window))
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def record_wrong(
        self,
        telegram_user_id: int,
        now: datetime,
        *,
        window: timedelta,
        limit: int,
        lockout: timedelta,
    ) -> tuple[int, datetime | None]:
        """Record a wrong code; returns how many the account sent within ``window`` since its
        last lockout, and the end of the lockout this one started (None: no lockout)."""
        await self.forget_stale(now, window)
        mine = EnrollmentAttempt.telegram_user_id == telegram_user_id
        last_lockout = await self.session.scalar(
            select(func.max(EnrollmentAttempt.id)).where(
                mine, EnrollmentAttempt.locked_until.is_not(None)
            )
        )
        row = EnrollmentAttempt(telegram_user_id=telegram_user_id, at=now)
        self.session.add(row)
        await self.session.flush()
        count = (
            await self.session.scalar(
                select(func.count(EnrollmentAttempt.id)).where(
                    mine,
                    EnrollmentAttempt.at >= now - window,
                    EnrollmentAttempt.id > (last_lockout or 0),
                )
            )
            or 0
        )
        if count >= limit:
            row.locked_until = now + lockout
            await self.session.flush()
        return count, row.locked_until


class Members:
    """Enrolled staff."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_telegram_id(self, telegram_user_id: int) -> Member | None:
        """The member bound to this Telegram account, active or not (without their schools:
        looked up for every update, where only the member's own columns count)."""
        return await self.session.scalar(
            select(Member)
            .where(Member.telegram_user_id == telegram_user_id)
            .options(raiseload(Member.schools))
        )

    async def get(self, member_id: int | None, *, schools: bool = True) -> Member | None:
        """The member with this id (None: an anonymised incident's, nobody); ``schools=False``
        leaves their schools unloaded (reading them then raises)."""
        if member_id is None:
            return None
        options = () if schools else (raiseload(Member.schools),)
        return await self.session.get(Member, member_id, options=options)

    async def with_role(self, role: Role) -> Sequence[Member]:
        """Active members with this role."""
        result = await self.session.scalars(
            select(Member).where(Member.role == role, Member.active.is_(True)).order_by(Member.id)
        )
        return result.all()

    async def local_professional(
        self, name: str, school_id: str, language: str, now: datetime
    ) -> Member:
        """The professional who plays local mode (no Telegram account), created once."""
        member = await self.session.scalar(
            select(Member).where(
                Member.telegram_user_id.is_(None),
                Member.display_name == name,
                Member.role == Role.PROFESSIONAL,
            )
        )
        if member is None:
            member = Member(
                telegram_user_id=None,
                display_name=name,
                role=Role.PROFESSIONAL,
                language=language,
                active=True,
                created_at=now,
            )
            self.session.add(member)
            await self.session.flush()
        link = await self.session.get(MemberSchool, (member.id, school_id))
        if link is None:
            self.session.add(MemberSchool(member_id=member.id, school_id=school_id))
            await self.session.flush()
        await self.session.refresh(member, ["schools"])
        return member

    async def set_language(self, member: Member, language: str) -> None:
        """Remember the member's language (``member`` may come from another session)."""
        member.language = language
        await self.session.execute(
            update(Member).where(Member.id == member.id).values(language=language)
        )


class Officers:
    """Which community relations officer follows which school."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def assign(self, school_id: str, officer_id: int) -> OfficerAssignment:
        """Make the officer the school's officer, or its backup if it already has one."""
        row = await self.session.get(OfficerAssignment, school_id)
        if row is None:
            row = OfficerAssignment(school_id=school_id, officer_id=officer_id)
            self.session.add(row)
        elif row.officer_id != officer_id and row.backup_officer_id is None:
            row.backup_officer_id = officer_id
        await self.session.flush()
        return row

    async def for_school(self, school_id: str) -> OfficerAssignment | None:
        """The school's assignment, if any."""
        return await self.session.get(OfficerAssignment, school_id)

    async def assigned(self, school_id: str, *, backup: bool = False) -> Member | None:
        """The school's officer (or backup officer), if there is one and they are active: one
        statement (their schools are not loaded; reading them raises)."""
        officer = OfficerAssignment.backup_officer_id if backup else OfficerAssignment.officer_id
        return await self.session.scalar(
            select(Member)
            .join(OfficerAssignment, officer == Member.id)
            .where(OfficerAssignment.school_id == school_id, Member.active.is_(True))
            .options(raiseload(Member.schools))
        )

    async def schools_of(self, member_id: int) -> set[str]:
        """The schools an officer follows, as officer, backup, or by enrollment."""
        assigned = await self.session.scalars(
            select(OfficerAssignment.school_id).where(
                (OfficerAssignment.officer_id == member_id)
                | (OfficerAssignment.backup_officer_id == member_id)
            )
        )
        enrolled = await self.session.scalars(
            select(MemberSchool.school_id).where(MemberSchool.member_id == member_id)
        )
        return set(assigned.all()) | set(enrolled.all())


class StatusError(Exception):
    """An incident's status may only move forward."""


# The highest incident number handed out so far, per database and year (see Incidents.open).
_TAKEN: weakref.WeakKeyDictionary[Engine, dict[int, int]] = weakref.WeakKeyDictionary()


class Incidents:
    """Incidents and their status."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def open(self, school_id: str, opened_by: int, drill: bool, now: datetime) -> Incident:
        """Open an incident with the next public code of the year (SX-2026-0001).

        Incidents opened at the same moment take their numbers one after the other, without a
        lock held until their transactions end (on PostgreSQL, such a lock made every other
        opener wait for each whole opening transaction in turn): the number is one more than
        the highest of those committed (by any process) and those this program handed out and
        may not have committed yet. A number whose transaction fails is not given again, so
        codes can skip a number after a failure; the unique constraint stays the last guard
        (against another process opening at the same moment).
        """
        engine = self.session.get_bind().engine
        committed = await self.session.scalar(
            select(func.coalesce(func.max(Incident.number), 0)).where(Incident.year == now.year)
        )
        taken = _TAKEN.setdefault(engine, {})
        number = max(committed or 0, taken.get(now.year, 0)) + 1
        taken[now.year] = number
        incident = Incident(
            code=f"SX-{now.year}-{number:04d}",
            year=now.year,
            number=number,
            school_id=school_id,
            opened_by=opened_by,
            status=IncidentStatus.OPEN,
            drill=drill,
            opened_at=now,
            updated_at=now,
        )
        self.session.add(incident)
        await self.session.flush()
        return incident

    async def get(self, incident_id: int) -> Incident | None:
        """The incident with this id."""
        return await self.session.get(Incident, incident_id)

    async def by_code(self, code: str) -> Incident | None:
        """The incident with this public code."""
        return await self.session.scalar(select(Incident).where(Incident.code == code))

    async def open_at(self, school_ids: Iterable[str] | None) -> Sequence[Incident]:
        """Incidents not closed or cancelled, newest first, at these schools (None: all)."""
        query = select(Incident).where(
            Incident.status.not_in((IncidentStatus.CLOSED, IncidentStatus.CANCELLED))
        )
        if school_ids is not None:
            query = query.where(Incident.school_id.in_(list(school_ids)))
        return (await self.session.scalars(query.order_by(Incident.opened_at.desc()))).all()

    async def advance(self, incident: Incident, status: IncidentStatus, now: datetime) -> bool:
        """Move the status forward; returns False when it already is there or beyond."""
        if incident.status in (IncidentStatus.CLOSED, IncidentStatus.CANCELLED):
            if status == incident.status:
                return False
            raise StatusError(f"{incident.code} is {incident.status.value}")
        if STATUS_ORDER.index(status) <= STATUS_ORDER.index(incident.status):
            return False
        incident.status = status
        incident.updated_at = now
        if status is IncidentStatus.POLICE_CALLED:
            incident.police_called_at = now
        elif status is IncidentStatus.KIT_COLLECTED:
            incident.kit_collected_at = now
        elif status in (IncidentStatus.CLOSED, IncidentStatus.CANCELLED):
            incident.closed_at = now
        await self.session.flush()
        return True

    async def cancel(self, incident: Incident, reason: str, now: datetime) -> None:
        """Cancel an incident that is not closed yet, keeping the reason."""
        await self.advance(incident, IncidentStatus.CANCELLED, now)
        incident.cancel_reason = reason
        await self.session.flush()

    async def update(self, incident: Incident, now: datetime, **fields: Any) -> None:
        """Set plain fields (device_count, event_number, outcome)."""
        allowed = {"device_count", "event_number", "outcome"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"not updatable: {', '.join(sorted(unknown))}")
        for name, value in fields.items():
            setattr(incident, name, value)
        incident.updated_at = now
        await self.session.flush()


_TIMELINE = cast(Table, TimelineEvent.__table__)


class Timeline:
    """The append-only timeline (there is deliberately no update or delete here)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def append(
        self,
        *,
        at: datetime,
        kind: str,
        incident_id: int | None = None,
        member_id: int | None = None,
        step: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> TimelineEvent:
        """Record one event."""
        row = TimelineEvent(
            incident_id=incident_id,
            member_id=member_id,
            at=at,
            kind=kind,
            step=step,
            data=data or {},
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def extend(self, events: Sequence[dict[str, Any]]) -> None:
        """Record several events in one statement, in order (keys as for :meth:`append`)."""
        if events:
            rows = [
                {"incident_id": None, "member_id": None, "step": None, "redacted_at": None}
                | {**event, "data": event.get("data") or {}}
                for event in events
            ]
            # A plain insert into the table, every row with the same columns: one statement.
            await self.session.execute(insert(_TIMELINE), rows)

    async def last_step_done(self, incident_id: int) -> datetime | None:
        """When the incident's latest step was completed, if any was."""
        moment: datetime | None = await self.session.scalar(
            select(func.max(TimelineEvent.at)).where(
                TimelineEvent.incident_id == incident_id,
                TimelineEvent.kind == EventKind.STEP_DONE,
            )
        )
        return moment

    async def for_incident(self, incident_id: int) -> Sequence[TimelineEvent]:
        """An incident's events in order."""
        result = await self.session.scalars(
            select(TimelineEvent)
            .where(TimelineEvent.incident_id == incident_id)
            .order_by(TimelineEvent.at, TimelineEvent.id)
        )
        return result.all()

    async def for_member(self, member_id: int) -> Sequence[TimelineEvent]:
        """A member's events in order (including chat outside incidents)."""
        result = await self.session.scalars(
            select(TimelineEvent)
            .where(TimelineEvent.member_id == member_id)
            .order_by(TimelineEvent.at, TimelineEvent.id)
        )
        return result.all()


_MEMBERS = cast(Table, Member.__table__)
_MEMBER_COLUMNS = tuple(_MEMBERS.c)
_CONVERSATION = cast(Table, Conversation.__table__)
_STEP_LOAD = (
    select(*_MEMBER_COLUMNS, _CONVERSATION.c.state)
    .select_from(_MEMBERS.outerjoin(_CONVERSATION, _CONVERSATION.c.member_id == _MEMBERS.c.id))
    .where(_MEMBERS.c.id == bindparam("member_id"))
)
_SAVE_STATE = (
    update(_CONVERSATION)
    .where(_CONVERSATION.c.member_id == bindparam("member"))
    .values(state=bindparam("state"), updated_at=bindparam("updated_at"))
)


class Conversations:
    """Each member's place in the guide."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        # Whether load() found a saved state, for save() in the same transaction.
        self._found: dict[int, bool] = {}

    async def load(self, member_id: int) -> dict[str, Any] | None:
        """The saved state, if any."""
        state = await self.session.scalar(
            select(Conversation.state).where(Conversation.member_id == member_id)
        )
        self._found[member_id] = state is not None
        return None if state is None else dict(state)

    async def load_with_member(
        self, member_id: int
    ) -> tuple[Member | None, dict[str, Any] | None]:
        """The member and their saved state, in one statement: every step of the guide starts
        here.

        The member is read as a plain row (a fraction of the cost of loading it through the
        session) and returned as a detached copy: its own columns only (its schools read as
        empty), and changes to it are not saved by the session (see Members.set_language).
        """
        found = (await self.session.execute(_STEP_LOAD, {"member_id": member_id})).first()
        if found is None:
            return None, None
        values = found._mapping
        member = Member(**{column.key: values[column] for column in _MEMBER_COLUMNS})
        state = values[_CONVERSATION.c.state]
        self._found[member_id] = state is not None
        return member, None if state is None else dict(state)

    async def save(self, member_id: int, state: dict[str, Any], now: datetime) -> None:
        """Replace the saved state."""
        found = self._found.get(member_id)
        if found is None:
            found = await self.load(member_id) is not None
        # A plain statement on the table: no Conversation objects are loaded anywhere, so
        # there is nothing in the session to bring up to date.
        if found:
            await self.session.execute(
                _SAVE_STATE, {"member": member_id, "state": state, "updated_at": now}
            )
        else:
            await self.session.execute(
                insert(_CONVERSATION).values(member_id=member_id, state=state, updated_at=now)
            )
        self._found[member_id] = True


class Escalations:
    """Reminder and alert chains, and each message they sent."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def start(
        self,
        incident_id: int,
        kind: EscalationKind,
        now: datetime,
        next_at: datetime,
        reason: str = "",
        among: Sequence[Escalation] | None = None,
    ) -> Escalation:
        """Start a chain, or restart a stopped one; a running one is returned unchanged.

        ``among``: the incident's chains of this kind, just read by the caller (found there
        instead of queried again).
        """
        if among is not None:
            row = next(
                (
                    r
                    for r in among
                    if r.incident_id == incident_id and r.kind == kind and r.reason == reason
                ),
                None,
            )
        else:
            row = await self.session.scalar(
                select(Escalation).where(
                    Escalation.incident_id == incident_id,
                    Escalation.kind == kind,
                    Escalation.reason == reason,
                )
            )
        if row is None:
            row = Escalation(
                incident_id=incident_id,
                kind=kind,
                reason=reason,
                started_at=now,
                sent=0,
                next_at=next_at,
            )
            self.session.add(row)
        elif row.stopped_at is not None and row.acknowledged_by is None:
            row.stopped_at = None
            row.stop_reason = None
            row.started_at = now
            row.sent = 0
            row.next_at = next_at
        await self.session.flush()
        return row

    async def get(self, escalation_id: int) -> Escalation | None:
        """The chain with this id."""
        return await self.session.get(Escalation, escalation_id)

    async def for_incident(
        self, incident_id: int, kind: EscalationKind | None = None
    ) -> Sequence[Escalation]:
        """An incident's chains, running or not."""
        query = select(Escalation).where(Escalation.incident_id == incident_id)
        if kind is not None:
            query = query.where(Escalation.kind == kind)
        return (await self.session.scalars(query.order_by(Escalation.id))).all()

    async def stop(self, row: Escalation, now: datetime, why: str) -> bool:
        """Stop a running chain; False if it was already stopped."""
        if row.stopped_at is not None:
            return False
        row.stopped_at = now
        row.stop_reason = why
        row.next_at = None
        await self.session.flush()
        return True

    async def running(self) -> Sequence[Escalation]:
        """Every chain that still has a next step."""
        result = await self.session.scalars(
            select(Escalation)
            .where(Escalation.stopped_at.is_(None), Escalation.next_at.is_not(None))
            .order_by(Escalation.id)
        )
        return result.all()

    async def add_delivery(
        self,
        row: Escalation,
        member_id: int,
        chat_id: int | None,
        level: str,
        text: str,
        now: datetime,
        buttons: list[Any] | None = None,
        protect: bool = True,
    ) -> Delivery:
        """Record a message about to be sent (status pending)."""
        delivery = Delivery(
            escalation_id=row.id,
            seq=row.sent + 1,
            member_id=member_id,
            level=level,
            chat_id=chat_id,
            status="pending",
            created_at=now,
            text=text,
            buttons=buttons or [],
            protect=protect,
        )
        self.session.add(delivery)
        await self.session.flush()
        return delivery

    async def deliveries(self, escalation_id: int) -> Sequence[Delivery]:
        """Every message of a chain, in order."""
        result = await self.session.scalars(
            select(Delivery).where(Delivery.escalation_id == escalation_id).order_by(Delivery.id)
        )
        return result.all()

    async def undelivered(self, escalation_id: int | None = None) -> Sequence[Delivery]:
        """Messages recorded as about to be sent whose sending never finished (a crash), of
        every chain or of one."""
        query = select(Delivery).where(Delivery.status == "pending")
        if escalation_id is not None:
            query = query.where(Delivery.escalation_id == escalation_id)
        result = await self.session.scalars(query.order_by(Delivery.id))
        return result.all()


# ---- the dashboard ------------------------------------------------------------------------------


def hash_token(token: str) -> str:
    """The stored form of a sign-in or session token (random, so a plain digest is enough)."""
    return hashlib.sha256(token.encode()).hexdigest()


class LoginProblem(enum.StrEnum):
    """Why a sign-in link was refused."""

    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    INACTIVE = "inactive"


class LoginError(Exception):
    """A sign-in link cannot be used."""

    def __init__(self, problem: LoginProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


class LoginTokens:
    """Single-use, expiring dashboard sign-in links, stored only as a hash."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def issue(self, member_id: int, now: datetime, ttl: timedelta) -> str:
        """Create a token for a member; the plain token is returned once and never stored."""
        token = secrets.token_urlsafe(32)
        self.session.add(
            LoginToken(
                token_hash=hash_token(token),
                member_id=member_id,
                created_at=now,
                expires_at=now + ttl,
            )
        )
        await self.session.flush()
        return token

    async def redeem(self, token: str, now: datetime) -> Member:
        """Consume a token and return its member; a token works once, even when raced."""
        digest = hash_token(token.strip())
        claimed = await self.session.execute(
            update(LoginToken)
            .where(
                LoginToken.token_hash == digest,
                LoginToken.used_at.is_(None),
                LoginToken.expires_at > now,
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        row = await self.session.scalar(select(LoginToken).where(LoginToken.token_hash == digest))
        if row is None:
            raise LoginError(LoginProblem.UNKNOWN)
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            expired = row.used_at is None
            raise LoginError(LoginProblem.EXPIRED if expired else LoginProblem.USED)
        member = await self.session.get(Member, row.member_id)
        if member is None or not member.active:
            raise LoginError(LoginProblem.INACTIVE)
        return member


class WebSessions:
    """Signed-in dashboard sessions; the browser holds the token, the table its hash."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def open(self, member_id: int, now: datetime, lifetime: timedelta) -> str:
        """Start a session; returns its token (to put in the cookie)."""
        token = secrets.token_urlsafe(32)
        self.session.add(
            WebSession(
                token_hash=hash_token(token),
                member_id=member_id,
                created_at=now,
                expires_at=now + lifetime,
            )
        )
        await self.session.flush()
        return token

    async def active(self, token: str, now: datetime) -> WebSession | None:
        """The session of a token, unless it ended or expired."""
        return await self.session.scalar(
            select(WebSession).where(
                WebSession.token_hash == hash_token(token),
                WebSession.ended_at.is_(None),
                WebSession.expires_at > now,
            )
        )

    async def end(self, token: str, now: datetime) -> bool:
        """Sign out; False when the session had already ended."""
        row = await self.active(token, now)
        if row is None:
            return False
        row.ended_at = now
        await self.session.flush()
        return True

    async def end_all(self, member_id: int, now: datetime) -> int:
        """End every open session of a member (deactivated); returns how many."""
        result = await self.session.execute(
            update(WebSession)
            .where(WebSession.member_id == member_id, WebSession.ended_at.is_(None))
            .values(ended_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


class AuditLog:
    """Who did what in the dashboard, and when (append-only: no update or delete here)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def append(
        self,
        *,
        at: datetime,
        member_id: int | None,
        action: str,
        target: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Record one action."""
        row = AuditEntry(
            at=at,
            member_id=member_id,
            action=action,
            target=target[:100] if target else None,
            data=data or {},
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def page(self, offset: int, limit: int) -> tuple[Sequence[AuditEntry], int]:
        """Entries newest first, and how many there are in all."""
        total = await self.session.scalar(select(func.count()).select_from(AuditEntry)) or 0
        rows = await self.session.scalars(
            select(AuditEntry)
            .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return rows.all(), total


@dataclass(frozen=True)
class IncidentFilter:
    """What a list of incidents is narrowed to (None: any)."""

    school_id: str | None = None
    status: IncidentStatus | None = None
    opened_from: datetime | None = None
    opened_before: datetime | None = None
    drill: bool | None = None


SORTS: dict[str, tuple[Any, ...]] = {
    "opened_desc": (Incident.opened_at.desc(), Incident.id.desc()),
    "opened_asc": (Incident.opened_at.asc(), Incident.id.asc()),
    "code": (Incident.year.asc(), Incident.number.asc()),
    "school": (Incident.school_id.asc(), Incident.opened_at.desc()),
    "status": (Incident.status.asc(), Incident.opened_at.desc()),
}


AnySelect = TypeVar("AnySelect", bound=Select[*tuple[Any, ...]])


class IncidentRegister:
    """Incidents as one reader may see them: every query is limited to the reader's schools.

    ``schools`` is None for readers who see every school (coordinators), else the set of
    schools they follow (an empty set: nothing at all).
    """

    def __init__(self, session: AsyncSession, schools: frozenset[str] | None) -> None:
        self.session = session
        self.schools = schools

    def _visible(self) -> ColumnElement[bool] | None:
        if self.schools is None:
            return None
        if not self.schools:
            return false()
        return Incident.school_id.in_(sorted(self.schools))

    def scoped(self, query: AnySelect) -> AnySelect:
        """Limit a query over incidents to the reader's schools."""
        condition = self._visible()
        return query if condition is None else query.where(condition)

    def _filtered(self, query: AnySelect, wanted: IncidentFilter) -> AnySelect:
        query = self.scoped(query)
        if wanted.school_id is not None:
            query = query.where(Incident.school_id == wanted.school_id)
        if wanted.status is not None:
            query = query.where(Incident.status == wanted.status)
        if wanted.opened_from is not None:
            query = query.where(Incident.opened_at >= wanted.opened_from)
        if wanted.opened_before is not None:
            query = query.where(Incident.opened_at < wanted.opened_before)
        if wanted.drill is not None:
            query = query.where(Incident.drill.is_(wanted.drill))
        return query

    async def search(
        self, wanted: IncidentFilter, sort: str, offset: int, limit: int
    ) -> tuple[Sequence[Incident], int]:
        """One page of the matching incidents, and how many match in all."""
        total = await self.session.scalar(self._filtered(select(func.count(Incident.id)), wanted))
        rows = await self.session.scalars(
            self._filtered(select(Incident), wanted)
            .order_by(*SORTS.get(sort, SORTS["opened_desc"]))
            .offset(offset)
            .limit(limit)
        )
        return rows.all(), total or 0

    async def matching(self, wanted: IncidentFilter, sort: str = "opened_desc") -> list[Incident]:
        """Every matching incident (exports, statistics)."""
        rows = await self.session.scalars(
            self._filtered(select(Incident), wanted).order_by(
                *SORTS.get(sort, SORTS["opened_desc"])
            )
        )
        return list(rows.all())

    async def status_counts(self, wanted: IncidentFilter) -> dict[IncidentStatus, int]:
        """How many matching incidents are in each status (the status filter is ignored)."""
        everything = IncidentFilter(
            wanted.school_id, None, wanted.opened_from, wanted.opened_before, wanted.drill
        )
        rows = await self.session.execute(
            self._filtered(select(Incident.status, func.count(Incident.id)), everything).group_by(
                Incident.status
            )
        )
        return {IncidentStatus(status): int(count) for status, count in rows}

    async def by_code(self, code: str) -> Incident | None:
        """The incident with this code, if the reader may see it."""
        return await self.session.scalar(
            self.scoped(select(Incident).where(Incident.code == code))
        )

    async def timeline(self, incident: Incident) -> Sequence[TimelineEvent]:
        """A visible incident's events in order."""
        return await Timeline(self.session).for_incident(await self._checked(incident))

    async def escalations(self, incident: Incident) -> list[tuple[Escalation, Sequence[Delivery]]]:
        """A visible incident's reminder and alert chains, each with its messages."""
        escalations = Escalations(self.session)
        chains = await escalations.for_incident(await self._checked(incident))
        return [(chain, await escalations.deliveries(chain.id)) for chain in chains]

    async def acknowledgements(
        self, incident_ids: Iterable[int]
    ) -> Sequence[tuple[int, datetime, datetime]]:
        """(incident id, alert started, acknowledged) for acknowledged officer alerts."""
        ids = list(incident_ids)
        if not ids:
            return []
        rows = await self.session.execute(
            self.scoped(
                select(Escalation.incident_id, Escalation.started_at, Escalation.stopped_at)
                .join(Incident, Incident.id == Escalation.incident_id)
                .where(
                    Escalation.incident_id.in_(ids),
                    Escalation.kind == EscalationKind.OFFICER_ALERT,
                    # Not acknowledged_by: anonymised incidents keep the time, not the person.
                    Escalation.stop_reason == "acknowledged",
                    Escalation.stopped_at.is_not(None),
                )
                .order_by(Escalation.id)
            )
        )
        return [(i, started, stopped) for i, started, stopped in rows if stopped]

    async def _checked(self, incident: Incident) -> int:
        visible = self._visible()
        if visible is not None:
            allowed = await self.session.scalar(
                select(Incident.id).where(Incident.id == incident.id, visible)
            )
            if allowed is None:
                raise PermissionError(f"{incident.code} is not visible to this reader")
        return incident.id


class Roster:
    """Members as coordinators administer them."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def everyone(self) -> Sequence[Member]:
        """Every member, active first, then by role and name."""
        rows = await self.session.scalars(
            select(Member).order_by(Member.active.desc(), Member.role, Member.display_name)
        )
        return rows.all()

    async def names(self, member_ids: Iterable[int]) -> dict[int, str]:
        """Display names by member id."""
        ids = sorted(set(member_ids))
        if not ids:
            return {}
        rows = await self.session.execute(
            select(Member.id, Member.display_name).where(Member.id.in_(ids))
        )
        return {member_id: name for member_id, name in rows}

    async def local_coordinator(self, name: str, language: str, now: datetime) -> Member:
        """The coordinator who signs in to local mode's dashboard (no Telegram), created once."""
        member = await self.session.scalar(
            select(Member).where(
                Member.telegram_user_id.is_(None),
                Member.display_name == name,
                Member.role == Role.COORDINATOR,
            )
        )
        if member is None:
            member = Member(
                telegram_user_id=None,
                display_name=name,
                role=Role.COORDINATOR,
                language=language,
                active=True,
                created_at=now,
            )
            self.session.add(member)
            await self.session.flush()
        return member

    async def set_active(self, member: Member, active: bool, now: datetime) -> bool:
        """Deactivate (ending their dashboard sessions) or reactivate; False if unchanged."""
        if member.active == active:
            return False
        member.active = active
        if not active:
            await WebSessions(self.session).end_all(member.id, now)
        await self.session.flush()
        return True


class AssignmentError(Exception):
    """An officer assignment is not possible (the message says why)."""


class Assignments:
    """Every school's community relations officer and backup, as coordinators set them."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def all(self) -> dict[str, OfficerAssignment]:
        """The assignments by school id."""
        rows = await self.session.scalars(select(OfficerAssignment))
        return {row.school_id: row for row in rows.all()}

    async def change(
        self, school_id: str, officer_id: int | None, backup_id: int | None
    ) -> OfficerAssignment | None:
        """Set (or with no officer, remove) a school's officer and backup."""
        if await self.session.get(School, school_id) is None:
            raise AssignmentError(f"unknown school {school_id!r}")
        if officer_id is None and backup_id is not None:
            raise AssignmentError("a backup needs an officer")
        if officer_id is not None and officer_id == backup_id:
            raise AssignmentError("the backup must be another officer")
        for member_id in (officer_id, backup_id):
            if member_id is None:
                continue
            member = await self.session.get(Member, member_id)
            if member is None or member.role is not Role.OFFICER or not member.active:
                raise AssignmentError(f"member {member_id} is not an active officer")
        row = await self.session.get(OfficerAssignment, school_id)
        if officer_id is None:
            if row is not None:
                await self.session.delete(row)
                await self.session.flush()
            return None
        if row is None:
            row = OfficerAssignment(school_id=school_id, officer_id=officer_id)
            self.session.add(row)
        row.officer_id = officer_id
        row.backup_officer_id = backup_id
        await self.session.flush()
        return row


class EnrollmentCodes:
    """Enrollment codes as coordinators see them (they are created by :class:`Enrollment`)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def recent(self, limit: int = 100) -> Sequence[EnrollmentCode]:
        """The newest codes first (their hashes only)."""
        rows = await self.session.scalars(
            select(EnrollmentCode)
            .order_by(EnrollmentCode.created_at.desc(), EnrollmentCode.id.desc())
            .limit(limit)
        )
        return rows.all()

    async def revoke(self, code_id: int, now: datetime) -> bool:
        """Revoke an unused code; False when it was used, revoked already, or unknown."""
        row = await self.session.get(EnrollmentCode, code_id)
        if row is None or row.used_at is not None or row.revoked_at is not None:
            return False
        row.revoked_at = now
        await self.session.flush()
        return True


# ---- members' data and the confidentiality register ------------------------------------------


class MemberRecords:
    """What the program holds about one member, for their data export (portability).

    Incidents are read through a reader's :class:`IncidentRegister`, so its scope applies.
    """

    def __init__(self, session: AsyncSession, register: IncidentRegister) -> None:
        self.session = session
        self.register = register

    async def incidents(self, member_id: int) -> list[Incident]:
        """Incidents the member opened, was alerted about, acknowledged or acted on, by date."""
        opened = select(Incident.id).where(Incident.opened_by == member_id)
        alerted = (
            select(Escalation.incident_id)
            .join(Delivery, Delivery.escalation_id == Escalation.id)
            .where(Delivery.member_id == member_id)
        )
        acknowledged = select(Escalation.incident_id).where(
            Escalation.acknowledged_by == member_id
        )
        acted = select(TimelineEvent.incident_id).where(
            TimelineEvent.member_id == member_id, TimelineEvent.incident_id.is_not(None)
        )
        ids: set[int] = set()
        for query in (opened, alerted, acknowledged, acted):
            ids.update(i for i in (await self.session.scalars(query)).all() if i is not None)
        if not ids:
            return []
        rows = await self.session.scalars(
            self.register.scoped(select(Incident).where(Incident.id.in_(sorted(ids)))).order_by(
                Incident.opened_at, Incident.id
            )
        )
        return list(rows.all())

    async def conversation(self, member_id: int) -> list[TimelineEvent]:
        """The member's messages and the bot's messages to them, in order, within the scope."""
        kinds = (EventKind.MESSAGE_IN, EventKind.MESSAGE_OUT, EventKind.MEDIA_DELETED)
        rows = await self.session.scalars(
            select(TimelineEvent)
            .where(TimelineEvent.member_id == member_id, TimelineEvent.kind.in_(kinds))
            .order_by(TimelineEvent.at, TimelineEvent.id)
        )
        events = list(rows.all())
        visible = {i.id for i in await self.incidents(member_id)}
        return [e for e in events if e.incident_id is None or e.incident_id in visible]

    async def deliveries(self, member_id: int) -> list[tuple[Delivery, Escalation, Incident]]:
        """Every alert, reminder or nudge addressed to the member, with its chain and incident."""
        rows = await self.session.execute(
            self.register.scoped(
                select(Delivery, Escalation, Incident)
                .join(Escalation, Escalation.id == Delivery.escalation_id)
                .join(Incident, Incident.id == Escalation.incident_id)
                .where(Delivery.member_id == member_id)
            ).order_by(Delivery.created_at, Delivery.id)
        )
        return [(delivery, chain, incident) for delivery, chain, incident in rows]

    async def acknowledgements(self, member_id: int) -> list[tuple[Escalation, Incident]]:
        """The alerts the member acknowledged, with their incident."""
        rows = await self.session.execute(
            self.register.scoped(
                select(Escalation, Incident)
                .join(Incident, Incident.id == Escalation.incident_id)
                .where(Escalation.acknowledged_by == member_id)
            ).order_by(Escalation.stopped_at, Escalation.id)
        )
        return [(chain, incident) for chain, incident in rows]

    async def sign_ins(self, member_id: int) -> Sequence[WebSession]:
        """The member's dashboard sessions, oldest first."""
        rows = await self.session.scalars(
            select(WebSession)
            .where(WebSession.member_id == member_id)
            .order_by(WebSession.created_at, WebSession.id)
        )
        return rows.all()

    async def enrolled_at(self, member_id: int) -> datetime | None:
        """When the member redeemed their enrollment code (None: made otherwise)."""
        return await self.session.scalar(
            select(EnrollmentCode.used_at).where(EnrollmentCode.used_by == member_id).limit(1)
        )


REGISTER_FIELDS = (
    "description",
    "personal_information",
    "occurred_on",
    "occurred_until",
    "discovered_on",
    "people_count",
    "people_count_estimated",
    "risk_assessment",
    "serious_injury_risk",
    "commission_notified_on",
    "people_notified_on",
    "notification_details",
    "measures",
)


class ConfidentialityRegister:
    """The register of confidentiality incidents (Law 25) that coordinators keep."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def newest_first(self) -> Sequence[ConfidentialityIncident]:
        """Every entry, the most recently discovered first."""
        rows = await self.session.scalars(
            select(ConfidentialityIncident).order_by(
                ConfidentialityIncident.discovered_on.desc(), ConfidentialityIncident.id.desc()
            )
        )
        return rows.all()

    async def get(self, entry_id: int) -> ConfidentialityIncident | None:
        """The entry with this id."""
        return await self.session.get(ConfidentialityIncident, entry_id)

    async def record(
        self, values: dict[str, Any], recorded_by: int, now: datetime
    ) -> ConfidentialityIncident:
        """Add an entry, noting who recorded it and when."""
        _check_fields(values, complete=True)
        row = ConfidentialityIncident(
            **values,
            recorded_by=recorded_by,
            recorded_at=now,
            updated_by=recorded_by,
            updated_at=now,
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def amend(
        self, row: ConfidentialityIncident, values: dict[str, Any], by: int, now: datetime
    ) -> list[str]:
        """Change an entry; returns the names of the fields that changed (none: untouched)."""
        _check_fields(values, complete=False)
        changed = [name for name, value in values.items() if getattr(row, name) != value]
        if not changed:
            return []
        for name in changed:
            setattr(row, name, values[name])
        row.updated_by = by
        row.updated_at = now
        await self.session.flush()
        return changed


def _check_fields(values: dict[str, Any], complete: bool) -> None:
    unknown = set(values) - set(REGISTER_FIELDS)
    if unknown:
        raise ValueError(f"not register fields: {', '.join(sorted(unknown))}")
    missing = set(REGISTER_FIELDS) - set(values)
    if complete and missing:
        raise ValueError(f"missing register fields: {', '.join(sorted(missing))}")
