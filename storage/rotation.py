"""Key rotation: every encrypted value re-encrypted with the newest key, one batch at a time.

Each batch is its own transaction, and a value the newest key already opens is left alone, so
an interrupted rotation loses nothing and running it again finishes the job. A value is
rewritten only if it did not change meanwhile (a running bot may be saving a conversation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import MetaData, TableClause, column, func, select, table, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import Text

from storage.crypto import DecryptionError, EncryptedJSON, EncryptedText, KeyRing


@dataclass(frozen=True)
class EncryptedColumn:
    """An encrypted column and the single-column primary key its rows are walked by."""

    table: str
    key: str
    name: str

    def __str__(self) -> str:
        return f"{self.table}.{self.name}"


def encrypted_columns(metadata: MetaData) -> list[EncryptedColumn]:
    """Every encrypted column of the schema, in a stable order."""
    found = []
    for model in metadata.sorted_tables:
        encrypted = [c for c in model.columns if isinstance(c.type, EncryptedText | EncryptedJSON)]
        if not encrypted:
            continue
        keys = list(model.primary_key.columns)
        if len(keys) != 1:
            raise ValueError(f"{model.name}: key rotation needs a single-column primary key")
        found += [EncryptedColumn(model.name, keys[0].name, c.name) for c in encrypted]
    return found


@dataclass
class Progress:
    """How far the rotation of one column has gone."""

    column: EncryptedColumn
    total: int
    seen: int = 0
    rotated: int = 0
    current: int = 0
    changed: int = 0


class RotationError(Exception):
    """A stored value could not be re-encrypted (the message names the row)."""


def _raw(target: EncryptedColumn) -> TableClause:
    """The column as stored (tokens), without the decrypting type."""
    return table(target.table, column(target.key), column(target.name, Text()))


async def rotate_column(
    engine: AsyncEngine,
    ring: KeyRing,
    target: EncryptedColumn,
    batch_size: int = 500,
    report: Callable[[Progress], None] | None = None,
) -> Progress:
    """Re-encrypt one column's values with the newest key of ``ring``."""
    raw = _raw(target)
    key, value = raw.c[target.key], raw.c[target.name]
    async with engine.connect() as connection:
        total = await connection.scalar(select(func.count()).where(value.is_not(None)))
    progress = Progress(target, int(total or 0))
    last = None
    while True:
        async with engine.begin() as connection:
            query = select(key, value).where(value.is_not(None)).order_by(key).limit(batch_size)
            if last is not None:
                query = query.where(key > last)
            rows = (await connection.execute(query)).all()
            for row_key, token in rows:
                progress.seen += 1
                if ring.is_current(token):
                    progress.current += 1
                    continue
                try:
                    fresh = ring.rotate(token)
                except DecryptionError as error:
                    raise RotationError(f"{target} of row {row_key}: {error}") from None
                written = await connection.execute(
                    update(raw).where(key == row_key, value == token).values({target.name: fresh})
                )
                if written.rowcount == 1:
                    progress.rotated += 1
                else:
                    progress.changed += 1
        if not rows:
            break
        last = rows[-1][0]
        if report is not None:
            report(progress)
    return progress


async def rotate_keys(
    engine: AsyncEngine,
    ring: KeyRing,
    metadata: MetaData,
    batch_size: int = 500,
    report: Callable[[Progress], None] | None = None,
) -> list[Progress]:
    """Re-encrypt every encrypted column of ``metadata`` with the newest key of ``ring``."""
    if batch_size < 1:
        raise ValueError("the batch size must be at least 1")
    return [
        await rotate_column(engine, ring, target, batch_size, report)
        for target in encrypted_columns(metadata)
    ]
