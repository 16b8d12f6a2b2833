"""The retention purge on SQLite and PostgreSQL: text goes, then links to people; figures stay."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from bot.runtime import Runtime
from dashboard.statistics import Figures, compute
from storage.database import downgrade, migrate
from storage.models import (
    AuditEntry,
    Conversation,
    Delivery,
    EnrollmentAttempt,
    Escalation,
    EventKind,
    Incident,
    TimelineEvent,
)
from storage.repositories import (
    EnrollmentAttempts,
    Escalations,
    IncidentFilter,
    IncidentRegister,
)
from storage.retention import Action, Retention, RetentionPolicy
from tests.support.clock import FrozenClock
from tests.support.retention import (
    BEFORE_OPENING,
    CANCEL_REASON,
    EVENT_NUMBER,
    STILL_OPEN,
    TYPED,
    Story,
    stored_text,
    tell_story,
)

POLICY = RetentionPolicy.days(transcript_days=30, incident_days=180)
REMOVED = (TYPED, BEFORE_OPENING, CANCEL_REASON)


@pytest.fixture
async def story(runtime: Runtime, clock: FrozenClock) -> Story:
    return await tell_story(runtime, clock)


@pytest.fixture
def retention(runtime: Runtime) -> Retention:
    return Retention(runtime.sessions, POLICY)


async def figures(runtime: Runtime) -> tuple[Figures, dict[Any, int]]:
    """What the statistics page computes, and the status counts of the incident list."""
    async with runtime.sessions() as session:
        register = IncidentRegister(session, None)
        rows = await register.matching(IncidentFilter())
        acks = await register.acknowledgements(i.id for i in rows)
        counts = await register.status_counts(IncidentFilter())
        names = {"nord": "Nord", "west": "West"}
        return compute(rows, acks, runtime.settings.config.zone, names), counts


async def shapes(runtime: Runtime) -> dict[str, list[tuple[str, str | None, Any]]]:
    """Each incident's timeline as the dashboard lays it out: kind, step and time of each row."""
    async with runtime.sessions() as session:
        incidents = (await session.scalars(select(Incident))).all()
        events = (await session.scalars(select(TimelineEvent).order_by(TimelineEvent.id))).all()
    code = {i.id: i.code for i in incidents}
    laid_out: dict[str, list[tuple[str, str | None, Any]]] = {}
    for event in events:
        key = code.get(event.incident_id or 0, "(no incident)")
        laid_out.setdefault(key, []).append((event.kind, event.step, event.at))
    return laid_out


async def incident(runtime: Runtime, code: str) -> Incident:
    async with runtime.sessions() as session:
        found = await session.scalar(select(Incident).where(Incident.code == code))
        assert found is not None
        return found


async def linked_rows(runtime: Runtime, code: str) -> list[Any]:
    """The incident and every row that hangs off it."""
    async with runtime.sessions() as session:
        found = await session.scalar(select(Incident).where(Incident.code == code))
        assert found is not None
        events = (
            await session.scalars(
                select(TimelineEvent).where(TimelineEvent.incident_id == found.id)
            )
        ).all()
        chains = (
            await session.scalars(select(Escalation).where(Escalation.incident_id == found.id))
        ).all()
        deliveries = (
            await session.scalars(
                select(Delivery).where(Delivery.escalation_id.in_([c.id for c in chains]))
            )
        ).all()
    return [found, *events, *chains, *deliveries]


async def test_nothing_goes_before_its_time(
    runtime: Runtime, clock: FrozenClock, story: Story, retention: Retention
) -> None:
    clock.current = story.started_at + timedelta(days=29, hours=23)
    plan = await retention.plan(clock.now())
    assert plan.empty
    report = await retention.apply(clock.now(), "test")
    assert not report.changed
    everything = await stored_text(runtime)
    for sentence in (*REMOVED, STILL_OPEN, EVENT_NUMBER):
        assert sentence in everything


async def test_the_conversation_goes_after_transcript_days(
    runtime: Runtime, clock: FrozenClock, story: Story, retention: Retention
) -> None:
    before = await stored_text(runtime)
    for sentence in (*REMOVED, STILL_OPEN, EVENT_NUMBER):
        assert sentence in before
    figures_before, shapes_before = await figures(runtime), await shapes(runtime)

    clock.current = story.closed_at + timedelta(days=30)
    plan = await retention.plan(clock.now())
    assert [(d.code, d.actions) for d in plan.incidents] == [
        (story.closed, (Action.TRANSCRIPT,)),
        (story.drill, (Action.TRANSCRIPT,)),
    ]
    report = await retention.apply(clock.now(), "test")
    assert report.transcripts == (story.closed, story.drill)
    assert report.anonymised == ()
    assert report.messages == plan.messages > 0

    after = await stored_text(runtime)
    for sentence in REMOVED:
        assert sentence not in after, sentence
    assert STILL_OPEN in after  # the open incident keeps everything
    assert EVENT_NUMBER in after  # a police reference: it goes with anonymisation
    assert await figures(runtime) == figures_before
    assert await shapes(runtime) == shapes_before

    closed = await incident(runtime, story.closed)
    assert closed.transcript_purged_at == clock.now()
    assert closed.opened_by == story.professional.id  # links to people stay for now
    drill = await incident(runtime, story.drill)
    assert drill.cancel_reason is None
    deliveries = [r for r in await linked_rows(runtime, story.closed) if isinstance(r, Delivery)]
    assert deliveries
    assert {d.text for d in deliveries} == {""}
    async with runtime.sessions() as session:
        messages = (
            await session.scalars(
                select(TimelineEvent).where(
                    TimelineEvent.incident_id == closed.id,
                    TimelineEvent.kind.in_((EventKind.MESSAGE_IN, EventKind.MESSAGE_OUT)),
                )
            )
        ).all()
        saved = await session.get(Conversation, story.professional.id)
    assert all("text" not in m.data for m in messages)
    assert {m.redacted_at for m in messages if "button" not in m.data} == {clock.now()}
    # The professional's guide no longer remembers the closed incident (nor its event number).
    assert saved is not None
    assert saved.state == {"language": "en"}


