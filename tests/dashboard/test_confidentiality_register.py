"""The Law 25 register of confidentiality incidents, as coordinators keep it in the dashboard."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import inspect, select, text
from starlette.applications import Starlette

from bot.runtime import Runtime
from dashboard.access import viewer_for
from dashboard.confidentiality import validate
from storage.database import downgrade, migrate
from storage.models import AuditEntry, ConfidentialityIncident, Member, Role
from storage.repositories import ConfidentialityRegister
from tests.conftest import add_member
from tests.dashboard.scenario import BASE, csrf_of, force_session, main_of, sign_in
from tests.support.clock import FrozenClock

MONTREAL = ZoneInfo("America/Montreal")


@dataclass
class People:
    """Who uses the register, and who may not."""

    coordinator: Member
    admin: Member
    officer: Member
    professional: Member


@pytest.fixture
async def people(runtime: Runtime) -> People:
    return People(
        await add_member(runtime, Role.COORDINATOR, (), 3001, "Coord Dupuis", "en"),
        await add_member(runtime, Role.ADMIN, (), 3002, "Admin Tremblay", "en"),
        await add_member(runtime, Role.OFFICER, ("nord",), 2001, "Agent Roy", "en"),
        await add_member(runtime, Role.PROFESSIONAL, ("nord",), 1001, "Julie", "en"),
    )


def today(clock: FrozenClock) -> date:
    return clock.now().astimezone(MONTREAL).date()


def form(clock: FrozenClock, **changes: str) -> dict[str, str]:
    """A complete, valid entry as typed in the form."""
    day = today(clock)
    values = {
        "description": "A coordinator's laptop with the weekly export was stolen from a car.",
        "personal_information": "Names and roles of 12 school staff; no student data.",
        "occurred_on": (day - timedelta(days=3)).isoformat(),
        "occurred_until": "",
        "discovered_on": (day - timedelta(days=1)).isoformat(),
        "people_count": "12",
        "risk_assessment": "Low: the disk is encrypted and the file holds no sensitive data.",
        "serious_injury_risk": "no",
        "commission_notified_on": "",
        "people_notified_on": "",
        "notification_details": "",
        "measures": "Sessions revoked; laptop wiped remotely.",
    }
    values.update(changes)
    return values


async def audit_entries(runtime: Runtime, prefix: str = "") -> list[AuditEntry]:
    async with runtime.sessions() as session:
        rows = await session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        return [row for row in rows if row.action.startswith(prefix)]


async def stored(runtime: Runtime) -> list[ConfidentialityIncident]:
    async with runtime.sessions() as session:
        rows = await session.scalars(
            select(ConfidentialityIncident).order_by(ConfidentialityIncident.id)
        )
        return list(rows)


async def record(client: httpx.AsyncClient, values: dict[str, str]) -> httpx.Response:
    page = await client.get("/confidentiality/new")
    assert page.status_code == 200
    return await client.post("/confidentiality", data={"csrf": csrf_of(page.text), **values})


async def test_record_list_read_and_edit_an_entry(
    client: httpx.AsyncClient,
    app: Starlette,
    runtime: Runtime,
    people: People,
    clock: FrozenClock,
) -> None:
    await sign_in(client, runtime, people.coordinator.id)
    listing = await client.get("/confidentiality")
    assert listing.status_code == 200
    assert "No incident recorded." in main_of(listing.text)
    assert 'href="/confidentiality"' in listing.text  # the coordinators' menu links to it

    answer = await record(client, form(clock))
    assert answer.status_code == 303
    [entry] = await stored(runtime)
    assert answer.headers["location"] == f"/confidentiality/{entry.id}?saved=1"
    detail = main_of((await client.get(answer.headers["location"])).text)
    assert "Entry saved." in detail
    assert f"Confidentiality incident no. {entry.id}" in detail
    assert "laptop with the weekly export was stolen" in detail
    assert "Names and roles of 12 school staff" in detail
    assert "Recorded by Coord Dupuis on 2026-11-21 09:30" in detail
    assert "Last changed" not in detail
    assert "not notified" in detail

    # An older incident recorded later comes after it: the list is by discovery, newest first.
    clock.advance(hours=1)
    older = form(
        clock,
        description="Alert sent to the wrong officer's chat.",
        occurred_on=(today(clock) - timedelta(days=20)).isoformat(),
        discovered_on=(today(clock) - timedelta(days=19)).isoformat(),
        people_count="1",
        serious_injury_risk="yes",
    )
    assert (await record(client, older)).status_code == 303
    listing = main_of((await client.get("/confidentiality")).text)
    assert "2 incident(s)" in listing
    assert listing.index("laptop with the weekly export") < listing.index("wrong officer")
    assert "notice pending" in listing  # a serious risk without notices

    # Another coordinator completes the first entry: who recorded it stays, the change is kept.
    clock.advance(days=1)
    other = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
    async with other:
        await sign_in(other, runtime, people.admin.id)
        edit = await other.get(f"/confidentiality/{entry.id}/edit")
        assert edit.status_code == 200
        assert "Sessions revoked; laptop wiped remotely." in edit.text  # the form is filled in
        changed = form(
            clock,
            occurred_on=entry.occurred_on.isoformat(),
            discovered_on=entry.discovered_on.isoformat(),
            measures="Sessions revoked; laptop wiped remotely; staff told to lock cars.",
            people_notified_on=today(clock).isoformat(),
        )
        answer = await other.post(
            f"/confidentiality/{entry.id}", data={"csrf": csrf_of(edit.text), **changed}
        )
        assert answer.status_code == 303
        detail = main_of((await other.get(answer.headers["location"])).text)
        assert "staff told to lock cars" in detail
        assert "Recorded by Coord Dupuis on 2026-11-21 09:30" in detail
        assert "Last changed by Admin Tremblay on 2026-11-22 10:30" in detail
        assert today(clock).isoformat() in detail
        # Saving the same values again changes nothing and audits nothing.
        again = await other.post(
            f"/confidentiality/{entry.id}", data={"csrf": csrf_of(edit.text), **changed}
        )
        assert again.headers["location"].endswith("?unchanged=1")
        assert "Nothing changed." in (await other.get(again.headers["location"])).text

    [first, second] = await stored(runtime)
    assert first.recorded_by == people.coordinator.id
    assert first.updated_by == people.admin.id
    assert first.people_notified_on == today(clock)
    assert first.recorded_at < first.updated_at
    recorded = await audit_entries(runtime, "confidentiality_")
    assert [(e.action, e.target, e.member_id) for e in recorded] == [
        ("confidentiality_recorded", str(first.id), people.coordinator.id),
        ("confidentiality_recorded", str(second.id), people.coordinator.id),
        ("confidentiality_amended", str(first.id), people.admin.id),
    ]
    assert set(recorded[-1].data["fields"]) == {"measures", "people_notified_on"}
    views = await audit_entries(runtime, "view_confidentiality")
    assert {e.action for e in views} == {"view_confidentiality", "view_confidentiality_entry"}

    # The free text is encrypted at rest: the table read without the key shows none of it.
    async with runtime.engine.connect() as connection:
        raw = (await connection.execute(text("SELECT * FROM confidentiality_incidents"))).all()
    assert len(raw) == 2
    for phrase in ("laptop with the weekly export", "wrong officer", "lock cars", "12 school"):
        assert phrase not in repr(raw)


async def test_the_register_exports_as_csv_and_json(
    client: httpx.AsyncClient, runtime: Runtime, people: People, clock: FrozenClock
) -> None:
    await sign_in(client, runtime, people.coordinator.id)
    await record(
        client,
        form(
            clock,
            description='=HYPERLINK("http://evil") a formula is text',
            personal_information="Élèves : aucun; personnel « 3 »",
            serious_injury_risk="yes",
            people_count="3",
            people_count_estimated="1",
            commission_notified_on=today(clock).isoformat(),
        ),
    )
    [entry] = await stored(runtime)

    exported = await client.get("/confidentiality.csv")
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "text/csv; charset=utf-8"
    assert exported.headers["content-disposition"].startswith("attachment; filename=")
    assert exported.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
    assert len(rows) == 1
    row = rows[0]
    assert row["id"] == str(entry.id)
    assert row["description"].startswith("'=HYPERLINK")  # never a live spreadsheet formula
    assert row["personal_information"] == "Élèves : aucun; personnel « 3 »"
    assert row["discovered_on"] == entry.discovered_on.isoformat()
    assert row["people_count"] == "3"
    assert row["people_count_estimated"] == "yes"
    assert row["serious_injury_risk"] == "yes"
    assert row["commission_notified_on"] == today(clock).isoformat()
    assert row["people_notified_on"] == ""
    assert row["recorded_by"] == "Coord Dupuis"
    assert row["recorded_at"] == "2026-11-21T09:30:00-05:00"

    exported = await client.get("/confidentiality.json")
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "application/json; charset=utf-8"
    assert "attachment" in exported.headers["content-disposition"]
    document = json.loads(exported.content.decode("utf-8"))
    assert document["version"] == 1
    assert document["generated_at"] == "2026-11-21T14:30:00Z"
    [item] = document["entries"]
    assert item["id"] == entry.id
    assert item["personal_information"] == "Élèves : aucun; personnel « 3 »"
    assert item["occurred_on"] == entry.occurred_on.isoformat()
    assert item["occurred_until"] is None
    assert item["serious_injury_risk"] is True
    assert item["people_count"] == 3
    assert item["recorded_by"] == {"id": people.coordinator.id, "name": "Coord Dupuis"}
    assert item["recorded_at"] == "2026-11-21T14:30:00Z"

    exports = await audit_entries(runtime, "export_confidentiality")
    assert [e.data for e in exports] == [
        {"format": "csv", "count": 1},
        {"format": "json", "count": 1},
    ]


def _days(clock: FrozenClock, offset: int) -> str:
    return (today(clock) + timedelta(days=offset)).isoformat()


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"description": "   "}, "description", "This field is required."),
        ({"personal_information": ""}, "personal_information", "This field is required."),
        ({"risk_assessment": ""}, "risk_assessment", "This field is required."),
        ({"measures": ""}, "measures", "This field is required."),
        ({"occurred_on": ""}, "occurred_on", "This field is required."),
        ({"discovered_on": ""}, "discovered_on", "This field is required."),
        ({"people_count": ""}, "people_count", "This field is required."),
        ({"serious_injury_risk": ""}, "serious_injury_risk", "This field is required."),
        ({"discovered_on": "2026-13-40"}, "discovered_on", "Not a valid date (YYYY-MM-DD)."),
        ({"discovered_on": "day+1"}, "discovered_on", "This date is in the future."),
        ({"occurred_on": "day+0"}, "occurred_on", "The incident cannot have occurred after"),
        ({"occurred_until": "day-5"}, "occurred_until", "The period ends before it starts."),
        (
            {"commission_notified_on": "day-2"},
            "commission_notified_on",
            "A notice cannot come before the incident was discovered.",
        ),
        ({"people_notified_on": "day+3"}, "people_notified_on", "This date is in the future."),
        ({"people_count": "-3"}, "people_count", "Enter a whole number, zero or more."),
        ({"people_count": "many"}, "people_count", "Enter a whole number, zero or more."),
        ({"measures": "x" * 5001}, "measures", "Text too long"),
    ],
)
async def test_a_wrong_entry_is_shown_again_with_what_is_wrong(
    client: httpx.AsyncClient,
    runtime: Runtime,
    people: People,
    clock: FrozenClock,
    changes: dict[str, str],
    field: str,
    message: str,
) -> None:
    # "day+1" is tomorrow, "day-5" five days ago (the valid form's discovery is yesterday).
    typed = {k: _days(clock, int(v[3:])) if v.startswith("day") else v for k, v in changes.items()}
    values = form(clock, **typed)
    await sign_in(client, runtime, people.coordinator.id)
    answer = await record(client, values)
    assert answer.status_code == 400
    page = main_of(answer.text)
    assert "The entry was not saved: correct the fields marked." in page
    assert f'<span class="error" id="{field}-error">{message}' in page
    assert f'id="{field}"' in page
    assert 'aria-invalid="true"' in page
    # What was typed is kept.
    assert "Sessions revoked; laptop wiped remotely." in page or field == "measures"
    assert await stored(runtime) == []
    assert await audit_entries(runtime, "confidentiality_") == []


async def test_an_edit_with_errors_changes_nothing(
    client: httpx.AsyncClient, runtime: Runtime, people: People, clock: FrozenClock
) -> None:
    await sign_in(client, runtime, people.coordinator.id)
    await record(client, form(clock))
    [entry] = await stored(runtime)
    edit = await client.get(f"/confidentiality/{entry.id}/edit")
    answer = await client.post(
        f"/confidentiality/{entry.id}",
        data={"csrf": csrf_of(edit.text), **form(clock, measures="", description="New text")},
    )
    assert answer.status_code == 400
    assert "This field is required." in answer.text
    assert "New text" in answer.text
    [after] = await stored(runtime)
    assert after.description == entry.description
    assert await audit_entries(runtime, "confidentiality_amended") == []


async def test_the_form_is_in_french_too(
    client: httpx.AsyncClient, runtime: Runtime, people: People, clock: FrozenClock
) -> None:
    await sign_in(client, runtime, people.coordinator.id)
    client.cookies.set("sexto_lang", "fr")
    page = await client.get("/confidentiality/new")
    assert "Évaluation du risque de préjudice sérieux" in page.text
    assert "Avis à la Commission d&#39;accès à l&#39;information le" in page.text
    answer = await client.post(
        "/confidentiality", data={"csrf": csrf_of(page.text), **form(clock, measures="")}
    )
    assert "Ce champ est obligatoire." in answer.text


XSS_FIELDS = (
    "description",
    "personal_information",
    "risk_assessment",
    "notification_details",
    "measures",
)


async def test_text_is_always_shown_as_text(
    client: httpx.AsyncClient, runtime: Runtime, people: People, clock: FrozenClock
) -> None:
    payloads = {name: f"<script>alert('{name}')</script>" for name in XSS_FIELDS}
    await sign_in(client, runtime, people.coordinator.id)
    assert (await record(client, form(clock, **payloads))).status_code == 303
    [entry] = await stored(runtime)
    pages = [
        main_of((await client.get(f"/confidentiality/{entry.id}")).text),
        main_of((await client.get(f"/confidentiality/{entry.id}/edit")).text),
        main_of((await record(client, form(clock, **payloads, people_count="x"))).text),
    ]
    for page in pages:
        assert "<script>" not in page
        for name in XSS_FIELDS:
            assert f"&lt;script&gt;alert(&#39;{name}&#39;)&lt;/script&gt;" in page, name
    listing = main_of((await client.get("/confidentiality")).text)
    assert "<script>" not in listing
    assert "&lt;script&gt;alert(&#39;description&#39;)&lt;/script&gt;" in listing


PAGES = (
    "/confidentiality",
    "/confidentiality/new",
    "/confidentiality/{id}",
    "/confidentiality/{id}/edit",
    "/confidentiality.csv",
    "/confidentiality.json",
)


@pytest.mark.parametrize(
    ("role", "status"), [("officer", 403), ("professional", 403), ("anonymous", 303)]
)
async def test_only_coordinators_reach_the_register(
    client: httpx.AsyncClient,
    app: Starlette,
    runtime: Runtime,
    people: People,
    clock: FrozenClock,
    role: str,
    status: int,
) -> None:
    async with runtime.sessions() as session, session.begin():
        row = await ConfidentialityRegister(session).record(
            validate(form(clock), today(clock))[0], people.coordinator.id, clock.now()
        )
    if role == "officer":
        assert (await sign_in(client, runtime, people.officer.id)).status_code == 303
        assert 'href="/confidentiality"' not in (await client.get("/incidents")).text
    elif role == "professional":
        await force_session(client, app, runtime, people.professional.id)
    for template in PAGES:
        url = template.format(id=row.id)
        answer = await client.get(url)
        assert answer.status_code == status, url
        assert "laptop" not in answer.text
    refusal = (await client.get("/confidentiality")).text
    csrf = csrf_of(refusal) if 'name="csrf"' in refusal else "none"
    for url in ("/confidentiality", f"/confidentiality/{row.id}"):
        answer = await client.post(url, data={"csrf": csrf, **form(clock, description="X")})
        assert answer.status_code == 403, url
    [after] = await stored(runtime)
    assert after.description == row.description
    assert await audit_entries(runtime, "view_confidentiality") == []
    assert await audit_entries(runtime, "export_confidentiality") == []


async def test_the_query_layer_refuses_others_too(runtime: Runtime, people: People) -> None:
    async with runtime.sessions() as session:
        for member in (people.officer, people.professional):
            viewer = await viewer_for(session, member)
            with pytest.raises(PermissionError):
                viewer.confidentiality(session)
        coordinator = await viewer_for(session, people.coordinator)
        assert await coordinator.confidentiality(session).newest_first() == []


async def test_changes_need_the_csrf_token(
    client: httpx.AsyncClient, runtime: Runtime, people: People, clock: FrozenClock
) -> None:
    await sign_in(client, runtime, people.coordinator.id)
    refused = await client.post("/confidentiality", data={"csrf": "forged", **form(clock)})
    assert refused.status_code == 403
    assert "did not come from this site" in refused.text
    assert await stored(runtime) == []
    await record(client, form(clock))
    [entry] = await stored(runtime)
    refused = await client.post(
        f"/confidentiality/{entry.id}", data={**form(clock, description="Changed")}
    )
    assert refused.status_code == 403
    [after] = await stored(runtime)
    assert after.description == entry.description


async def test_an_unknown_entry_is_not_found(
    client: httpx.AsyncClient, runtime: Runtime, people: People, clock: FrozenClock
) -> None:
    await sign_in(client, runtime, people.coordinator.id)
    assert (await client.get("/confidentiality/999")).status_code == 404
    assert (await client.get("/confidentiality/999/edit")).status_code == 404
    csrf = csrf_of((await client.get("/confidentiality/new")).text)
    answer = await client.post("/confidentiality/999", data={"csrf": csrf, **form(clock)})
    assert answer.status_code == 404


async def test_the_migration_adds_and_removes_the_table(runtime: Runtime) -> None:
    def tables(connection: object) -> set[str]:
        return set(inspect(connection).get_table_names())

    async with runtime.engine.connect() as connection:
        assert "confidentiality_incidents" in await connection.run_sync(tables)
    await downgrade(runtime.engine, "0005")
    async with runtime.engine.connect() as connection:
        assert "confidentiality_incidents" not in await connection.run_sync(tables)
    await migrate(runtime.engine)
    async with runtime.engine.connect() as connection:
        assert "confidentiality_incidents" in await connection.run_sync(tables)
