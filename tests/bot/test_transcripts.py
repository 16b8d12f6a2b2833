"""Whole incidents through the guide on a real database, in French and in English."""

from __future__ import annotations

from sqlalchemy import select

from bot.runtime import Runtime
from dialogues.events import ButtonPressed, CancelRequested, StatusRequested
from storage.models import EventKind, Incident, IncidentStatus, Role, School, TimelineEvent
from storage.repositories import Timeline
from tests.conftest import add_member, fire_due, messenger, settings_for
from tests.support.clock import FrozenClock
from tests.support.transcript import Transcript, walk_to_call_911


async def incident_and_timeline(runtime: Runtime) -> tuple[Incident, list[TimelineEvent]]:
    async with runtime.sessions() as session:
        incident = (await session.scalars(select(Incident))).one()
        events = list(await Timeline(session).for_incident(incident.id))
        return incident, events


async def test_a_whole_incident_in_french(runtime: Runtime, clock: FrozenClock) -> None:
    pro = await add_member(runtime, Role.PROFESSIONAL, ("nord",), 1001, "Julie", "fr")
    officer = await add_member(runtime, Role.OFFICER, ("nord",), 2002, "Agent Roy", "fr")
    chat = Transcript(runtime.guide, pro.id)

    await chat.start()
    assert "réelle ou d'un exercice" in chat.text()
    clock.advance(minutes=1)
    await chat.press("Situation réelle")
    assert "Incident <b>SX-2026-0001</b> ouvert à 09:31" in chat.text()
    assert "quelqu'un est-il en danger immédiat" in chat.text()
    assert "Agent Roy" in chat.text()  # the professional is told who is being alerted
    await fire_due(runtime)
    [alert] = messenger(runtime).to(2002)
    assert alert.labels == ["Pris en charge"]
    assert "SX-2026-0001" in alert.text
    assert "École secondaire du Nord" in alert.text
    assert "Incident ouvert à 09:31" in alert.text

    await chat.press("Non, pas de danger immédiat")
    assert "Jamais, à aucun moment" in chat.text()
    await chat.press("Compris")
    assert "Prenez la victime en charge" in chat.text()
    await chat.press("C'est fait")
    await chat.say("2")
    assert "grille d'évaluation" in chat.text()
    clock.advance(minutes=4)
    await chat.press("Grille remplie")
    assert "10, rue du Nord" in chat.text()  # the 911 script names the school and address
    assert "2 cellulaire(s) en sac" in chat.text()
    called_at = clock.advance(minutes=3)
    await chat.press("J'ai appelé le 911")
    assert "Appel au 911 noté à 09:38" in chat.text()
    await fire_due(runtime)
    assert "Appel au 911 confirmé" in messenger(runtime).to(2002)[-1].text
    await chat.say("EV 2026-4411")
    assert "En attendant le patrouilleur" in chat.text()
    clock.advance(minutes=40)
    await chat.press("Trousse remise au patrouilleur")
    await chat.press("C'est noté")
    summary = chat.text()
    assert "Résumé de l'incident SX-2026-0001" in summary
    assert "✅ 09:38 911 appelé (n° d'événement EV 2026-4411)" in summary
    assert "✅ 10:18 Trousse remise au patrouilleur" in summary

    incident, events = await incident_and_timeline(runtime)
    assert incident.status is IncidentStatus.AWAITING_DECISION
    assert incident.device_count == 2
    assert incident.event_number == "EV 2026-4411"
    assert incident.police_called_at == called_at
    assert incident.kit_collected_at is not None
    assert incident.kit_collected_at.tzinfo is not None
    steps = [e.step for e in events if e.kind == EventKind.STEP_DONE]
    assert steps == [
        "danger",
        "never",
        "victim",
        "devices",
        "grid",
        "call911",
        "event_number",
        "waiting",
        "after",
    ]
    statuses = [e.data["status"] for e in events if e.kind == EventKind.STATUS_CHANGED]
    assert statuses == ["police_called", "kit_collected", "awaiting_decision"]
    alerts = [e.data["reason"] for e in events if e.kind == EventKind.ALERT_SENT]
    assert alerts == ["opened", "police_called"]
    assert all(e.data["to"] == officer.id for e in events if e.kind == EventKind.ALERT_SENT)
    said = [e.data["text"] for e in events if e.kind == EventKind.MESSAGE_IN and "text" in e.data]
    assert said == ["2", "EV 2026-4411"]
    assert any(e.kind == EventKind.MESSAGE_OUT for e in events)
    times = [e.at for e in events]
    assert times == sorted(times)
    assert all(t.tzinfo is not None for t in times)