async def test_incidents_are_anonymised_after_incident_days(
    runtime: Runtime, clock: FrozenClock, story: Story, retention: Retention
) -> None:
    figures_before, shapes_before = await figures(runtime), await shapes(runtime)
    clock.current = story.closed_at + timedelta(days=30)
    await retention.apply(clock.now(), "test")
    clock.current = story.closed_at + timedelta(days=180)
    plan = await retention.plan(clock.now())
    assert [(d.code, d.what) for d in plan.incidents] == [
        (story.closed, "anonymise"),
        (story.drill, "anonymise"),
    ]
    report = await retention.apply(clock.now(), "test")
    assert report.anonymised == (story.closed, story.drill)

    people = (story.professional, story.drill_professional, story.officer)
    for code in (story.closed, story.drill):
        rows = await linked_rows(runtime, code)
        shown = repr([{c.key: getattr(r, c.key) for c in r.__mapper__.column_attrs} for r in rows])
        for member in people:
            assert member.display_name not in shown
        first, *others = rows
        assert first.opened_by is None
        assert first.event_number is None
        assert first.anonymised_at == clock.now()
        for row in others:
            if isinstance(row, TimelineEvent):
                assert row.member_id is None
                assert "to" not in row.data
                assert "event_number" not in row.data
            elif isinstance(row, Escalation):
                assert row.acknowledged_by is None
            else:
                assert (row.member_id, row.chat_id, row.message_id) == (None, None, None)
    assert EVENT_NUMBER not in await stored_text(runtime)
    # Every figure of the dashboard, and every timeline's shape, is as it was.
    assert await figures(runtime) == figures_before
    assert figures_before[0].to_ack.count == 1
    assert await shapes(runtime) == shapes_before
    # The open incident is untouched, however old.
    still_open = await incident(runtime, story.open)
    assert still_open.opened_by == story.west_professional.id
    assert (still_open.transcript_purged_at, still_open.anonymised_at) == (None, None)
    assert STILL_OPEN in await stored_text(runtime)


async def test_long_overdue_incidents_lose_both_at_once(
    runtime: Runtime, clock: FrozenClock, story: Story, retention: Retention
) -> None:
    clock.current = story.closed_at + timedelta(days=400)
    plan = await retention.plan(clock.now())
    assert [d.what for d in plan.incidents] == ["transcript + anonymise"] * 2
    report = await retention.apply(clock.now(), "test")
    assert report.transcripts == report.anonymised == (story.closed, story.drill)
    everything = await stored_text(runtime)
    for sentence in (*REMOVED, EVENT_NUMBER):
        assert sentence not in everything
    assert STILL_OPEN in everything


async def test_a_dry_run_changes_nothing_and_lists_what_the_run_does(
    runtime: Runtime, clock: FrozenClock, story: Story, retention: Retention
) -> None:
    clock.current = story.closed_at + timedelta(days=181)
    before = await stored_text(runtime)
    plan = await retention.plan(clock.now())
    assert await stored_text(runtime) == before
    async with runtime.sessions() as session:
        assert (await session.scalars(select(AuditEntry))).all() == []
    report = await retention.apply(clock.now(), "test")
    assert report.transcripts == tuple(plan.codes(Action.TRANSCRIPT))
    assert report.anonymised == tuple(plan.codes(Action.ANONYMISE))
    assert report.messages == plan.messages


