"""Incidents, one incident's file, its exports, and the statistics, as a coordinator reads them."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import httpx
from pypdf import PdfReader
from sqlalchemy import select

from bot.runtime import Runtime
from storage.models import AuditEntry, IncidentStatus, Role
from storage.repositories import Incidents
from tests.conftest import add_member
from tests.dashboard.scenario import XSS, World, main_of, sign_in
from tests.support.clock import FrozenClock


async def audited(runtime: Runtime) -> list[tuple[str, str | None]]:
    async with runtime.sessions() as session:
        rows = await session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        return [(row.action, row.target) for row in rows]


async def test_the_list_shows_counts_and_every_incident(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    await sign_in(client, runtime, world.coordinator.id)
    page = main_of((await client.get("/incidents")).text)
    assert "3 incident(s)" in page
    assert "open : 2" in page
    assert "closed : 1" in page
    assert page.index(world.drill) < page.index(world.west) < page.index(world.nord)
    assert "&lt;b&gt;Mark&lt;/b&gt;" in page  # a display name is text, never markup
    assert "<b>Mark</b>" not in page
    assert "9 min" in page  # time to 911 of the nord incident


async def test_the_list_filters_by_school_status_kind_and_dates(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    await sign_in(client, runtime, world.coordinator.id)

    async def codes(query: str) -> list[str]:
        page = main_of((await client.get(f"/incidents?{query}")).text)
        return [c for c in (world.nord, world.west, world.drill) if f">{c}</a>" in page]

    assert await codes("school=nord") == [world.nord, world.drill]
    assert await codes("status=closed") == [world.nord]
    assert await codes("kind=drill") == [world.drill]
    assert await codes("kind=real") == [world.nord, world.west]
    # The nord incident opened on 2026-11-21 (Montréal), the others on 2026-11-23.
    assert await codes("from=2026-11-22") == [world.west, world.drill]
    assert await codes("to=2026-11-21") == [world.nord]
    assert await codes("from=2026-11-21&to=2026-11-21&kind=real&school=nord") == [world.nord]
    assert await codes("status=bogus&kind=bogus&from=bogus") == [
        world.nord,
        world.west,
        world.drill,
    ]


async def test_a_filter_that_cannot_apply_is_named_not_silently_dropped(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    await sign_in(client, runtime, world.coordinator.id)
    page = main_of((await client.get("/incidents?status=bogus&from=2026-13-45&kind=real")).text)
    assert "Value not valid, filter ignored: Status, From." in page
    assert "2 incident(s)" in page  # the valid filter (real incidents) still applies
    # A school that does not exist would have shown an empty list under "Any" school.
    page = main_of((await client.get("/incidents?school=nowhere")).text)
    assert "filter ignored: School." in page
    assert "3 incident(s)" in page
    clean = main_of((await client.get("/incidents?school=nord&status=closed")).text)
    assert "filter ignored" not in clean
    stats = main_of((await client.get("/statistics?to=yesterday")).text)
    assert "Value not valid, filter ignored: To." in stats
    assert 'id="stat-total">2<' in stats
    stats = main_of((await client.get("/statistics?kind=everything")).text)
    assert "Value not valid, filter ignored: Kind." in stats
    assert 'id="stat-total">2<' in stats  # the page's own default: real incidents only


async def test_a_professional_cannot_filter_on_a_school_outside_their_scope(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    officer = await add_member(runtime, Role.OFFICER, ("west",), 4001, "Officer", "fr")
    await sign_in(client, runtime, officer.id)
    page = main_of((await client.get("/incidents?school=nord")).text)
    assert "Valeur non valide, filtre ignoré : École." in page
    assert world.nord not in page


async def test_the_csv_export_refuses_a_filter_that_cannot_apply(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    await sign_in(client, runtime, world.coordinator.id)
    response = await client.get("/incidents.csv?kind=real&from=21/11/2026")
    assert response.status_code == 400
    assert "Filter value not valid: From. Nothing was exported." in response.text
    assert "text/csv" not in response.headers["content-type"]
    assert "export_csv" not in [a for a, _ in await audited(runtime)]


async def test_the_list_sorts_and_has_pages(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    coordinator = await add_member(runtime, Role.COORDINATOR, (), 3001, "Coord", "en")
    professional = await add_member(runtime, Role.PROFESSIONAL, ("west",), 1001, "Pat", "en")
    async with runtime.sessions() as session, session.begin():
        for _ in range(30):
            await Incidents(session).open("west", professional.id, False, clock.now())
            clock.advance(hours=1)
    await sign_in(client, runtime, coordinator.id)
    first = main_of((await client.get("/incidents")).text)
    assert "30 incident(s)" in first
    assert "SX-2026-0030" in first
    assert "SX-2026-0001<" not in first
    assert "Page 1 of 2" in first
    second = main_of((await client.get("/incidents?page=2")).text)
    assert "SX-2026-0001<" in second
    assert "SX-2026-0030" not in second
    oldest = main_of((await client.get("/incidents?sort=opened_asc")).text)
    assert oldest.index("SX-2026-0001<") < oldest.index("SX-2026-0002<")


async def test_an_incident_shows_its_header_timeline_transcript_and_alerts(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    await sign_in(client, runtime, world.coordinator.id)
    page = main_of((await client.get(f"/incidents/{world.nord}")).text)
    for expected in (
        "École secondaire du Nord",
        "<dt>Status</dt><dd>closed</dd>",
        "<dt>Opened by</dt><dd>Julie</dd>",
        "<dt>911 event number</dt><dd>EV-2026-777</dd>",
        "<dt>Time to 911</dt><dd>9 min</dd>",
        "malicious (criminal investigation)",
    ):
        assert expected in page, expected
    # Times are Montréal's (stored 14:30 UTC).
    assert "2026-11-21 09:30:00</td><td>Incident opened" in page
    assert "<td>Reminder sent</td>" in page
    assert "2026-11-21 09:37:00" in page  # the reminder, 5 minutes after the call-911 step
    # The conversation: buttons by their label, the bot's messages with their bold kept.
    assert "▸ No immediate danger" in page
    assert "<b>First: is anyone in immediate danger?</b>" in page
    # Alerts: who, when, and when acknowledged.
    assert "Alert (opened)" in page
    assert "Agent Roy, 2026-11-21 09:32:00" in page
    assert "Alert (911 confirmed)" in page
    assert "911 reminder" in page


async def test_text_typed_in_the_bot_is_shown_as_text(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    await sign_in(client, runtime, world.coordinator.id)
    for url in (f"/incidents/{world.nord}", f"/incidents/{world.nord}/report"):
        page = (await client.get(url)).text
        assert XSS not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


async def test_the_incident_page_in_french(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    await sign_in(client, runtime, world.coordinator.id)
    await client.get("/lang/fr")
    page = main_of((await client.get(f"/incidents/{world.nord}")).text)
    assert "Chronologie" in page
    assert "<dt>N° d&#39;événement 911</dt>" in page
    assert "malveillant (enquête criminelle)" in page
    assert "▸ Non, pas de danger immédiat" in page


async def test_the_printable_report(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    await sign_in(client, runtime, world.coordinator.id)
    page = (await client.get(f"/incidents/{world.nord}/report")).text
    assert '<body class="print">' in page
    assert "Incident report SX-2026-0001" in page
    assert "Printed 2026-11-23" in page
    assert ("export_report", world.nord) in await audited(runtime)


async def test_the_pdf_for_the_police_file(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    await sign_in(client, runtime, world.officer_nord.id)
    response = await client.get(f"/incidents/{world.nord}/report.pdf")
    assert response.headers["content-type"] == "application/pdf"
    assert f'filename="{world.nord}.pdf"' in response.headers["content-disposition"]
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages)
    for expected in (
        "Incident report SX-2026-0001",
        "École secondaire du Nord",
        "EV-2026-777",
        "2026-11-21 09:30:00",
        "Alert acknowledged",
        "Agent Roy",
        XSS,  # in a PDF, text is text
    ):
        assert expected in text, expected
    assert ("export_pdf", world.nord) in await audited(runtime)


async def test_the_csv_export(client: httpx.AsyncClient, runtime: Runtime, world: World) -> None:
    await sign_in(client, runtime, world.coordinator.id)
    response = await client.get("/incidents.csv?kind=real")
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert [r["code"] for r in rows] == [world.west, world.nord]
    nord = rows[1]
    assert nord["school"] == "École secondaire du Nord"
    assert nord["status"] == "closed"
    assert nord["opened_at"] == "2026-11-21T09:30:00-05:00"
    assert nord["minutes_to_911"] == "9.0"
    assert nord["event_number"] == "EV-2026-777"
    assert nord["outcome"] == "malicious"
    assert [a for a, _ in await audited(runtime)].count("export_csv") == 1


async def test_csv_cells_cannot_become_formulas(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    coordinator = await add_member(runtime, Role.COORDINATOR, (), 3001, "Coord", "en")
    professional = await add_member(runtime, Role.PROFESSIONAL, ("west",), 1001, "=HYPERLINK()")
    async with runtime.sessions() as session, session.begin():
        incident = await Incidents(session).open("west", professional.id, False, clock.now())
        await Incidents(session).update(incident, clock.now(), event_number="=1+2")
    await sign_in(client, runtime, coordinator.id)
    rows = list(csv.DictReader(io.StringIO((await client.get("/incidents.csv")).text[1:])))
    assert rows[0]["event_number"] == "'=1+2"
    assert rows[0]["opened_by"] == "'=HYPERLINK()"


async def test_statistics_show_delays_and_counts(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    await sign_in(client, runtime, world.coordinator.id)
    page = main_of((await client.get("/statistics")).text)
    assert 'id="stat-total">2<' in page  # real incidents by default
    assert "9 min</span> median" in page
    assert "2 min</span> median" in page  # the officer acknowledged after 2 minutes
    assert page.count("<svg class='chart'") == 4
    assert "2026-11" in page
    everything = main_of((await client.get("/statistics?kind=all")).text)
    assert 'id="stat-total">3<' in everything
    assert ("view_statistics", None) in await audited(runtime)


async def test_every_view_and_export_is_audited(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    await sign_in(client, runtime, world.officer_west.id)
    await client.get("/incidents?school=west")
    await client.get(f"/incidents/{world.west}")
    await client.get(f"/incidents/{world.nord}")  # refused, and recorded
    actions = await audited(runtime)
    assert actions[-4:] == [
        ("sign_in", None),
        ("view_incidents", None),
        ("view_incident", world.west),
        ("view_denied", world.nord),
    ]


async def test_a_cancelled_incident_shows_its_reason_escaped(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    coordinator = await add_member(runtime, Role.COORDINATOR, (), 3001, "Coord", "en")
    professional = await add_member(runtime, Role.PROFESSIONAL, ("west",), 1001, "Pat", "en")
    async with runtime.sessions() as session, session.begin():
        incident = await Incidents(session).open("west", professional.id, False, clock.now())
        clock.advance(timedelta(minutes=3))
        await Incidents(session).cancel(incident, "<img src=x onerror=alert(1)>", clock.now())
    await sign_in(client, runtime, coordinator.id)
    page = main_of((await client.get(f"/incidents/{incident.code}")).text)
    assert IncidentStatus.CANCELLED.value in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<img" not in page