async def test_the_last_press_handed_over_again_brings_back_the_summary(
    runtime: Runtime, clock: FrozenClock
) -> None:
    """After a crash right after the last step was saved, Telegram hands that press over again:
    it shows the summary (which may never have gone out) and records nothing twice."""
    pro = await add_member(runtime, Role.PROFESSIONAL, ("nord",), 1001, "Sam", "en")
    chat = Transcript(runtime.guide, pro.id)
    await walk_to_call_911(chat)
    await chat.press("I called 911")
    await chat.say("EV 2026-4411")
    await chat.press("Kit handed to the patrol officer")
    [noted] = chat.buttons()
    await chat.press("Noted")
    summary = chat.text()
    assert "Summary of incident SX-2026-0001" in summary

    clock.advance(minutes=1)
    await chat.send(ButtonPressed(noted.data))
    assert chat.text() == summary
    incident, events = await incident_and_timeline(runtime)
    assert incident.status is IncidentStatus.AWAITING_DECISION
    steps = [e.step for e in events if e.kind == EventKind.STEP_DONE]
    assert steps.count("after") == 1
    statuses = [e.data["status"] for e in events if e.kind == EventKind.STATUS_CHANGED]
    assert statuses == ["police_called", "kit_collected", "awaiting_decision"]


async def test_an_incident_is_offered_only_the_members_active_schools(runtime: Runtime) -> None:
    pro = await add_member(runtime, Role.PROFESSIONAL, ("nord", "west"), 1001, "Sam", "en")
    async with runtime.sessions() as session, session.begin():
        west = await session.get(School, "west")
        assert west is not None
        west.active = False  # gone from config.yml
    chat = Transcript(runtime.guide, pro.id)
    await chat.start()
    # One school left: no school to choose, the guide asks whether it is a drill at once.
    assert sorted(b.label for b in chat.buttons()) == ["Drill", "Real situation"]
    await chat.press("Real situation")
    async with runtime.sessions() as session:
        [incident] = (await session.scalars(select(Incident))).all()
    assert incident.school_id == "nord"


async def test_a_drill_in_english_alerts_nobody(runtime: Runtime, clock: FrozenClock) -> None:
    pro = await add_member(runtime, Role.PROFESSIONAL, ("nord", "west"), 1001, "Sam", "en")
    await add_member(runtime, Role.OFFICER, ("west",), 2002, "Officer Lee", "en")
    chat = Transcript(runtime.guide, pro.id)
    await chat.start()
    assert sorted(b.label for b in chat.buttons()) == [
        "West High School",
        "École secondaire du Nord",
    ]
    await chat.press("West High School")
    await chat.press("Drill")
    assert "DRILL" in chat.text()
    assert "sent to you only" in chat.text()
    await fire_due(runtime)
    [copy] = messenger(runtime).sent
    assert copy.chat_id == 1001  # the drill's alert goes to the professional, not the officer
    assert "(DRILL)" in copy.text
    await chat.press("Yes, immediate danger")
    assert "9-8-8" in chat.text()
    await chat.press("I called 911")
    for label in ("Understood", "Done", "None to seize", "Grid filled in"):
        await chat.press(label)
    assert "event number" in chat.text()  # 911 already called during the emergency
    await chat.send(StatusRequested())
    assert "(DRILL)" in chat.text()
    assert "✅ 09:30 911 called" in chat.text()

    incident, events = await incident_and_timeline(runtime)
    assert incident.drill is True
    assert incident.school_id == "west"
    assert incident.status is IncidentStatus.POLICE_CALLED
    assert incident.device_count == 0
    sent = [e.data for e in events if e.kind == EventKind.ALERT_SENT]
    assert [(s["to"], s["level"]) for s in sent] == [(pro.id, "drill")]


