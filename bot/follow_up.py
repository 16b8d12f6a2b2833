"""Officers' and coordinators' follow-up: kit pickup, the DPCP's decision, the meetings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from dialogues.effects import Button
from dialogues.engine import clock as hhmm
from dialogues.protocol import Markup, Protocol
from storage.models import EventKind, Incident, IncidentStatus, Member, Role
from storage.repositories import Incidents, Members, Officers, Schools, Timeline

PREFIX = "fu:"
FOLLOWERS = (Role.OFFICER, Role.COORDINATOR, Role.ADMIN)
ACTIONS = ("kit", "impulsive", "malicious", "meeting", "victim")
BEFORE_KIT = (IncidentStatus.OPEN, IncidentStatus.POLICE_CALLED)
DECIDABLE = (
    IncidentStatus.POLICE_CALLED,
    IncidentStatus.KIT_COLLECTED,
    IncidentStatus.AWAITING_DECISION,
)


@dataclass(frozen=True)
class Card:
    """One incident as an officer sees it, with the buttons that make sense now."""

    incident_id: int
    text: str
    buttons: tuple[tuple[Button, ...], ...]


@dataclass
class Result:
    """What an action did: a short answer, the refreshed card, a notice for the professional."""

    answer: str
    card: Card | None = None
    notices: list[tuple[Member, str]] = field(default_factory=list)


class FollowUp:
    """Lists incidents for officers and coordinators and records what they report."""

    def __init__(
        self, protocol: Protocol, sessions: async_sessionmaker[AsyncSession], clock: Clock
    ) -> None:
        self.protocol = protocol
        self.sessions = sessions
        self.clock = clock

    async def _visible(self, session: AsyncSession, member: Member) -> set[str] | None:
        """The schools whose incidents a member may see (None: all of them)."""
        if member.role in (Role.COORDINATOR, Role.ADMIN):
            return None
        if member.role is Role.OFFICER:
            return await Officers(session).schools_of(member.id)
        return set()

    async def cards(self, member: Member) -> list[Card]:
        """The open incidents a member follows."""
        async with self.sessions() as session:
            schools = await self._visible(session, member)
            incidents = await Incidents(session).open_at(schools)
            return [await self._card(session, incident, member.language) for incident in incidents]

    async def _card(self, session: AsyncSession, incident: Incident, language: str) -> Card:
        text = self.protocol.text
        school = await Schools(session).get(incident.school_id)
        details = []
        if incident.outcome:
            name = text(f"followup.{incident.outcome}_name", language)
            details.append(text("followup.outcome", language, outcome=name))
        if incident.outcome == "impulsive":
            for key, at in (
                ("meeting", incident.meeting_held_at),
                ("victim", incident.victim_met_at),
            ):
                if at is None:
                    details.append(text(f"followup.{key}_todo", language))
                else:
                    details.append(text(f"followup.{key}_done", language, time=self._when(at)))
        body = text(
            "followup.card",
            language,
            code=incident.code,
            drill=Markup(text("drill.tag", language) if incident.drill else ""),
            school=school.name if school else incident.school_id,
            opened=self._when(incident.opened_at),
            status=text(f"status.{incident.status.value}", language),
            details=Markup("\n".join(details)),
        )
        buttons = tuple(
            (Button(text(f"followup.{action}", language), f"{PREFIX}{incident.id}:{action}"),)
            for action in self._possible(incident)
        )
        return Card(incident.id, body.rstrip(), buttons)

    def _when(self, moment: datetime) -> str:
        local = moment.astimezone(self.protocol.zone)
        return f"{local:%Y-%m-%d} {hhmm(self.protocol, moment)}"

    @staticmethod
    def _possible(incident: Incident) -> list[str]:
        actions = []
        if incident.status in BEFORE_KIT:
            actions.append("kit")
        if incident.outcome is None and incident.status in DECIDABLE:
            actions += ["impulsive", "malicious"]
        if incident.outcome == "impulsive" and incident.status is not IncidentStatus.CLOSED:
            if incident.meeting_held_at is None:
                actions.append("meeting")
            if incident.victim_met_at is None:
                actions.append("victim")
        return actions

    async def act(self, member: Member, incident_id: int, action: str) -> Result:
        """Record an action on an incident the member follows."""
        text = self.protocol.text
        language = member.language
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            incidents = Incidents(session)
            incident = await incidents.get(incident_id)
            schools = await self._visible(session, member)
            if (
                member.role not in FOLLOWERS
                or incident is None
                or (schools is not None and incident.school_id not in schools)
            ):
                return Result(text("followup.forbidden", language))
            if action not in self._possible(incident):
                return Result(
                    text("followup.stale", language), await self._card(session, incident, language)
                )
            timeline = Timeline(session)
            result = Result(text("followup.recorded", language))
            if action == "kit":
                await incidents.advance(incident, IncidentStatus.KIT_COLLECTED, now)
                await timeline.append(
                    at=now,
                    kind=EventKind.STATUS_CHANGED,
                    incident_id=incident.id,
                    member_id=member.id,
                    data={"status": IncidentStatus.KIT_COLLECTED.value, "by": "officer"},
                )
                professional = await Members(session).get(incident.opened_by)
                if professional is not None:
                    notice = text(
                        "followup.kit_notice",
                        professional.language,
                        name=member.display_name,
                        time=hhmm(self.protocol, now),
                        code=incident.code,
                    )
                    result.notices.append((professional, notice))
            elif action in ("impulsive", "malicious"):
                await incidents.update(incident, now, outcome=action)
                await incidents.advance(incident, IncidentStatus.AWAITING_DECISION, now)
                await timeline.append(
                    at=now,
                    kind=EventKind.OUTCOME_RECORDED,
                    incident_id=incident.id,
                    member_id=member.id,
                    data={"outcome": action},
                )
                if action == "malicious":
                    await self._close(session, incident, member, now, result)
            else:
                if action == "meeting":
                    incident.meeting_held_at = now
                else:
                    incident.victim_met_at = now
                await timeline.append(
                    at=now,
                    kind=EventKind.FOLLOW_UP_RECORDED,
                    incident_id=incident.id,
                    member_id=member.id,
                    data={"follow_up": action},
                )
                if incident.meeting_held_at and incident.victim_met_at:
                    await self._close(session, incident, member, now, result)
            await session.flush()
            result.card = await self._card(session, incident, language)
            return result

    async def _close(
        self,
        session: AsyncSession,
        incident: Incident,
        member: Member,
        now: datetime,
        result: Result,
    ) -> None:
        await Incidents(session).advance(incident, IncidentStatus.CLOSED, now)
        await Timeline(session).append(
            at=now,
            kind=EventKind.STATUS_CHANGED,
            incident_id=incident.id,
            member_id=member.id,
            data={"status": IncidentStatus.CLOSED.value},
        )
        result.answer = self.protocol.text(
            "followup.closed", member.language, code=incident.code, time=hhmm(self.protocol, now)
        )
