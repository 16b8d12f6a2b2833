"""Administration: officers and backups, members, enrollment codes, and the audit log."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError
from starlette.applications import Starlette

from bot.runtime import Runtime
from storage.models import AuditEntry, EnrollmentCode, Member, Role
from storage.repositories import AuditLog, Enrollment, EnrollmentError, Officers
from tests.conftest import add_member
from tests.dashboard.scenario import BASE, World, csrf_of, main_of, sign_in
from tests.support.clock import FrozenClock


async def coordinator_client(
    client: httpx.AsyncClient, runtime: Runtime, world: World, page: str
) -> str:
    await sign_in(client, runtime, world.coordinator.id)
    return csrf_of((await client.get(page)).text)


async def test_schools_come_from_the_config_with_their_officers(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    await sign_in(client, runtime, world.coordinator.id)
    page = main_of((await client.get("/admin/schools")).text)
    assert "École secondaire du Nord" in page
    assert "West High School" in page
    assert "Agent Roy" in page
    assert "Officer Smith" in page


async def test_changing_a_school_s_officer_and_backup(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    csrf = await coordinator_client(client, runtime, world, "/admin/officers")
    answer = await client.post(
        "/admin/officers/nord",
        data={
            "csrf": csrf,
            "officer": str(world.officer_west.id),
            "backup": str(world.officer_nord.id),
        },
    )
    assert answer.status_code == 200
    assert "Change saved." in answer.text
    async with runtime.sessions() as session:
        row = await Officers(session).for_school("nord")
        assert row is not None
        assert (row.officer_id, row.backup_officer_id) == (
            world.officer_west.id,
            world.officer_nord.id,
        )
        entry = (
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "assignment_changed")
            )
        ).one()
    assert entry.target == "nord"
    assert entry.member_id == world.coordinator.id
    assert entry.data["was"] == {"officer": world.officer_nord.id, "backup": None}


@pytest.mark.parametrize(
    "form",
    [
        {"officer": "same", "backup": "same"},  # the backup must be someone else
        {"officer": "coordinator"},  # not an officer
        {"officer": "", "backup": "same"},  # a backup without an officer
    ],
)
async def test_impossible_assignments_are_refused(
    client: httpx.AsyncClient, runtime: Runtime, world: World, form: dict[str, str]
) -> None:
    ids = {"same": str(world.officer_nord.id), "coordinator": str(world.coordinator.id), "": ""}
    csrf = await coordinator_client(client, runtime, world, "/admin/officers")
    answer = await client.post(
        "/admin/officers/nord", data={"csrf": csrf, **{k: ids[v] for k, v in form.items()}}
    )
    assert answer.status_code == 400
    assert "Change refused" in answer.text
    async with runtime.sessions() as session:
        row = await Officers(session).for_school("nord")
        assert row is not None
        assert row.officer_id == world.officer_nord.id


async def test_deactivating_a_member(
    client: httpx.AsyncClient, app: Starlette, runtime: Runtime, world: World
) -> None:
    officer_client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
    async with officer_client:
        await sign_in(officer_client, runtime, world.officer_west.id)
        assert (await officer_client.get("/incidents")).status_code == 200
        csrf = await coordinator_client(client, runtime, world, "/admin/members")
        answer = await client.post(
            f"/admin/members/{world.officer_west.id}/active", data={"csrf": csrf, "active": "0"}
        )
        assert answer.status_code == 200
        assert "Change saved." in answer.text
        # Their open dashboard session ends with it.
        assert (await officer_client.get("/incidents")).status_code == 303
    async with runtime.sessions() as session:
        member = await session.get(Member, world.officer_west.id)
        assert member is not None
        assert not member.active
    answer = await client.post(
        f"/admin/members/{world.officer_west.id}/active", data={"csrf": csrf, "active": "1"}
    )
    assert answer.status_code == 200


async def test_no_one_deactivates_themselves_and_only_admins_touch_admins(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    csrf = await coordinator_client(client, runtime, world, "/admin/members")
    own = await client.post(
        f"/admin/members/{world.coordinator.id}/active", data={"csrf": csrf, "active": "0"}
    )
    assert own.status_code == 400
    assert "cannot deactivate yourself" in own.text
    admin = await client.post(
        f"/admin/members/{world.admin.id}/active", data={"csrf": csrf, "active": "0"}
    )
    assert admin.status_code == 400
    assert "only an administrator" in admin.text
    unknown = await client.post("/admin/members/9999/active", data={"csrf": csrf, "active": "0"})
    assert unknown.status_code == 404


async def test_changes_need_the_csrf_token(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    await coordinator_client(client, runtime, world, "/admin/members")
    for url, data in (
        (f"/admin/members/{world.officer_west.id}/active", {"active": "0"}),
        ("/admin/officers/nord", {"officer": str(world.officer_west.id)}),
        ("/admin/codes", {"role": "officer"}),
        ("/admin/codes/1/revoke", {}),
    ):
        refused = await client.post(url, data={"csrf": "forged", **data})
        assert refused.status_code == 403, url
        assert "did not come from this site" in refused.text
    async with runtime.sessions() as session:
        member = await session.get(Member, world.officer_west.id)
        assert member is not None
        assert member.active
        assert (await session.scalars(select(EnrollmentCode))).all() == []


async def test_an_enrollment_code_is_shown_once_and_works(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    csrf = await coordinator_client(client, runtime, world, "/admin/codes")
    answer = await client.post(
        "/admin/codes", data={"csrf": csrf, "role": "professional", "school": "west"}
    )
    assert answer.status_code == 200
    code = re.search(r"Code created: ([A-Z0-9]{12})", answer.text).group(1)
    assert "valid" in main_of(answer.text)
    again = await client.get("/admin/codes")
    assert code not in again.text  # never shown again (only its hash is kept)
    async with runtime.sessions() as session, session.begin():
        member = await Enrollment(session).redeem(code, 5555, "New Pro", "fr", runtime.clock.now())
    assert member.role is Role.PROFESSIONAL
    used = main_of((await client.get("/admin/codes")).text)
    assert "used by New Pro" in used


async def test_a_professional_code_needs_a_school(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    csrf = await coordinator_client(client, runtime, world, "/admin/codes")
    answer = await client.post("/admin/codes", data={"csrf": csrf, "role": "professional"})
    assert answer.status_code == 400
    assert "needs a school" in answer.text
    admin_code = await client.post("/admin/codes", data={"csrf": csrf, "role": "admin"})
    assert admin_code.status_code == 400  # no administrator codes from the dashboard


async def test_revoking_a_code_and_seeing_it_expire(
    client: httpx.AsyncClient, runtime: Runtime, world: World, clock: FrozenClock
) -> None:
    csrf = await coordinator_client(client, runtime, world, "/admin/codes")
    first = await client.post("/admin/codes", data={"csrf": csrf, "role": "coordinator"})
    code = re.search(r"Code created: ([A-Z0-9]{12})", first.text).group(1)
    await client.post("/admin/codes", data={"csrf": csrf, "role": "officer", "school": "nord"})
    async with runtime.sessions() as session:
        ids = [r.id for r in (await session.scalars(select(EnrollmentCode))).all()]
    revoked = await client.post(f"/admin/codes/{ids[0]}/revoke", data={"csrf": csrf})
    assert "revoked" in main_of(revoked.text)
    async with runtime.sessions() as session, session.begin():
        with pytest.raises(EnrollmentError):
            await Enrollment(session).redeem(code, 6666, "X", "fr", clock.now())
    clock.advance(days=4)
    await sign_in(client, runtime, world.coordinator.id)  # the session has expired meanwhile
    page = main_of((await client.get("/admin/codes")).text)
    assert "expired" in page


async def test_the_audit_log_is_for_coordinators_and_lists_who_did_what(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    await sign_in(client, runtime, world.coordinator.id)
    await client.get(f"/incidents/{world.nord}")
    page = main_of((await client.get("/audit")).text)
    assert "<code>view_incident</code>" in page
    assert world.nord in page
    assert "Coord Dupuis" in page
    assert "<code>sign_in</code>" in page


async def test_the_audit_log_cannot_be_changed_or_erased(runtime: Runtime, world: World) -> None:
    async with runtime.sessions() as session, session.begin():
        await AuditLog(session).append(
            at=runtime.clock.now(), member_id=world.coordinator.id, action="sign_in"
        )
    with pytest.raises(DBAPIError):
        async with runtime.sessions() as session, session.begin():
            await session.execute(update(AuditEntry).values(action="nothing"))
    with pytest.raises(DBAPIError):
        async with runtime.sessions() as session, session.begin():
            await session.execute(delete(AuditEntry))
    async with runtime.sessions() as session:
        assert [r.action for r in (await session.scalars(select(AuditEntry))).all()] == ["sign_in"]


async def test_a_new_member_appears_in_the_list(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    await add_member(runtime, Role.OFFICER, ("west",), 2099, "<i>Sneaky</i>", "fr")
    await sign_in(client, runtime, world.coordinator.id)
    page = main_of((await client.get("/admin/members")).text)
    assert "&lt;i&gt;Sneaky&lt;/i&gt;" in page
    assert "<i>Sneaky" not in page
