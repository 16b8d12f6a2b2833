"""A member's data export: what the program holds about them, and nobody else's data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette

from bot.runtime import Runtime
from dashboard.access import viewer_for
from dashboard.portability import Redactor, timeline_entry, utc_iso
from storage.models import (
    AuditEntry,
    EventKind,
    LoginToken,
    Member,
    Role,
    TimelineEvent,
    WebSession,
)
from tests.conftest import add_member, fire_due, messenger
from tests.dashboard.scenario import BASE, csrf_of, force_session, sign_in
from tests.support.clock import FrozenClock
from tests.support.transcript import Transcript, answer_until_call_911, walk_to_call_911

TYPED = "Le casier 4471 près du gymnase est vide, j'ai fermé la porte"
COLLEAGUE_TYPED = "Note de la collègue 9182 pour son propre incident"
OTHERS = ("Agent Roy", "Julie Gagnon", "Coord Dupuis", "Admin Tremblay")


@dataclass
class Scene:
    """A professional's real incident, alerted to and acknowledged by the school's officer."""

    coordinator: Member
    officer: Member
    professional: Member
    colleague: Member
    code: str
    colleague_code: str


@pytest.fixture
async def scene(runtime: Runtime, clock: FrozenClock) -> Scene:
    coordinator = await add_member(runtime, Role.COORDINATOR, (), 3001, "Coord Dupuis", "en")
    await add_member(runtime, Role.ADMIN, (), 3002, "Admin Tremblay", "en")
    officer = await add_member(runtime, Role.OFFICER, ("nord",), 2001, "Agent Roy", "en")
    colleague = await add_member(runtime, Role.PROFESSIONAL, ("nord",), 1002, "Julie Gagnon", "en")
    professional = await add_member(
        runtime, Role.PROFESSIONAL, ("nord",), 1001, "Nadia Pelletier", "en"
    )

    chat = Transcript(runtime.guide, professional.id)
    await chat.start()
    await chat.press("Real situation")
    await fire_due(runtime)
    [alert] = messenger(runtime).to(2001)
    clock.advance(minutes=2)
    await runtime.escalator.acknowledge(int(alert.buttons[0][0].data.split(":")[1]), officer.id)
    await chat.say(TYPED)
    await answer_until_call_911(chat)
    clock.advance(minutes=5)
    await fire_due(runtime)  # a 911 reminder to the professional
    await chat.press("I called 911")

    clock.advance(minutes=30)
    other = Transcript(runtime.guide, colleague.id)
    await walk_to_call_911(other)
    await other.say(COLLEAGUE_TYPED)
    await fire_due(runtime)
    return Scene(coordinator, officer, professional, colleague, "SX-2026-0001", "SX-2026-0002")


async def export(client: httpx.AsyncClient, member_id: int) -> httpx.Response:
    page = await client.get("/admin/members")
    assert page.status_code == 200
    return await client.post(
        f"/admin/members/{member_id}/export", data={"csrf": csrf_of(page.text)}
    )


async def token_hashes(runtime: Runtime) -> list[str]:
    async with runtime.sessions() as session:
        links = (await session.scalars(select(LoginToken.token_hash))).all()
        sessions = (await session.scalars(select(WebSession.token_hash))).all()
    return [*links, *sessions]


async def exports_audited(runtime: Runtime) -> list[AuditEntry]:
    async with runtime.sessions() as session:
        rows = await session.scalars(
            select(AuditEntry).where(AuditEntry.action == "member_export").order_by(AuditEntry.id)
        )
        return list(rows)


def strings(value: Any) -> list[str]:
    """Every string of a JSON document (keys too)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


