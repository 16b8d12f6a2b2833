"""Encryption at rest: what the database holds without the key, wrong keys, rotation, migration."""

from __future__ import annotations

import asyncio
import json
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.runtime import Runtime, key_ring
from bot.settings import Config, ConfigError
from dialogues.events import CancelRequested
from storage.crypto import (
    DecryptionError,
    KeyRing,
    KeyRingError,
    generate_key,
    key_file_for,
    parse_keys,
    resolve_key_ring,
)
from storage.database import create_engine, downgrade, migrate, session_factory
from storage.models import (
    Base,
    Conversation,
    Delivery,
    EscalationKind,
    EventKind,
    Incident,
    Member,
    Role,
    TimelineEvent,
)
from storage.repositories import Conversations, Escalations, Incidents, Timeline
from storage.rotation import Progress, encrypted_columns, rotate_keys
from tests.conftest import TEST_ENCRYPTION_KEY, add_member, settings_for
from tests.support.clock import FrozenClock
from tests.support.messenger import RecordingMessenger
from tests.support.transcript import Transcript

# What a professional types: it must never be readable in the database itself.
TYPED = "the yellow locker 4471 behind the Bellerive gym"
EVENT_NUMBER = "EV-58213-QX"
REASON = "False alarm: locker 4471 was empty"


async def raw_rows(engine: AsyncEngine) -> dict[str, list[str]]:
    """Every row of every table, read with plain SQL (no decrypting type), as text."""
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda c: inspect(c).get_table_names())
        found = {}
        for name in names:
            rows = await connection.execute(sa.text(f'SELECT * FROM "{name}"'))  # noqa: S608
            found[name] = [" | ".join(str(value) for value in row) for row in rows]
    return found


async def guided_incident(runtime: Runtime, clock: FrozenClock) -> int:
    """A real incident through the guide: typed text, a 911 event number, a cancellation."""
    pro = await add_member(runtime, Role.PROFESSIONAL, ("nord",), 1001, "Sam", "en")
    chat = Transcript(runtime.guide, pro.id)
    await chat.start()
    await chat.press("Real situation")
    await chat.press("No immediate danger")
    await chat.say(f"The image is on a phone in {TYPED}, can I look at it?")
    await chat.press("Understood")
    await chat.press("Done")
    await chat.say("2")
    await chat.press("Grid filled in")
    clock.advance(minutes=3)
    await chat.press("I called 911")
    await chat.say(EVENT_NUMBER)
    await chat.send(CancelRequested())
    await chat.say(REASON)
    assert "cancelled at" in chat.text()
    return pro.id


async def test_the_database_alone_reveals_nothing_typed(
    runtime: Runtime, clock: FrozenClock, database_url: str
) -> None:
    await guided_incident(runtime, clock)

    # Through the program (with the key) everything reads back as typed.
    async with runtime.sessions() as session:
        incident = (await session.scalars(select(Incident))).one()
        assert incident.event_number == EVENT_NUMBER
        assert incident.cancel_reason == REASON
        events = await Timeline(session).for_incident(incident.id)
    said = [e.data.get("text", "") for e in events if e.kind == EventKind.MESSAGE_IN]
    assert any(TYPED in text for text in said)

    # With plain SQL and no key: tokens, and not a trace of the text.
    keyless = create_engine(database_url)
    try:
        rows = await raw_rows(keyless)
    finally:
        await keyless.dispose()
    everything = "\n".join(line for lines in rows.values() for line in lines)
    assert len(rows["timeline_events"]) > 10
    for secret in ("locker 4471", "Bellerive", EVENT_NUMBER, "False alarm", TYPED):
        assert secret not in everything
    assert all(v.startswith("gAAAAA") for v in (await stored(runtime.engine))["timeline"])
    if database_url.startswith("sqlite"):
        database = Path(database_url.split("///", 1)[1])
        raw = b"".join(
            path.read_bytes()
            for path in (database, database.with_name(database.name + "-wal"))
            if path.exists()
        )
        assert len(raw) > 10_000
        for secret in ("locker 4471", "Bellerive", EVENT_NUMBER, "False alarm"):
            assert secret.encode() not in raw