async def test_a_second_run_changes_nothing_and_each_run_is_audited(
    runtime: Runtime, clock: FrozenClock, story: Story, retention: Retention
) -> None:
    clock.current = story.closed_at + timedelta(days=200)
    first = await retention.apply(clock.now(), "daily")
    after_first = await stored_text(runtime, skip=("audit_log",))
    clock.advance(days=1)
    assert (await retention.plan(clock.now())).empty
    second = await retention.apply(clock.now(), "daily")
    assert not second.changed
    assert second.events == 0
    async with runtime.sessions() as session:
        entries = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    assert [e.action for e in entries] == ["retention_purge", "retention_purge"]
    assert entries[0].member_id is None
    assert entries[0].data["incidents"] == {
        "transcript": [story.closed, story.drill],
        "anonymise": [story.closed, story.drill],
    }
    assert entries[0].data["transcripts"] == entries[0].data["anonymised"] == 2
    assert entries[0].data["messages"] == first.messages > 0
    assert (entries[0].data["transcript_days"], entries[0].data["incident_days"]) == (30, 180)
    assert entries[1].data["transcripts"] == entries[1].data["anonymised"] == 0
    assert await retention.last_run() == clock.now()
    # Only the new audit entry differs from what the first run left.
    assert await stored_text(runtime, skip=("audit_log",)) == after_first


async def test_the_dashboard_figures_do_not_need_the_acknowledging_officer(
    runtime: Runtime, clock: FrozenClock, story: Story, retention: Retention
) -> None:
    async with runtime.sessions() as session:
        [chain] = (
            await session.scalars(
                select(Escalation).where(Escalation.stop_reason == "acknowledged")
            )
        ).all()
        acknowledged = (chain.started_at, chain.stopped_at)
    clock.current = story.closed_at + timedelta(days=365)
    await retention.apply(clock.now(), "test")
    async with runtime.sessions() as session:
        register = IncidentRegister(session, None)
        acks = await register.acknowledgements([chain.incident_id])
    assert [(started, stopped) for _, started, stopped in acks] == [acknowledged]


async def test_a_message_never_sent_is_not_sent_empty_after_a_restart(
    runtime: Runtime, clock: FrozenClock, story: Story, retention: Retention
) -> None:
    async with runtime.sessions() as session, session.begin():
        closed = await session.scalar(select(Incident).where(Incident.code == story.closed))
        assert closed is not None
        [chain, *_] = await Escalations(session).for_incident(closed.id)
        await Escalations(session).add_delivery(
            chain, story.officer.id, 2001, "officer", "Alert text", clock.now()
        )  # recorded, then the program stopped before sending it
    clock.current = story.closed_at + timedelta(days=30)
    await retention.apply(clock.now(), "test")
    async with runtime.sessions() as session:
        assert await Escalations(session).undelivered() == []


def test_a_policy_keeps_the_conversation_no_longer_than_the_incident() -> None:
    with pytest.raises(ValueError, match="longer than the incident"):
        RetentionPolicy.days(transcript_days=200, incident_days=100)
    with pytest.raises(ValueError, match="positive"):
        RetentionPolicy(timedelta(0), timedelta(days=1))


async def test_the_migration_keeps_existing_incidents(
    runtime: Runtime, clock: FrozenClock, story: Story
) -> None:
    async def rows() -> list[Any]:
        async with runtime.engine.connect() as connection:
            return [
                (await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()  # noqa: S608
                for table in ("incidents", "timeline_events", "escalations", "deliveries")
            ]

    counts = await rows()
    await downgrade(runtime.engine, "0004")
    await migrate(runtime.engine)
    assert await rows() == counts
    if runtime.engine.dialect.name == "sqlite":
        async with runtime.engine.connect() as connection:
            assert (await connection.execute(text("PRAGMA foreign_key_check"))).all() == []
    # And the purge works on the upgraded schema.
    clock.current = story.closed_at + timedelta(days=400)
    report = await Retention(runtime.sessions, POLICY).apply(clock.now(), "test")
    assert report.anonymised == (story.closed, story.drill)


async def test_wrong_enrollment_codes_no_longer_counted_are_forgotten(
    runtime: Runtime, clock: FrozenClock
) -> None:
    # Telegram accounts that once sent a wrong code: kept only while a count or lockout needs them.
    window, lockout = timedelta(minutes=15), timedelta(hours=1)
    async with runtime.sessions() as session, session.begin():
        attempts = EnrollmentAttempts(session)
        for minute in range(3):  # locked out until an hour after the third
            at = clock.now() - timedelta(minutes=20 - minute)
            await attempts.record_wrong(222, at, window=window, limit=3, lockout=lockout)
        await attempts.record_wrong(333, clock.now(), window=window, limit=5, lockout=lockout)
        # Recorded as at its time: no later wrong code came to clear it away.
        old = clock.now() - timedelta(days=2)
        await attempts.record_wrong(111, old, window=window, limit=5, lockout=lockout)

    purge = Retention(runtime.sessions, POLICY, attempts_window=window)
    plan = await purge.plan(clock.now())
    assert plan.attempts == 1
    report = await purge.apply(clock.now(), "test")
    assert report.attempts == 1
    assert report.changed
    async with runtime.sessions() as session:
        left = (await session.scalars(select(EnrollmentAttempt.telegram_user_id))).all()
        entry = await session.scalar(select(AuditEntry).order_by(AuditEntry.id.desc()))
    assert sorted(set(left)) == [222, 333]  # the lockout and the recent code stay
    assert entry is not None
    assert entry.data["enrollment_attempts"] == 1