async def test_a_professional_s_export_holds_their_incident_and_messages(
    client: httpx.AsyncClient, runtime: Runtime, scene: Scene, clock: FrozenClock
) -> None:
    await sign_in(client, runtime, scene.coordinator.id)
    answer = await export(client, scene.professional.id)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json; charset=utf-8"
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith("attachment; ")
    assert f'filename="sexto-member-{scene.professional.id}-' in disposition
    body = answer.content.decode("utf-8")
    document = json.loads(body)

    assert document["version"] == 1
    assert document["generated_at"] == utc_iso(clock.now())
    member = document["member"]
    assert member["id"] == scene.professional.id
    assert member["name"] == "Nadia Pelletier"
    assert member["role"] == "professional"
    assert member["language"] == "en"
    assert member["schools"] == [{"id": "nord", "name": "École secondaire du Nord"}]
    assert member["created_at"] == "2026-11-21T14:30:00Z"

    # What she typed, in her real incident, and the bot's answers to her.
    [typed] = [m for m in document["messages"] if m.get("text") == TYPED]
    assert typed["direction"] == "from_member"
    assert typed["incident"] == scene.code
    assert datetime.fromisoformat(typed["at"]).tzinfo is not None
    assert typed["at"].endswith("Z")
    pressed = [m for m in document["messages"] if m.get("button_label") == "I called 911"]
    assert len(pressed) == 1
    assert any(m["direction"] == "to_member" for m in document["messages"])
    # The officer who acknowledged is named to her in the chat: the export says "[officer]".
    aware = [m for m in document["messages"] if "[officer]" in m.get("text", "")]
    assert aware
    assert aware[0]["incident"] == scene.code

    [incident] = document["incidents"]  # not her colleague's incident
    assert incident["code"] == scene.code
    assert incident["drill"] is False
    assert incident["opened_by"] == "self"
    assert "opened" in incident["involvement"]
    assert incident["opened_at"] == "2026-11-21T14:30:00Z"
    assert incident["police_called_at"] is not None
    kinds = [event["kind"] for event in incident["timeline"]]
    assert kinds[0] == EventKind.INCIDENT_OPENED
    assert EventKind.ALERT_ACKNOWLEDGED in kinds
    [acknowledged] = [e for e in incident["timeline"] if e["kind"] == EventKind.ALERT_ACKNOWLEDGED]
    assert acknowledged["member"] == "officer"
    sent = [e for e in incident["timeline"] if e["kind"] == EventKind.ALERT_SENT]
    assert sent
    assert {e["data"]["to"] for e in sent} == {"officer"}
    assert any(e["data"].get("text") == TYPED for e in incident["timeline"])

    assert {d["level"] for d in document["deliveries"]} == {"professional"}
    [reminder] = [d for d in document["deliveries"] if d["kind"] == "call_911"]
    assert reminder["incident"] == scene.code
    assert reminder["kind"] == "call_911"
    assert reminder["status"] == "delivered"
    assert "911" in reminder["text"]
    assert document["acknowledgements"] == []
    assert document["sign_ins"] == []

    # Nobody else's name, nothing of the colleague's incident, no secret.
    for name in OTHERS:
        assert name not in body, name
    assert scene.colleague_code not in body
    assert COLLEAGUE_TYPED not in body
    for digest in await token_hashes(runtime):
        assert digest not in body
    assert not any("token" in s for s in strings(document))

    [entry] = await exports_audited(runtime)
    assert entry.member_id == scene.coordinator.id
    assert entry.target == str(scene.professional.id)
    assert entry.data["incidents"] == 1


async def test_an_officer_s_export_withholds_what_others_typed(
    client: httpx.AsyncClient, app: Starlette, runtime: Runtime, scene: Scene
) -> None:
    officer_client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
    async with officer_client:
        assert (await sign_in(officer_client, runtime, scene.officer.id)).status_code == 303
    await sign_in(client, runtime, scene.coordinator.id)
    answer = await export(client, scene.officer.id)
    assert answer.status_code == 200
    body = answer.content.decode("utf-8")
    document = json.loads(body)

    assert document["member"]["name"] == "Agent Roy"
    assert document["member"]["follows"] == [{"school": "nord", "as": "officer"}]
    [signed_in] = document["sign_ins"]
    assert set(signed_in) == {"signed_in_at", "expires_at", "signed_out_at"}
    assert signed_in["signed_in_at"].endswith("Z")
    assert signed_in["signed_out_at"] is None

    codes = [incident["code"] for incident in document["incidents"]]
    assert codes == [scene.code, scene.colleague_code]  # both alerted to him
    mine, theirs = document["incidents"]
    assert {"alerted", "acknowledged"} <= set(mine["involvement"])
    assert mine["opened_by"] == "professional"
    assert theirs["involvement"] == ["alerted"]
    typed = [e for e in mine["timeline"] if e["kind"] == EventKind.MESSAGE_IN]
    assert typed
    assert all(e.get("withheld") == ["text"] for e in typed if "button" not in e["data"])
    assert all("text" not in e["data"] for e in typed)

    alerts = [d for d in document["deliveries"] if d["incident"] == scene.code]
    assert alerts[0]["kind"] == "officer_alert"
    assert alerts[0]["acknowledged_by"] == "self"
    assert alerts[0]["acknowledged_at"] is not None
    [ack] = document["acknowledgements"]
    assert ack["incident"] == scene.code

    for text in (TYPED, COLLEAGUE_TYPED, "Nadia", "Pelletier", *OTHERS[1:]):
        assert text not in body, text
    for digest in await token_hashes(runtime):
        assert digest not in body


