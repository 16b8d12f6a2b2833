"""Storage on SQLite and PostgreSQL: enrollment, incident codes, forward-only status, timeline."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, select, text

from bot.runtime import Runtime
from storage.database import create_engine, downgrade, migrate
from storage.models import EnrollmentCode, IncidentStatus, Role, TimelineEvent
from storage.repositories import (
    Enrollment,
    EnrollmentError,
    EnrollmentProblem,
    Incidents,
    Members,
    Officers,
    StatusError,
    Timeline,
    hash_code,
)
from tests.conftest import add_member
from tests.support.clock import FrozenClock
from tests.support.databases import postgres_database

TTL = timedelta(days=3)


async def test_codes_are_stored_hashed_and_work_once(runtime: Runtime, clock: FrozenClock) -> None:
    async with runtime.sessions() as session, session.begin():
        code, _row = await Enrollment(session).create_code(
            Role.PROFESSIONAL, "nord", clock.now(), TTL
        )
    async with runtime.sessions() as session:
        stored = (await session.scalars(select(EnrollmentCode))).one()
        assert stored.code_hash == hash_code(code) != code
        raw = (await session.execute(text("SELECT * FROM enrollment_codes"))).all()
        assert code not in repr(raw)
    async with runtime.sessions() as session, session.begin():
        member = await Enrollment(session).redeem(code.lower(), 555, "Julie", "fr", clock.now())
        assert member.role is Role.PROFESSIONAL
        assert [s.id for s in member.schools] == ["nord"]
    async with runtime.sessions() as session, session.begin():
        with pytest.raises(EnrollmentError) as reused:
            await Enrollment(session).redeem(code, 556, "Other", "fr", clock.now())
    assert reused.value.problem is EnrollmentProblem.USED


@pytest.mark.parametrize(
    ("setup", "problem"),
    [("expire", EnrollmentProblem.EXPIRED), ("revoke", EnrollmentProblem.REVOKED)],
)
async def test_expired_and_revoked_codes(
    runtime: Runtime, clock: FrozenClock, setup: str, problem: EnrollmentProblem
) -> None:
    async with runtime.sessions() as session, session.begin():
        code, row = await Enrollment(session).create_code(Role.OFFICER, "nord", clock.now(), TTL)
        if setup == "revoke":
            row.revoked_at = clock.now()
    if setup == "expire":
        clock.advance(TTL)
    async with runtime.sessions() as session, session.begin():
        with pytest.raises(EnrollmentError) as refused:
            await Enrollment(session).redeem(code, 555, "Julie", "fr", clock.now())
    assert refused.value.problem is problem


async def test_unknown_code_and_second_enrollment(runtime: Runtime, clock: FrozenClock) -> None:
    await add_member(runtime, Role.PROFESSIONAL, ("nord",), 555)
    async with runtime.sessions() as session, session.begin():
        code, _ = await Enrollment(session).create_code(
            Role.PROFESSIONAL, "nord", clock.now(), TTL
        )
        with pytest.raises(EnrollmentError) as unknown:
            await Enrollment(session).redeem("NOPE", 777, "X", "fr", clock.now())
        with pytest.raises(EnrollmentError) as again:
            await Enrollment(session).redeem(code, 555, "X", "fr", clock.now())
    assert unknown.value.problem is EnrollmentProblem.UNKNOWN
    assert again.value.problem is EnrollmentProblem.ALREADY_ENROLLED


async def test_officer_codes_assign_the_school_then_its_backup(
    runtime: Runtime, clock: FrozenClock
) -> None:
    ids = []
    for telegram_id in (801, 802, 803):
        async with runtime.sessions() as session, session.begin():
            code, _ = await Enrollment(session).create_code(Role.OFFICER, "nord", clock.now(), TTL)
            ids.append(
                (await Enrollment(session).redeem(code, telegram_id, "O", "fr", clock.now())).id
            )
    async with runtime.sessions() as session:
        assignment = await Officers(session).for_school("nord")
        assert assignment is not None
        assert (assignment.officer_id, assignment.backup_officer_id) == (ids[0], ids[1])


async def test_incident_codes_count_per_year(runtime: Runtime, clock: FrozenClock) -> None:
    pro = await add_member(runtime, Role.PROFESSIONAL, ("nord",), 555)
    codes = []
    for when in (clock.now(), clock.now(), datetime(2027, 1, 2, 12, tzinfo=UTC)):
        async with runtime.sessions() as session, session.begin():
            codes.append((await Incidents(session).open("nord", pro.id, False, when)).code)
    assert codes == ["SX-2026-0001", "SX-2026-0002", "SX-2027-0001"]


async def test_incidents_opened_at_the_same_moment_get_distinct_codes(
    runtime: Runtime, clock: FrozenClock
) -> None:
    pro = await add_member(runtime, Role.PROFESSIONAL, ("nord",), 555)

    async def open_one() -> str:
        async with runtime.sessions() as session, session.begin():
            incident = await Incidents(session).open("nord", pro.id, False, clock.now())
            await asyncio.sleep(0.01)  # still in its transaction while the others open theirs
            return incident.code

    codes = await asyncio.gather(*(open_one() for _ in range(12)))
    assert sorted(codes) == [f"SX-2026-{n:04d}" for n in range(1, 13)]


async def test_status_only_moves_forward(runtime: Runtime, clock: FrozenClock) -> None:
    pro = await add_member(runtime, Role.PROFESSIONAL, ("nord",), 555)
    async with runtime.sessions() as session, session.begin():
        incidents = Incidents(session)
        incident = await incidents.open("nord", pro.id, False, clock.now())
        assert await incidents.advance(incident, IncidentStatus.KIT_COLLECTED, clock.now())
        assert not await incidents.advance(incident, IncidentStatus.POLICE_CALLED, clock.now())
        assert incident.status is IncidentStatus.KIT_COLLECTED
        await incidents.cancel(incident, "duplicate", clock.now())
        with pytest.raises(StatusError):
            await incidents.advance(incident, IncidentStatus.CLOSED, clock.now())
        assert incident.closed_at == clock.now()


async def test_times_come_back_aware_in_utc(runtime: Runtime) -> None:
    pro = await add_member(runtime, Role.PROFESSIONAL, ("nord",), 555)
    montreal = datetime.fromisoformat("2026-11-21T09:30:00-05:00")
    async with runtime.sessions() as session, session.begin():
        await Timeline(session).append(at=montreal, kind="step_done", member_id=pro.id)
    async with runtime.sessions() as session:
        [event] = await Timeline(session).for_member(pro.id)
        assert event.at == montreal
        assert event.at.tzinfo is not None
        assert event.at.utcoffset() == timedelta(0)


async def test_naive_times_are_refused(runtime: Runtime) -> None:
    async with runtime.sessions() as session:
        with pytest.raises(Exception, match="naive datetime"):
            await Timeline(session).append(at=datetime(2026, 1, 1), kind="step_done")  # noqa: DTZ001


async def test_the_timeline_has_no_way_to_change_history() -> None:
    assert not [name for name in dir(Timeline) if name.startswith(("update", "delete", "remove"))]


async def test_members_by_role_and_language(runtime: Runtime) -> None:
    coordinator = await add_member(runtime, Role.COORDINATOR, (), 901, "Coord")
    await add_member(runtime, Role.PROFESSIONAL, ("nord",), 902)
    async with runtime.sessions() as session, session.begin():
        members = Members(session)
        assert [m.id for m in await members.with_role(Role.COORDINATOR)] == [coordinator.id]
        found = await members.by_telegram_id(901)
        assert found is not None
        await members.set_language(found, "en")
    async with runtime.sessions() as session:
        assert (await Members(session).get(coordinator.id)).language == "en"  # type: ignore[union-attr]


async def test_migrations_go_down_and_up_again(runtime: Runtime) -> None:
    await downgrade(runtime.engine, "base")
    async with runtime.engine.connect() as connection:
        tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
    assert set(tables) <= {"alembic_version"}
    await migrate(runtime.engine)
    async with runtime.engine.connect() as connection:
        tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
    assert {"incidents", "timeline_events", "members", "enrollment_codes"} <= set(tables)
    async with runtime.sessions() as session:
        assert (await session.scalars(select(TimelineEvent))).all() == []


async def test_after_a_busy_moment_postgresql_work_keeps_to_the_last_used_connection() -> None:
    """Sequential transactions after concurrent ones reuse one warm connection (its statements
    prepared already) instead of turning through all those the busy moment opened."""
    async with postgres_database() as url:
        engine = create_engine(url)
        try:
            backend = text("SELECT pg_backend_pid()")
            busy = [await engine.connect() for _ in range(4)]
            opened = {(await c.execute(backend)).scalar_one() for c in busy}
            for connection in busy:
                await connection.close()
            used = []
            for _ in range(6):
                async with engine.connect() as connection:
                    used.append((await connection.execute(backend)).scalar_one())
        finally:
            await engine.dispose()
    assert len(opened) == 4
    assert len(set(used)) == 1