async def test_no_officer_assigned_is_said(runtime: Runtime) -> None:
    pro = await add_member(runtime, Role.PROFESSIONAL, ("west",), 1001, "Sam", "en")
    chat = Transcript(runtime.guide, pro.id)
    await chat.start()
    await chat.press("Real situation")
    assert "No community relations officer is registered for West High School" in chat.text()
    await add_member(runtime, Role.COORDINATOR, (), 3003, "Coord", "en")
    await chat.press("No immediate danger")
    chat2 = Transcript(
        runtime.guide, (await add_member(runtime, Role.PROFESSIONAL, ("west",), 1002)).id
    )
    await chat2.start()
    await chat2.press("Situation réelle")
    assert "j'avertis les coordonnateurs" in chat2.text()


async def test_cancel_records_the_reason(runtime: Runtime, clock: FrozenClock) -> None:
    pro = await add_member(runtime, Role.PROFESSIONAL, ("nord",), 1001, "Sam", "en")
    chat = Transcript(runtime.guide, pro.id)
    await chat.start()
    await chat.press("Real situation")
    await chat.press("No immediate danger")
    await chat.send(CancelRequested())
    clock.advance(minutes=2)
    await chat.say("Turned out to be a cartoon, not an image of a student")
    assert "cancelled at 09:32" in chat.text()
    incident, events = await incident_and_timeline(runtime)
    assert incident.status is IncidentStatus.CANCELLED
    assert incident.cancel_reason == "Turned out to be a cartoon, not an image of a student"
    assert incident.closed_at == clock.now()
    assert events[-1].kind in (EventKind.MESSAGE_OUT, EventKind.INCIDENT_CANCELLED)
    await chat.send(StatusRequested())
    assert "No incident in progress" in chat.text()


async def test_a_restart_mid_incident_loses_nothing(runtime: Runtime, clock: FrozenClock) -> None:
    pro = await add_member(runtime, Role.PROFESSIONAL, ("nord",), 1001, "Sam", "en")
    chat = Transcript(runtime.guide, pro.id)
    await chat.start()
    await chat.press("Real situation")
    await chat.press("No immediate danger")
    pending = chat.buttons()
    await runtime.close()

    again = Runtime.create(runtime.settings, clock=clock)  # a new process on the same database
    try:
        resumed = Transcript(again.guide, pro.id, outcomes=[chat.last])
        assert [b.label for b in resumed.buttons()] == [b.label for b in pending]
        await resumed.press("Understood")
        assert "Take charge of the victim" in resumed.text()
        await resumed.send(StatusRequested())
        assert "✅ 09:30 Never-list read" in resumed.text()
    finally:
        await again.close()


async def test_media_is_recorded_without_any_file_reference(runtime: Runtime) -> None:
    pro = await add_member(runtime, Role.PROFESSIONAL, ("nord",), 1001, "Sam", "en")
    chat = Transcript(runtime.guide, pro.id)
    await chat.start()
    await chat.press("Real situation")
    warning = await runtime.guide.media_deleted(pro.id, "photo")
    assert "deleted that file without opening it" in warning
    _, events = await incident_and_timeline(runtime)
    [deleted] = [e for e in events if e.kind == EventKind.MEDIA_DELETED]
    assert deleted.data == {"kind": "photo"}


async def test_settings_helper_builds_a_runtime_for_another_database(config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = settings_for(config, f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    runtime = Runtime.create(settings)
    try:
        assert await runtime.prepare_database() == (2, 0)
        assert await runtime.prepare_database() == (0, 0)
    finally:
        await runtime.close()