async def test_the_members_page_offers_the_export_to_coordinators(
    client: httpx.AsyncClient, runtime: Runtime, scene: Scene
) -> None:
    await sign_in(client, runtime, scene.coordinator.id)
    page = (await client.get("/admin/members")).text
    form = f'<form method="post" action="/admin/members/{scene.professional.id}/export"'
    assert form in page
    assert "Export data (JSON)" in page
    client.cookies.set("sexto_lang", "fr")
    assert "Exporter les données (JSON)" in (await client.get("/admin/members")).text


@pytest.mark.parametrize("who", ["officer", "professional", "anonymous", "no_csrf", "get"])
async def test_only_a_coordinator_s_form_starts_an_export(
    client: httpx.AsyncClient, app: Starlette, runtime: Runtime, scene: Scene, who: str
) -> None:
    url = f"/admin/members/{scene.professional.id}/export"
    if who == "officer":
        await sign_in(client, runtime, scene.officer.id)
    elif who == "professional":
        await force_session(client, app, runtime, scene.professional.id)
    elif who in ("no_csrf", "get"):
        await sign_in(client, runtime, scene.coordinator.id)
    page = (await client.get("/incidents")).text
    csrf = csrf_of(page) if 'name="csrf"' in page else ""
    if who == "get":
        answer = await client.get(url)
        assert answer.status_code == 405
    else:
        answer = await client.post(url, data={} if who == "no_csrf" else {"csrf": csrf})
        assert answer.status_code == 403
    if who == "no_csrf":
        assert "did not come from this site" in answer.text
    assert TYPED not in answer.text
    assert "application/json" not in answer.headers["content-type"]
    assert await exports_audited(runtime) == []


async def test_an_unknown_member_is_not_found(
    client: httpx.AsyncClient, runtime: Runtime, scene: Scene
) -> None:
    await sign_in(client, runtime, scene.coordinator.id)
    page = await client.get("/admin/members")
    answer = await client.post("/admin/members/9999/export", data={"csrf": csrf_of(page.text)})
    assert answer.status_code == 404
    assert await exports_audited(runtime) == []


async def test_the_query_layer_refuses_non_coordinators(runtime: Runtime, scene: Scene) -> None:
    async with runtime.sessions() as session:
        for member in (scene.officer, scene.professional):
            viewer = await viewer_for(session, member)
            with pytest.raises(PermissionError):
                viewer.member_records(session)


def _member(member_id: int, name: str, role: Role) -> Member:
    return Member(id=member_id, display_name=name, role=role, language="fr", active=True)


def test_names_become_roles_and_missing_people_are_tolerated() -> None:
    subject = _member(1, "Julie Roy", Role.PROFESSIONAL)
    everyone = [
        subject,
        _member(2, "Roy", Role.OFFICER),
        _member(3, "Marc-André Côté", Role.COORDINATOR),
        _member(4, "?", Role.OFFICER),
    ]
    redactor = Redactor(subject, everyone)
    assert redactor.person(1) == "self"
    assert redactor.person(2) == "officer"
    assert redactor.person(None) is None
    assert redactor.person(99) == "member"
    said = redactor.text("Julie Roy a parlé à ROY puis à marc-andré côté. Royaume? Oui.")
    assert said == "Julie Roy a parlé à [officer] puis à [coordinator]. Royaume? Oui."

    # Retention may have removed the people of an old incident: nothing breaks.
    event = TimelineEvent(
        incident_id=None,
        member_id=None,
        at=datetime(2026, 1, 5, 12, 0, tzinfo=UTC),
        kind=EventKind.ALERT_SENT,
        step=None,
        data={"to": None, "level": "officer", "text": "Roy was alerted"},
    )
    entry = timeline_entry(event, redactor)
    assert entry["member"] is None
    assert entry["data"]["to"] is None
    assert entry["withheld"] == ["text"]
    assert entry["at"] == "2026-01-05T12:00:00Z"
    escalated = TimelineEvent(
        member_id=None,
        at=datetime(2026, 1, 5, 12, 0, tzinfo=UTC),
        kind=EventKind.ESCALATED,
        data={"to": [1, 3, None]},
    )
    assert timeline_entry(escalated, redactor)["data"]["to"] == ["self", "coordinator"]
