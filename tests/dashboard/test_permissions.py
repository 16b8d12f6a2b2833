"""Who sees what: roles are enforced by every page and every query, not only by the menus."""

from __future__ import annotations

import httpx
import pytest

from bot.runtime import Runtime
from storage.repositories import IncidentFilter, IncidentRegister
from tests.dashboard.scenario import World, csrf_of, main_of, sign_in

# Every route for every role and method is in tests/security/test_dashboard_matrix.py.
NORD_PAGES = ("/incidents/{nord}", "/incidents/{nord}/report", "/incidents/{nord}/report.pdf")


async def test_an_officer_sees_only_the_incidents_of_their_schools(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    await sign_in(client, runtime, world.officer_west.id)
    listing = await client.get("/incidents")
    assert world.west in listing.text
    assert world.nord not in listing.text
    assert world.drill not in listing.text
    assert "You see the incidents of your schools: West High School." in listing.text
    # Asking for the other school by filter gives nothing either: the filter is named as
    # not valid, as for a school that does not exist, and the list stays the officer's own.
    filtered = await client.get("/incidents?school=nord")
    assert world.nord not in filtered.text
    assert "Value not valid, filter ignored: School." in filtered.text
    assert world.west in filtered.text
    exported = await client.get("/incidents.csv?school=nord")
    assert exported.status_code == 400
    assert world.nord not in exported.text
    assert world.west in (await client.get("/incidents.csv")).text
    assert world.nord not in (await client.get("/incidents.csv")).text
    stats = await client.get("/statistics?kind=all")
    assert 'id="stat-total">1<' in stats.text
    for url in NORD_PAGES:
        response = await client.get(url.format(nord=world.nord))
        assert response.status_code == 404
        assert world.nord not in main_of(response.text)


async def test_an_officer_of_the_school_reads_its_incident(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    await sign_in(client, runtime, world.officer_nord.id)
    page = await client.get(f"/incidents/{world.nord}")
    assert page.status_code == 200
    assert "EV-2026-777" in page.text
    listing = await client.get("/incidents")
    assert world.nord in listing.text
    assert world.drill in listing.text
    assert world.west not in listing.text


async def test_posting_to_administration_is_refused_to_officers(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    await sign_in(client, runtime, world.officer_nord.id)
    page = await client.get("/incidents")
    csrf = csrf_of(page.text)
    for url, data in (
        ("/admin/officers/nord", {"officer": str(world.officer_nord.id)}),
        (f"/admin/members/{world.coordinator.id}/active", {"active": "0"}),
        ("/admin/codes", {"role": "coordinator"}),
    ):
        response = await client.post(url, data={"csrf": csrf, **data})
        assert response.status_code == 403, url


async def test_the_register_applies_the_scope_to_every_query(
    runtime: Runtime, world: World
) -> None:
    async with runtime.sessions() as session:
        everyone = IncidentRegister(session, None)
        nobody = IncidentRegister(session, frozenset())
        west = IncidentRegister(session, frozenset({"west"}))
        nord = await everyone.by_code(world.nord)
        assert nord is not None
        assert await nobody.by_code(world.nord) is None
        assert await west.by_code(world.nord) is None
        assert (await nobody.search(IncidentFilter(), "opened_desc", 0, 50))[1] == 0
        assert (await west.search(IncidentFilter(), "opened_desc", 0, 50))[1] == 1
        assert await nobody.matching(IncidentFilter()) == []
        assert await west.status_counts(IncidentFilter(school_id="nord")) == {}
        assert await west.acknowledgements([nord.id]) == []
        with pytest.raises(PermissionError):
            await west.timeline(nord)
        with pytest.raises(PermissionError):
            await nobody.escalations(nord)
        assert len(await everyone.acknowledgements([nord.id])) == 1