async def test_reading_without_the_key_or_with_a_wrong_one_is_refused(
    runtime: Runtime, clock: FrozenClock, database_url: str
) -> None:
    await guided_incident(runtime, clock)
    keyless = create_engine(database_url)
    stranger = create_engine(database_url, KeyRing([generate_key()]))
    try:
        async with session_factory(keyless)() as session:
            with pytest.raises(DecryptionError, match="has no encryption keys"):
                await session.scalars(select(TimelineEvent))
        async with session_factory(stranger)() as session:
            with pytest.raises(DecryptionError) as refused:
                (await session.scalars(select(Incident))).all()
        assert "none of the 1 encryption key(s) in use opens it" in str(refused.value)
        assert "SEXTO_ENCRYPTION_KEYS" in str(refused.value)
        # Columns that are not encrypted stay readable without the key.
        async with session_factory(keyless)() as session:
            codes = (await session.scalars(select(Incident.code))).all()
        assert codes == ["SX-2026-0001"]
    finally:
        await keyless.dispose()
        await stranger.dispose()


async def test_engines_with_different_keys_side_by_side(tmp_path: Path) -> None:
    first, second = KeyRing([generate_key()]), KeyRing([generate_key()])
    engines = [
        create_engine(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}", first),
        create_engine(f"sqlite+aiosqlite:///{tmp_path / 'two.db'}", second),
    ]
    try:
        for engine in engines:  # one at a time: Alembic's operations are process-wide
            await migrate(engine)

        async def write_and_read(engine: AsyncEngine, words: str) -> str:
            async with session_factory(engine)() as session, session.begin():
                member = await add_raw_member(session)
                await Conversations(session).save(member, {"said": words}, NOW)
            async with session_factory(engine)() as session:
                state = await Conversations(session).load(member)
            assert state is not None
            return str(state["said"])

        said = await asyncio.gather(
            write_and_read(engines[0], "premier"), write_and_read(engines[1], "second")
        )
        assert list(said) == ["premier", "second"]
        # The same database through another engine with the other key: refused.
        crossed = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}", second)
        try:
            async with session_factory(crossed)() as session:
                with pytest.raises(DecryptionError):
                    await session.get(Conversation, 1)
        finally:
            await crossed.dispose()
    finally:
        for engine in engines:
            await engine.dispose()


NOW = datetime(2026, 11, 21, 14, 30, tzinfo=UTC)


async def add_raw_member(session: Any) -> int:
    member = Member(display_name="Sam", role=Role.PROFESSIONAL, language="fr", created_at=NOW)
    session.add(member)
    await session.flush()
    return int(member.id)


async def test_encrypted_values_cannot_be_compared_in_sql(runtime: Runtime) -> None:
    with pytest.raises(TypeError, match="encrypted"):
        select(Incident).where(Incident.cancel_reason == "anything")
    with pytest.raises(TypeError, match="encrypted"):
        select(Delivery).where(Delivery.text.contains("911"))
    with pytest.raises(TypeError, match="encrypted"):
        select(TimelineEvent).order_by(TimelineEvent.data.desc())
    async with runtime.sessions() as session:  # NULL tests remain possible
        assert (
            await session.scalars(select(Incident).where(Incident.event_number.is_(None)))
        ).all() == []


async def test_rotation_moves_every_value_to_the_newest_key(
    database_url: str, clock: FrozenClock, config: Config
) -> None:
    old, new = generate_key(), generate_key()
    before = Runtime.create(settings_for(config, database_url, encryption_keys=(old,)), clock)
    before.escalator.messenger = RecordingMessenger()
    await before.prepare_database()
    try:
        member = await guided_incident(before, clock)
        async with before.sessions() as session, session.begin():
            incident = (await session.scalars(select(Incident))).one()
            chain = await Escalations(session).start(
                incident.id, EscalationKind.STALLED, clock.now(), clock.now()
            )
            for n in range(7):
                await Escalations(session).add_delivery(
                    chain, member, 1001, "professional", f"Reminder {n}", clock.now()
                )
    finally:
        await before.close()

    both = KeyRing([new, old])
    engine = create_engine(database_url, both)
    try:
        expected = await snapshot(engine)  # old rows are readable with [new, old]

        # An interrupted rotation (after the first batch of the first column) ...
        interrupted: list[Progress] = []

        def interrupt(progress: Progress) -> None:
            interrupted.append(progress)
            raise Interrupted

        with pytest.raises(Interrupted):
            await rotate_keys(engine, both, Base.metadata, batch_size=3, report=interrupt)
        [first] = interrupted
        assert first.rotated == first.seen > 0
        # ... is finished by running it again: the batch already done is not redone.
        reports: list[tuple[str, int, int]] = []
        done = await rotate_keys(
            engine,
            both,
            Base.metadata,
            batch_size=3,
            report=lambda p: reports.append((str(p.column), p.seen, p.total)),
        )
        by_column = {str(p.column): p for p in done}
        assert by_column[str(first.column)].current == first.seen
        assert by_column[str(first.column)].rotated == first.total - first.seen
        for progress in done:
            assert progress.rotated + progress.current == progress.total
        deliveries = by_column["deliveries.text"].total
        assert deliveries >= 7
        assert by_column["incidents.event_number"].rotated == 1
        assert by_column["timeline_events.data"].rotated > 10
        assert ("deliveries.text", 3, deliveries) in reports
        assert ("deliveries.text", deliveries, deliveries) in reports
        again = await rotate_keys(engine, both, Base.metadata)
        assert sum(p.rotated for p in again) == 0
    finally:
        await engine.dispose()

    newest = create_engine(database_url, KeyRing([new]))
    try:
        assert await snapshot(newest) == expected  # readable with the new key alone
    finally:
        await newest.dispose()
    only_old = create_engine(database_url, KeyRing([old]))
    try:
        async with session_factory(only_old)() as session:
            with pytest.raises(DecryptionError):
                (await session.scalars(select(TimelineEvent))).all()
    finally:
        await only_old.dispose()


