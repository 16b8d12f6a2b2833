"""Officers and coordinators follow incidents up: kit pickup, the DPCP's decision, meetings."""

from __future__ import annotations

from bot.runtime import Runtime
from storage.models import IncidentStatus, Role
from storage.repositories import Incidents
from tests.conftest import add_member
from tests.support.clock import FrozenClock


async def opened(runtime: Runtime, school: str = "nord", drill: bool = False) -> int:
    pro = await add_member(runtime, Role.PROFESSIONAL, (school,), None, "Julie", "en")
    async with runtime.sessions() as session, session.begin():
        incident = await Incidents(session).open(school, pro.id, drill, runtime.clock.now())
        await Incidents(session).advance(
            incident, IncidentStatus.POLICE_CALLED, runtime.clock.now()
        )
        return incident.id


async def status_of(runtime: Runtime, incident_id: int) -> IncidentStatus:
    async with runtime.sessions() as session:
        incident = await Incidents(session).get(incident_id)
        assert incident is not None
        return incident.status


def labels(card: object) -> list[str]:
    return [b.label for row in card.buttons for b in row]  # type: ignore[attr-defined]


async def test_each_sees_the_incidents_they_follow(runtime: Runtime) -> None:
    nord = await opened(runtime, "nord")
    west = await opened(runtime, "west", drill=True)
    officer = await add_member(runtime, Role.OFFICER, ("nord",), 2001, "Roy", "en")
    coordinator = await add_member(runtime, Role.COORDINATOR, (), 3001, "Lee", "en")
    professional = await add_member(runtime, Role.PROFESSIONAL, ("nord",), 1001, "Sam", "en")
    assert [c.incident_id for c in await runtime.follow_up.cards(officer)] == [nord]
    assert sorted(c.incident_id for c in await runtime.follow_up.cards(coordinator)) == [
        nord,
        west,
    ]
    assert await runtime.follow_up.cards(professional) == []
    [card] = await runtime.follow_up.cards(officer)
    assert "SX-2026-0001" in card.text
    assert "Opened 2026-11-21 09:30. Status: police called" in card.text
    assert labels(card) == ["Kit collected", "DPCP: impulsive", "DPCP: malicious"]
    drill = next(c for c in await runtime.follow_up.cards(coordinator) if c.incident_id == west)
    assert "(DRILL)" in drill.text


async def test_the_impulsive_path_closes_after_both_meetings(
    runtime: Runtime, clock: FrozenClock
) -> None:
    incident = await opened(runtime)
    officer = await add_member(runtime, Role.OFFICER, ("nord",), 2001, "Roy", "fr")
    result = await runtime.follow_up.act(officer, incident, "kit")
    assert result.answer == "C'est noté."
    [(_professional, notice)] = result.notices
    assert (
        "Roy recorded at 09:30 that the police collected the kit of incident SX-2026-0001"
        in notice
    )
    assert await status_of(runtime, incident) is IncidentStatus.KIT_COLLECTED
    assert result.card is not None
    assert labels(result.card) == ["DPCP : impulsif", "DPCP : malveillant"]

    clock.advance(days=3)
    result = await runtime.follow_up.act(officer, incident, "impulsive")
    assert await status_of(runtime, incident) is IncidentStatus.AWAITING_DECISION
    assert "Décision du DPCP : impulsif" in result.card.text  # type: ignore[union-attr]
    assert labels(result.card) == ["Rencontre éducative tenue", "Victime rencontrée"]
    clock.advance(days=7)
    await runtime.follow_up.act(officer, incident, "victim")
    assert await status_of(runtime, incident) is IncidentStatus.AWAITING_DECISION
    result = await runtime.follow_up.act(officer, incident, "meeting")
    assert result.answer == "Incident SX-2026-0001 fermé à 09:30."
    assert await status_of(runtime, incident) is IncidentStatus.CLOSED
    assert await runtime.follow_up.cards(officer) == []


async def test_a_malicious_decision_closes_the_incident(runtime: Runtime) -> None:
    incident = await opened(runtime)
    coordinator = await add_member(runtime, Role.COORDINATOR, (), 3001, "Lee", "en")
    result = await runtime.follow_up.act(coordinator, incident, "malicious")
    assert "closed" in result.answer
    assert await status_of(runtime, incident) is IncidentStatus.CLOSED


async def test_others_cannot_act_and_repeats_are_refused(runtime: Runtime) -> None:
    incident = await opened(runtime, "nord")
    elsewhere = await add_member(runtime, Role.OFFICER, ("west",), 2009, "Other", "en")
    professional = await add_member(runtime, Role.PROFESSIONAL, ("nord",), 1001, "Sam", "en")
    for member in (elsewhere, professional):
        result = await runtime.follow_up.act(member, incident, "kit")
        assert "is for community relations officers and coordinators" in result.answer
        assert result.card is None
    assert await status_of(runtime, incident) is IncidentStatus.POLICE_CALLED
    officer = await add_member(runtime, Role.OFFICER, ("nord",), 2001, "Roy", "en")
    await runtime.follow_up.act(officer, incident, "kit")
    again = await runtime.follow_up.act(officer, incident, "kit")
    assert "no longer possible" in again.answer
    bogus = await runtime.follow_up.act(officer, incident, "teleport")
    assert "no longer possible" in bogus.answer
