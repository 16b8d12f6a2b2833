"""The guide service: runs the engine for one member and carries out its effects in storage.

Shared by every front end (Telegram, the console chat): they turn what the person did into an
event, call :meth:`Guide.handle`, and deliver the :class:`Outcome`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.escalation import Escalator, Wake
from bot.settings import Config
from dialogues.effects import (
    AdvanceStatus,
    CancelIncident,
    Effect,
    MarkChoice,
    NotifyOfficers,
    OpenIncident,
    Say,
    SetLanguage,
    StartReminders,
    StepCompleted,
    StopReminders,
    UpdateIncident,
)
from dialogues.engine import handled_again, step
from dialogues.events import (
    ButtonPressed,
    CancelRequested,
    Event,
    HelpRequested,
    IncidentOpened,
    StartIncident,
    StatusRequested,
    UserSaid,
    language_request,
)
from dialogues.protocol import Protocol as GuideProtocol
from dialogues.state import SchoolRef, State
from nlu.types import Interpreter
from storage.models import EventKind, Incident, IncidentStatus, Member, Role
from storage.repositories import (
    Conversations,
    Enrollment,
    EnrollmentAttempts,
    EnrollmentError,
    EnrollmentProblem,
    Incidents,
    Members,
    Schools,
    Timeline,
)

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What to deliver after an event: replies to the member, and messages to others."""

    replies: list[Say] = field(default_factory=list)
    choice: MarkChoice | None = None
    language: str = "fr"


# Work done in a step's transaction after it (see Guide.handle).
Then = Callable[[AsyncSession, Member, Outcome], Awaitable[None]]
# What the event is, decided in the step's transaction before it (see Guide.handle_decided).
Decide = Callable[[AsyncSession], Awaitable[Event | None]]


# A command typed as text: a slash, then a command's letters, digits or underscores, maybe
# "@bot", then a space or the end. "/ can I look?" is words. Telegram marks a typed command with
# a bot_command entity, but some clients and Bot API servers leave it out.
TYPED_COMMAND = re.compile(r"^/(\w+)(?:@\w+)?(?:\s|$)", re.ASCII)


def command_name(text: str) -> str | None:
    """The name of the command ``text`` starts with, in lower case; None for words."""
    match = TYPED_COMMAND.match(text)
    return match.group(1).lower() if match else None


def command_event(name: str, argument: str) -> Event:
    """What a typed command other than /incident asks: /status, /cancel, /help or /lang (with
    its argument); any command the bot does not have gets the help, as in Telegram."""
    if name == "lang":
        return language_request(argument)
    if name == "status":
        return StatusRequested()
    if name == "cancel":
        return CancelRequested()
    return HelpRequested()


def language_for(telegram_code: str | None, default: str) -> str:
    """The bot language closest to a Telegram language code."""
    if telegram_code:
        prefix = telegram_code.lower()[:2]
        if prefix in ("fr", "en"):
            return prefix
    return default