async def snapshot(engine: AsyncEngine) -> dict[str, Any]:
    """Every encrypted value, decrypted, by table and key."""
    async with session_factory(engine)() as session:
        return {
            "timeline": [
                e.data
                for e in await session.scalars(select(TimelineEvent).order_by(TimelineEvent.id))
            ],
            "conversations": [
                c.state
                for c in await session.scalars(
                    select(Conversation).order_by(Conversation.member_id)
                )
            ],
            "deliveries": [
                d.text for d in await session.scalars(select(Delivery).order_by(Delivery.id))
            ],
            "incidents": [
                (i.event_number, i.cancel_reason)
                for i in await session.scalars(select(Incident).order_by(Incident.id))
            ],
        }


class Interrupted(Exception):
    """Stands for a rotation stopped half-way (Ctrl-C, a crash)."""


def test_every_transcript_and_free_text_column_is_encrypted() -> None:
    assert {str(c) for c in encrypted_columns(Base.metadata)} >= {
        "timeline_events.data",
        "conversations.state",
        "deliveries.text",
        "incidents.cancel_reason",
        "incidents.event_number",
    }


# ---- keys: where they come from ---------------------------------------------------------------


def test_a_key_ring_encrypts_with_the_first_key_and_opens_with_any() -> None:
    old, new = generate_key(), generate_key()
    token = KeyRing([old]).encrypt("Rappel 3 : appelez le 911")
    assert "911" not in token
    ring = KeyRing([new, old])
    assert ring.decrypt(token) == "Rappel 3 : appelez le 911"
    assert not ring.is_current(token)
    assert KeyRing([new]).decrypt(ring.rotate(token)) == "Rappel 3 : appelez le 911"
    assert KeyRing([new]).decrypt(ring.encrypt("x")) == "x"
    assert new not in repr(ring)
    assert old not in repr(ring)


def test_tampered_tokens_are_refused() -> None:
    ring = KeyRing([generate_key()])
    token = ring.encrypt("EV-1")
    tampered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    with pytest.raises(DecryptionError):
        ring.decrypt(tampered)
    with pytest.raises(DecryptionError):
        ring.decrypt("EV-1")  # plain text is not a token


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not-a-key", "encryption key 1 of 1 is not a Fernet key"),
        (f"{TEST_ENCRYPTION_KEY},abc", "encryption key 2 of 2 is not a Fernet key"),
    ],
)
def test_bad_keys_are_named_by_position_never_echoed(text: str, message: str) -> None:
    with pytest.raises(KeyRingError, match=message) as refused:
        parse_keys(text)
    assert "abc" not in str(refused.value)
    assert "not-a-key" not in str(refused.value)
    assert "sexto keys generate" in str(refused.value)


def test_keys_are_comma_separated_newest_first() -> None:
    one, two = generate_key(), generate_key()
    assert parse_keys(f" {one} , {two},") == (one, two)
    assert parse_keys("  ") == ()


def test_the_local_key_file_is_made_private_once_and_reused(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'var' / 'sexto.db'}"
    path = key_file_for(url)
    assert path == tmp_path / "var" / "sexto.key"
    ring = resolve_key_ring((), production=False, database_url=url)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = ring.encrypt("drill")
    again = resolve_key_ring((), production=False, database_url=url)
    assert again.decrypt(token) == "drill"  # the same key, not a new one
    assert [p.name for p in path.parent.iterdir()] == ["sexto.key"]  # no draft left behind


