"""Purged and anonymised incidents in the dashboard: same timeline, same figures, no people."""

from __future__ import annotations

import csv
import io

import httpx
from pypdf import PdfReader

from bot.runtime import Runtime
from storage.retention import Retention, RetentionPolicy
from tests.dashboard.scenario import World, main_of, sign_in
from tests.support.clock import FrozenClock

REMOVED = "text removed (retention)"


async def test_an_anonymised_incident_keeps_its_timeline_and_figures(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock, world: World
) -> None:
    await sign_in(client, runtime, world.coordinator.id)
    before = main_of((await client.get(f"/incidents/{world.nord}")).text)
    statistics = main_of((await client.get("/statistics?kind=all")).text)
    assert "Julie" in before
    assert "Agent Roy" in before
    assert REMOVED not in before

    clock.advance(days=400)
    report = await Retention(runtime.sessions, RetentionPolicy.days(30, 180)).apply(
        clock.now(), "test"
    )
    assert report.anonymised == (world.nord,)  # the other two are still open
    await sign_in(client, runtime, world.coordinator.id)  # the old session has expired

    page = main_of((await client.get(f"/incidents/{world.nord}")).text)
    assert page.count('<tr class="event') == before.count('<tr class="event')
    assert REMOVED in page
    assert "▸ No immediate danger" in page  # pressed buttons are not text anyone typed
    assert "&lt;script&gt;" not in page  # what the professional typed is gone
    assert "<dt>Opened by</dt><dd>anonymised</dd>" in page
    assert "EV-2026-777" not in page
    assert "<dt>Retention</dt><dd>conversation removed 2027-12-" in page
    for person in ("Julie", "Agent Roy", "Coord Dupuis"):
        assert person not in page
    assert main_of((await client.get("/statistics?kind=all")).text) == statistics

    pdf = await client.get(f"/incidents/{world.nord}/report.pdf")
    assert pdf.status_code == 200
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Julie" not in text
    assert "Agent Roy" not in text
    assert "EV-2026-777" not in text
    assert "Alert acknowledged" in text
    printable = await client.get(f"/incidents/{world.nord}/report")
    assert printable.status_code == 200
    assert "Julie" not in printable.text

    rows = list(csv.DictReader(io.StringIO((await client.get("/incidents.csv")).text[1:])))
    nord = next(r for r in rows if r["code"] == world.nord)
    assert (nord["opened_by"], nord["event_number"], nord["status"]) == ("", "", "closed")
    assert nord["minutes_to_911"] == "9.0"
    listing = main_of((await client.get("/incidents")).text)
    assert "3 incident(s)" in listing

    # The open incidents keep everything.
    west = main_of((await client.get(f"/incidents/{world.west}")).text)
    assert "&lt;b&gt;Mark&lt;/b&gt;" in west
    assert REMOVED not in west