class Guide:
    """Runs members' conversations through the engine, on the database."""

    def __init__(
        self,
        protocol: GuideProtocol,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        config: Config,
        escalator: Escalator,
        interpreter: Interpreter | None = None,
    ) -> None:
        self.protocol = protocol
        self.sessions = sessions
        self.clock = clock
        self.config = config
        self.escalator = escalator
        self.interpreter = interpreter
        # One event at a time per member: a reminder and a button press for the same person
        # must not both load the conversation and the later save undo the earlier one.
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()
        # Telegram account -> member id, for accounts last seen bound to an active member: a
        # hint only, checked inside each step's transaction (handle_account).
        self._accounts: dict[int, int] = {}

    def _lock(self, member_id: int) -> asyncio.Lock:
        lock = self._locks.get(member_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[member_id] = lock
        return lock

    # ---- members --------------------------------------------------------------------------------

    async def member_for(self, telegram_user_id: int) -> Member | None:
        """The member bound to a Telegram account."""
        async with self.sessions() as session:
            member = await Members(session).by_telegram_id(telegram_user_id)
        if member is not None and member.active:
            self._accounts[telegram_user_id] = member.id
        else:
            self._accounts.pop(telegram_user_id, None)
        return member

    def knows(self, telegram_user_id: int) -> bool:
        """Whether :meth:`handle_account` may find this account's member without a lookup."""
        return telegram_user_id in self._accounts

    async def handle_account(self, telegram_user_id: int, event: Event) -> Outcome | None:
        """:meth:`handle` for the member of a Telegram account, in one transaction with the
        check that the account still belongs to an active member (no separate lookup).

        None, with nothing recorded: the account is not known to belong to an active member
        (never looked up by :meth:`member_for`, or unbound or deactivated since); the caller
        then looks it up and tells the person why not.
        """
        member_id = self._accounts.get(telegram_user_id)
        if member_id is None:
            return None
        event = await self._understood(event)
        async with self._lock(member_id):
            return await self._handle(member_id, event, None, account=telegram_user_id)

    async def enroll(
        self, code: str, telegram_user_id: int, display_name: str, language: str
    ) -> tuple[Member | None, str]:
        """Redeem an enrollment code; returns the new member (or None) and what to say.

        Wrong codes are counted per Telegram account: after ``enrollment.max_wrong_codes`` of
        them within ``enrollment.wrong_code_window``, the account's attempts are refused for
        ``enrollment.lockout`` without the code being looked at, even a right one.
        """
        now = self.clock.now()
        rules = self.config.enrollment
        async with self.sessions() as session, session.begin():
            attempts = EnrollmentAttempts(session)
            locked = await attempts.locked_until(telegram_user_id, now)
            if locked is not None:
                log.warning(
                    "enrollment attempt refused: Telegram user %d is locked out until %s",
                    telegram_user_id,
                    locked.isoformat(timespec="seconds"),
                )
                return None, self._locked_out(locked, now, language)
            try:
                member = await Enrollment(session).redeem(
                    code, telegram_user_id, display_name, language, now
                )
            except EnrollmentError as error:
                refusal = self.protocol.text(f"enroll.{error.problem.value}", language)
                if error.problem is EnrollmentProblem.ALREADY_ENROLLED:
                    return None, refusal
                count, until = await attempts.record_wrong(
                    telegram_user_id,
                    now,
                    window=rules.wrong_code_window,
                    limit=rules.max_wrong_codes,
                    lockout=rules.lockout,
                )
                log.warning(
                    "wrong enrollment code (%s) from Telegram user %d: %d of %d allowed in %s",
                    error.problem.value,
                    telegram_user_id,
                    count,
                    rules.max_wrong_codes,
                    rules.wrong_code_window,
                )
                if until is None:
                    return None, refusal
                log.warning(
                    "Telegram user %d locked out of enrollment until %s after %d wrong codes",
                    telegram_user_id,
                    until.isoformat(timespec="seconds"),
                    count,
                )
                return None, f"{refusal}\n\n{self._locked_out(until, now, language)}"
            await Timeline(session).append(
                at=now,
                kind=EventKind.MEMBER_ENROLLED,
                member_id=member.id,
                data={"role": member.role.value},
            )
        role = "professional" if member.role in (Role.PROFESSIONAL, Role.ADMIN) else member.role
        text = self.protocol.text(f"welcome.{role}", language, name=member.display_name)
        return member, text

    def _locked_out(self, until: datetime, now: datetime, language: str) -> str:
        """Until when enrollment is refused, in local time (the minute after it ends)."""
        zone = self.protocol.zone
        shown = (until + timedelta(minutes=1, microseconds=-1)).astimezone(zone)
        pattern = "%H:%M" if shown.date() == now.astimezone(zone).date() else "%Y-%m-%d %H:%M"
        return self.protocol.text("enroll.locked", language, time=shown.strftime(pattern))

    def text(self, key: str, language: str, **params: object) -> str:
        """A text of the protocol."""
        return self.protocol.text(key, language, **params)

    # ---- events ---------------------------------------------------------------------------------

    async def start_incident(self, member_id: int) -> Outcome:
        """/incident: start the guide with the member's schools (read in the step's own
        transaction)."""

        async def with_schools(session: AsyncSession) -> Event:
            schools = await Schools(session).of_member(member_id)
            return StartIncident(tuple(SchoolRef(s.id, s.name, s.address) for s in schools))

        async with self._lock(member_id):
            outcome = await self._handle(member_id, None, None, decide=with_schools)
        assert outcome is not None  # noqa: S101 - only an account check returns None
        return outcome

    async def handle(
        self,
        member_id: int,
        event: Event,
        *,
        member: Member | None = None,
        then: Then | None = None,
    ) -> Outcome:
        """Apply an event to a member's conversation, in one transaction.

        ``member``: the member as just read (by :meth:`member_for`), not read again.
        ``then``: more work for the same transaction, given the session, the member and the
        outcome once the conversation is saved (the event and that work commit together).
        """
        if member is not None and member.id != member_id:
            raise ValueError(f"member {member.id} given for member {member_id}")
        event = await self._understood(event)
        async with self._lock(member_id):
            outcome = await self._handle(member_id, event, member, then=then)
        assert outcome is not None  # noqa: S101 - only an account check returns None
        return outcome

    async def handle_decided(self, member_id: int, decide: Decide, then: Then) -> Outcome | None:
        """:meth:`handle` for an event that ``decide`` finds out in the step's own transaction,
        under the member's lock (a reminder that may no longer be due: reading the chain and
        giving the reminder happen in one transaction, one after the other).

        None when ``decide`` returns None: then nothing of the conversation is touched, and
        what ``decide`` wrote (a chain stopped) is committed.
        """
        async with self._lock(member_id):
            return await self._handle(member_id, None, None, then=then, decide=decide)

    async def _understood(self, event: Event) -> Event:
        if isinstance(event, UserSaid) and event.intent is None and self.interpreter is not None:
            return replace(await self.understand(event.text), message=event.message)
        return event

    async def _handle(
        self,
        member_id: int,
        event: Event | None,
        known: Member | None,
        account: int | None = None,
        then: Then | None = None,
        decide: Decide | None = None,
    ) -> Outcome | None:
        now = self.clock.now()
        with self.escalator.changing() as changing:
            async with self.sessions() as session, session.begin():
                conversations = Conversations(session)
                if known is None:
                    member, saved = await conversations.load_with_member(member_id)
                else:
                    member, saved = known, await conversations.load(member_id)
                if account is not None and (
                    member is None or member.telegram_user_id != account or not member.active
                ):
                    self._accounts.pop(account, None)
                    return None
                if member is None:
                    raise LookupError(f"no member {member_id}")
                if decide is not None:
                    event = await decide(session)
                if event is None:
                    return None
                state = State.from_dict(saved) if saved else State(language=member.language)
                run = _Run(self, session, member, now)
                if not handled_again(state, event):  # logged when it first came
                    await run.record_input(state, event)
                queue: list[Event] = [event]
                while queue:
                    before = state
                    state, effects = step(self.protocol, state, queue.pop(0), now)
                    # A cancellation resets the state: its effects still belong to that incident.
                    incident_id = state.incident_id
                    if incident_id is None and before.active:
                        incident_id = before.incident_id
                    for effect in effects:
                        follow = await run.apply(effect, incident_id, state)
                        if follow is not None:
                            queue.append(follow)
                await run.timeline.extend(run.records)
                await conversations.save(member_id, _jsonable(state.to_dict()), now)
                run.outcome.language = state.language
                if then is not None:
                    await then(session, member, run.outcome)
                # Before the commit: see Escalator.changing.
                changing(w.escalation_id for w in run.wakes)
            self.escalator.apply_soon(run.wakes)
        return run.outcome

    async def understand(self, text: str) -> UserSaid:
        """What the NLU makes of a typed message (outside any transaction: Rasa may be slow)."""
        assert self.interpreter is not None  # noqa: S101 - callers check
        parse = await self.interpreter.parse(text[:2000])
        entities = tuple((e.name, e.value) for e in parse.entities)
        return UserSaid(text, parse.intent, round(parse.confidence, 3), entities, parse.stated)

    async def media_deleted(self, member_id: int, kind: str) -> str:
        """Record that a file was deleted unseen; returns the warning to send."""
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            member = await Members(session).get(member_id, schools=False)
            saved = await Conversations(session).load(member_id)
            state = State.from_dict(saved) if saved else State()
            language = member.language if member else self.config.default_language
            await Timeline(session).append(
                at=now,
                kind=EventKind.MEDIA_DELETED,
                incident_id=state.incident_id if state.active else None,
                member_id=member_id,
                data={"kind": kind},
            )
        return self.protocol.text("media.deleted", language)


class _Run:
    """Carries out the effects of one event inside its transaction."""

    def __init__(self, guide: Guide, session: AsyncSession, member: Member, now: datetime):
        self.guide = guide
        self.session = session
        self.member = member
        self.now = now
        self.outcome = Outcome()
        self.wakes: list[Wake] = []
        self.escalator = guide.escalator
        self.timeline = Timeline(session)
        self.incidents = Incidents(session)
        # The run's timeline events, written together at its end (nothing reads them before).
        self.records: list[dict[str, Any]] = []
        # Incidents loaded by the run, held for its length: the session's identity map keeps
        # only weak references, and the escalator reads the same incident again (an alert
        # after the status changed), which is then found there instead of queried anew.
        self.incidents_seen: dict[int, Incident] = {}
        # Incidents opened by the run (they have no chains yet).
        self.opened: set[int] = set()

    async def record(self, kind: str, incident_id: int | None, **data: Any) -> None:
        step_name = data.pop("step", None)
        self.records.append(
            {
                "at": self.now,
                "kind": kind,
                "incident_id": incident_id,
                "member_id": self.member.id,
                "step": step_name,
                "data": data,
            }
        )

    async def record_input(self, state: State, event: Event) -> None:
        incident_id = state.incident_id if state.active else None
        if isinstance(event, UserSaid):
            await self.record(
                EventKind.MESSAGE_IN,
                incident_id,
                text=event.text,
                step=state.step,
                intent=event.intent,
                confidence=event.confidence,
            )
        elif isinstance(event, ButtonPressed):
            await self.record(
                EventKind.MESSAGE_IN, incident_id, button=event.data, step=state.step
            )

    async def incident(self, incident_id: int | None) -> Incident | None:
        if incident_id is None:
            return None
        found = self.incidents_seen.get(incident_id)
        if found is None:
            found = await self.incidents.get(incident_id)
            if found is not None:
                self.incidents_seen[incident_id] = found
        return found

    async def apply(self, effect: Effect, incident_id: int | None, state: State) -> Event | None:
        match effect:
            case Say():
                self.outcome.replies.append(effect)
                await self.record(EventKind.MESSAGE_OUT, incident_id, text=effect.text)
            case MarkChoice():
                self.outcome.choice = effect
            case OpenIncident(school_id=school_id, drill=drill):
                incident = await self.incidents.open(school_id, self.member.id, drill, self.now)
                self.incidents_seen[incident.id] = incident
                await self.record(
                    EventKind.INCIDENT_OPENED, incident.id, code=incident.code, drill=drill
                )
                self.opened.add(incident.id)
                self.wakes += await self.escalator.progress(
                    self.session, incident.id, self.now, fresh=True
                )
                return IncidentOpened(incident.id, incident.code)
            case StepCompleted(step=step_name, choice=choice):
                await self.record(EventKind.STEP_DONE, incident_id, step=step_name, choice=choice)
                if incident_id is not None:
                    self.wakes += await self.escalator.progress(
                        self.session, incident_id, self.now
                    )
            case AdvanceStatus(status=status):
                target = await self.incident(incident_id)
                if target and await self.incidents.advance(
                    target, IncidentStatus(status), self.now
                ):
                    await self.record(EventKind.STATUS_CHANGED, incident_id, status=status)
            case UpdateIncident(device_count=count, event_number=number):
                target = await self.incident(incident_id)
                if target is not None:
                    fields = {
                        k: v
                        for k, v in (("device_count", count), ("event_number", number))
                        if v is not None
                    }
                    await self.incidents.update(target, self.now, **fields)
                    await self.record(EventKind.INCIDENT_UPDATED, incident_id, **fields)
            case CancelIncident(reason=reason):
                target = await self.incident(incident_id)
                if target is not None:
                    await self.incidents.cancel(target, reason, self.now)
                    await self.record(EventKind.INCIDENT_CANCELLED, incident_id, reason=reason)
                    self.wakes += await self.escalator.stop(
                        self.session, target.id, "all", self.now, "cancelled"
                    )
            case StartReminders(kind=kind):
                if incident_id is not None:
                    self.wakes += await self.escalator.start(
                        self.session, incident_id, kind, self.now, self.member.id
                    )
            case StopReminders(kind=kind):
                if incident_id is not None:
                    self.wakes += await self.escalator.stop(
                        self.session, incident_id, kind, self.now, "step_done"
                    )
            case NotifyOfficers(reason=reason):
                if incident_id is not None:
                    wakes, note = await self.escalator.alert(
                        self.session,
                        incident_id,
                        reason,
                        self.now,
                        state.language,
                        fresh=incident_id in self.opened,
                    )
                    self.wakes += wakes
                    if note:
                        await self.say(note, incident_id)
            case SetLanguage(language=language):
                await Members(self.session).set_language(self.member, language)
        return None

    async def say(self, text: str, incident_id: int) -> None:
        """Add a reply of the shell's own (not from the engine) and log it."""
        self.outcome.replies.append(Say(text))
        await self.record(EventKind.MESSAGE_OUT, incident_id, text=text)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