def test_the_default_key_file_sits_beside_the_default_database() -> None:
    from bot.settings import DEFAULT_DATABASE_URL

    assert key_file_for(DEFAULT_DATABASE_URL) == Path("var/sexto.key")
    assert key_file_for("postgresql+asyncpg://sexto@db/sexto") == Path("var/sexto.key")


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'sexto.db'}"
    resolve_key_ring((), production=False, database_url=url)
    path = tmp_path / "sexto.key"
    path.chmod(0o644)
    with pytest.raises(KeyRingError) as refused:
        resolve_key_ring((), production=False, database_url=url)
    assert f"{path} can be read by other users (mode 0644)" in str(refused.value)
    assert f"chmod 600 {path}" in str(refused.value)


def test_production_without_a_key_refuses_to_start(config: Config, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'sexto.db'}"
    settings = settings_for(config, url, telegram_token="123:abc", encryption_keys=())
    with pytest.raises(ConfigError) as refused:
        Runtime.create(settings)
    assert "SEXTO_ENCRYPTION_KEYS is not set" in str(refused.value)
    assert "sexto keys generate" in str(refused.value)
    assert not (tmp_path / "sexto.key").exists()  # never a key file in production
    assert key_ring(settings_for(config, url, telegram_token="123:abc").env).size == 1


# ---- migration 0004 ---------------------------------------------------------------------------

PLAIN_TIMELINE = {"text": f"On a phone in {TYPED}", "intent": "ask_view_image"}
PLAIN_STATE = {"step": "never", "notes": f"typed: {TYPED}"}


async def insert_plain_rows(engine: AsyncEngine) -> None:
    """Rows as revision 0003 stored them: plain text and JSON."""
    t = sa.table
    c = sa.column
    aware = sa.DateTime(timezone=True)
    async with engine.begin() as connection:
        await connection.execute(
            sa.insert(t("schools", c("id"), c("name"), c("board"), c("station"), c("active"))),
            {"id": "nord", "name": "Nord", "board": "CSS", "station": "PDQ 1", "active": True},
        )
        await connection.execute(
            sa.insert(
                t(
                    "members",
                    c("id"),
                    c("display_name"),
                    c("role"),
                    c("language"),
                    c("active"),
                    c("created_at", aware),
                )
            ),
            {
                "id": 1,
                "display_name": "Sam",
                "role": "professional",
                "language": "en",
                "active": True,
                "created_at": NOW,
            },
        )
        incident_columns = ("id", "code", "year", "number", "school_id", "opened_by", "status")
        await connection.execute(
            sa.insert(
                t(
                    "incidents",
                    *(c(n) for n in incident_columns),
                    c("drill"),
                    c("event_number"),
                    c("cancel_reason"),
                    c("opened_at", aware),
                    c("updated_at", aware),
                )
            ),
            [
                {
                    "id": n,
                    "code": f"SX-2026-000{n}",
                    "year": 2026,
                    "number": n,
                    "school_id": "nord",
                    "opened_by": 1,
                    "status": "cancelled" if n == 1 else "open",
                    "drill": False,
                    "event_number": EVENT_NUMBER if n == 1 else None,
                    "cancel_reason": REASON if n == 1 else None,
                    "opened_at": NOW,
                    "updated_at": NOW,
                }
                for n in (1, 2)
            ],
        )
        await connection.execute(
            sa.insert(
                t(
                    "timeline_events",
                    c("id"),
                    c("incident_id"),
                    c("member_id"),
                    c("at", aware),
                    c("kind"),
                    c("data", sa.JSON()),
                )
            ),
            [
                {
                    "id": n,
                    "incident_id": 1,
                    "member_id": 1,
                    "at": NOW,
                    "kind": "message_in",
                    "data": PLAIN_TIMELINE if n == 1 else {},
                }
                for n in range(1, 4)
            ],
        )
        await connection.execute(
            sa.insert(
                t("conversations", c("member_id"), c("state", sa.JSON()), c("updated_at", aware))
            ),
            {"member_id": 1, "state": PLAIN_STATE, "updated_at": NOW},
        )
        await connection.execute(
            sa.insert(
                t(
                    "escalations",
                    c("id"),
                    c("incident_id"),
                    c("kind"),
                    c("reason"),
                    c("started_at", aware),
                    c("sent"),
                )
            ),
            {
                "id": 1,
                "incident_id": 2,
                "kind": "call_911",
                "reason": "",
                "started_at": NOW,
                "sent": 1,
            },
        )
        await connection.execute(
            sa.insert(
                t(
                    "deliveries",
                    c("id"),
                    c("escalation_id"),
                    c("seq"),
                    c("member_id"),
                    c("level"),
                    c("status"),
                    c("created_at", aware),
                    c("text"),
                    c("buttons", sa.JSON()),
                    c("protect"),
                )
            ),
            {
                "id": 1,
                "escalation_id": 1,
                "seq": 1,
                "member_id": 1,
                "level": "professional",
                "status": "delivered",
                "created_at": NOW,
                "text": "Reminder 1: call 911 for SX-2026-0002",
                "buttons": [],
                "protect": True,
            },
        )


