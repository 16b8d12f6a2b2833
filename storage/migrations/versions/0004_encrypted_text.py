"""text encrypted at rest (transcripts and free-text fields)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 12:00:00.000000

The transcript (``timeline_events.data``), the guide's saved state (``conversations.state``),
the messages of reminders and alerts (``deliveries.text``), the cancellation reason and the 911
event number of incidents become Fernet tokens in Text columns. The keys are the program's
(those bound to the engine by ``sexto init``; run by hand, ``SEXTO_ENCRYPTION_KEYS`` or the
local key file, as the program resolves them). Downgrading decrypts them again.
"""

import os
import re
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

from storage.crypto import KeyRing, key_ring_from_environment, key_ring_of

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, primary key, column)
COLUMNS = (
    ("timeline_events", "id", "data"),
    ("conversations", "member_id", "state"),
    ("deliveries", "id", "text"),
    ("incidents", "id", "cancel_reason"),
    ("incidents", "id", "event_number"),
)
JSON_COLUMNS = (("timeline_events", "data"), ("conversations", "state"))
BATCH = 500
# A Fernet token: version byte 0x80 then at least 72 bytes, in url-safe base64.
TOKEN = re.compile(r"gAAAAA[A-Za-z0-9_-]{94,}={0,2}")


def _ring() -> KeyRing:
    bind = op.get_bind()
    bound = key_ring_of(bind.dialect)
    if bound is not None:
        return bound
    url = bind.engine.url.render_as_string(hide_password=False)
    return key_ring_from_environment(os.environ, url)


def _rewrite(table: str, key: str, name: str, change: Callable[[str, str], str | None]) -> None:
    """Apply ``change`` to every non-null value of a column, a batch at a time."""
    bind = op.get_bind()
    raw = sa.table(table, sa.column(key), sa.column(name, sa.Text()))
    last = None
    while True:
        query = (
            sa.select(raw.c[key], raw.c[name])
            .where(raw.c[name].is_not(None))
            .order_by(raw.c[key])
            .limit(BATCH)
        )
        if last is not None:
            query = query.where(raw.c[key] > last)
        rows = bind.execute(query).all()
        for row_key, value in rows:
            changed = change(value, f"{table}.{name} of row {row_key}")
            if changed is not None and changed != value:
                bind.execute(sa.update(raw).where(raw.c[key] == row_key).values({name: changed}))
        if not rows:
            return
        last = rows[-1][0]


def _encrypt(ring: KeyRing) -> Callable[[str, str], str | None]:
    def change(value: str, where: str) -> str | None:
        if ring.opens(value):
            return None  # already encrypted (a migration run again)
        if TOKEN.fullmatch(value):
            raise RuntimeError(f"{where} is encrypted with a key that is not in use")
        return ring.encrypt(value)

    return change


def _decrypt(ring: KeyRing) -> Callable[[str, str], str | None]:
    def change(value: str, where: str) -> str | None:
        if ring.opens(value):
            return ring.decrypt(value)
        if TOKEN.fullmatch(value):
            raise RuntimeError(
                f"cannot downgrade: {where} does not open with the encryption keys in use"
            )
        return None  # already plain text (a downgrade run again)

    return change


def upgrade() -> None:
    """Apply this revision."""
    ring = _ring()
    if op.get_bind().dialect.name == "postgresql":
        for table, name in JSON_COLUMNS:
            op.alter_column(
                table,
                name,
                type_=sa.Text(),
                existing_type=sa.JSON(),
                existing_nullable=False,
                postgresql_using=f"{name}::text",
            )
        op.alter_column(
            "incidents",
            "event_number",
            type_=sa.Text(),
            existing_type=sa.String(length=64),
            existing_nullable=True,
        )
    else:
        # SQLite does not enforce VARCHAR lengths, so incidents (which other tables reference)
        # is not rebuilt for event_number; the JSON columns are declared TEXT.
        for table, name in JSON_COLUMNS:
            with op.batch_alter_table(table) as batch:
                batch.alter_column(
                    name, type_=sa.Text(), existing_type=sa.JSON(), existing_nullable=False
                )
    for table, key, name in COLUMNS:
        _rewrite(table, key, name, _encrypt(ring))


def downgrade() -> None:
    """Revert this revision."""
    ring = _ring()
    for table, key, name in COLUMNS:
        _rewrite(table, key, name, _decrypt(ring))
    if op.get_bind().dialect.name == "postgresql":
        for table, name in JSON_COLUMNS:
            op.alter_column(
                table,
                name,
                type_=sa.JSON(),
                existing_type=sa.Text(),
                existing_nullable=False,
                postgresql_using=f"{name}::json",
            )
        op.alter_column(
            "incidents",
            "event_number",
            type_=sa.String(length=64),
            existing_type=sa.Text(),
            existing_nullable=True,
        )
    else:
        for table, name in JSON_COLUMNS:
            with op.batch_alter_table(table) as batch:
                batch.alter_column(
                    name, type_=sa.JSON(), existing_type=sa.Text(), existing_nullable=False
                )