async def stored(engine: AsyncEngine) -> dict[str, Any]:
    """The stored (raw) values of the encrypted columns, JSON decoded where it is JSON."""
    async with engine.connect() as connection:
        timeline = (
            await connection.execute(sa.text("SELECT data FROM timeline_events ORDER BY id"))
        ).scalars()
        state = (await connection.execute(sa.text("SELECT state FROM conversations"))).scalar()
        text = (await connection.execute(sa.text("SELECT text FROM deliveries"))).scalar()
        incident = (
            await connection.execute(
                sa.text("SELECT event_number, cancel_reason FROM incidents ORDER BY id")
            )
        ).all()
    return {
        "timeline": list(timeline),
        "state": state,
        "text": text,
        "incidents": [tuple(row) for row in incident],
    }


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def test_migration_0004_encrypts_existing_rows_and_downgrade_restores_them(
    database_url: str,
) -> None:
    ring = KeyRing([generate_key()])
    engine = create_engine(database_url, ring)
    try:
        await migrate(engine, "0003")
        await insert_plain_rows(engine)

        await migrate(engine, "0004")
        raw = await stored(engine)
        dump = json.dumps(raw, default=str)
        for secret in ("locker 4471", EVENT_NUMBER, "False alarm", "Reminder 1"):
            assert secret not in dump
        assert [json.loads(ring.decrypt(v)) for v in raw["timeline"]] == [PLAIN_TIMELINE, {}, {}]
        assert json.loads(ring.decrypt(raw["state"])) == PLAIN_STATE
        assert ring.decrypt(raw["text"]) == "Reminder 1: call 911 for SX-2026-0002"
        assert ring.decrypt(raw["incidents"][0][0]) == EVENT_NUMBER
        assert ring.decrypt(raw["incidents"][0][1]) == REASON
        assert raw["incidents"][1] == (None, None)  # NULL stays NULL

        await migrate(engine)  # the program reads them at the newest revision
        assert (await snapshot(engine))["incidents"] == [(EVENT_NUMBER, REASON), (None, None)]
        async with session_factory(engine)() as session:
            assert await Conversations(session).load(1) == PLAIN_STATE
            events = await Timeline(session).for_incident(1)
            assert [e.data for e in events] == [PLAIN_TIMELINE, {}, {}]
            incident = await Incidents(session).get(1)
            assert incident is not None
            assert incident.event_number == EVENT_NUMBER

        await downgrade(engine, "0003")
        plain = await stored(engine)
        assert [_json(v) for v in plain["timeline"]] == [PLAIN_TIMELINE, {}, {}]
        assert _json(plain["state"]) == PLAIN_STATE
        assert plain["text"] == "Reminder 1: call 911 for SX-2026-0002"
        assert plain["incidents"] == [(EVENT_NUMBER, REASON), (None, None)]

        await migrate(engine)  # and up again
        assert (await snapshot(engine))["timeline"] == [PLAIN_TIMELINE, {}, {}]
    finally:
        await engine.dispose()


async def test_migration_0004_refuses_to_downgrade_without_the_key(database_url: str) -> None:
    engine = create_engine(database_url, KeyRing([generate_key()]))
    try:
        await migrate(engine, "0003")
        await insert_plain_rows(engine)
        await migrate(engine, "0004")
    finally:
        await engine.dispose()
    stranger = create_engine(database_url, KeyRing([generate_key()]))
    try:
        with pytest.raises(RuntimeError, match=r"cannot downgrade: .* does not open"):
            await downgrade(stranger, "0003")
    finally:
        await stranger.dispose()
