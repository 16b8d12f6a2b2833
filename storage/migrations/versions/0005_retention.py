"""retention: purge and anonymise old incidents

Incidents remember when their conversation was removed and when they were anonymised; timeline
rows remember when their text was removed; an anonymised incident no longer points at the
member who opened it, nor its alerts at the members they went to, so those columns accept NULL.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 12:00:00.000000
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Columns that become nullable: (table, column).
UNLINKED = (("incidents", "opened_by"), ("deliveries", "member_id"))
ADDED = (
    ("incidents", "transcript_purged_at"),
    ("incidents", "anonymised_at"),
    ("timeline_events", "redacted_at"),
)


def upgrade() -> None:
    """Apply this revision."""
    for table, column in ADDED:
        op.add_column(table, sa.Column(column, sa.DateTime(timezone=True), nullable=True))
    for table, column in UNLINKED:
        _set_nullable(table, column, nullable=True)


def downgrade() -> None:
    """Revert this revision.

    Anonymised rows have no member to point back at: while there are any, the columns stay
    nullable (the older code reads them all the same) rather than refuse half-way, since
    SQLite does not undo the schema changes of the revisions already taken down.
    """
    bind = op.get_bind()
    for table, column in UNLINKED:
        orphans = bind.execute(
            sa.text(f"SELECT count(*) FROM {table} WHERE {column} IS NULL")  # noqa: S608 - constants
        ).scalar_one()
        if not orphans:
            _set_nullable(table, column, nullable=False)
    for table, column in reversed(ADDED):
        op.drop_column(table, column)


def _set_nullable(table: str, column: str, nullable: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column(table, column, existing_type=sa.Integer(), nullable=nullable)
        return
    _sqlite_rebuild(table, column, nullable)


def _sqlite_rebuild(table: str, column: str, nullable: bool) -> None:
    """Change a NOT NULL constraint on SQLite, which can only do it by rebuilding the table.

    Alembic's batch mode copies into a new table, drops the old one and renames the copy; with
    foreign keys enforced, dropping a table that other rows point at fails (or, deferred, the
    violations it records are never cleared by a rename). So the rows go to a scratch table,
    the table is dropped and created again under its own name, and the rows come back: putting
    the parent rows back is what clears the deferred violations before the commit checks them.
    The definition is the stored one with only this constraint changed, so the columns keep
    whatever types earlier revisions gave them.
    """
    bind = op.get_bind()
    definition = bind.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :name"),
        {"name": table},
    ).scalar_one()
    pattern = re.compile(
        rf"^(\s*\"?{column}\"?\s[^,\n]*?)(\s+NOT NULL)?(\s*,?\s*)$", re.MULTILINE | re.IGNORECASE
    )
    changed, count = pattern.subn(
        lambda m: m.group(1) + ("" if nullable else " NOT NULL") + m.group(3), definition
    )
    if count != 1:
        raise RuntimeError(f"cannot find the column {table}.{column} in its definition")
    indexes = bind.execute(
        sa.text(
            "SELECT sql FROM sqlite_master WHERE type IN ('index', 'trigger') "
            "AND tbl_name = :name AND sql IS NOT NULL"
        ),
        {"name": table},
    ).scalars()
    recreate = list(indexes)
    scratch = f"_retention_{table}"
    statements = [
        # Outside a transaction the savepoint opens one; inside, it nests. Either way the
        # deferred foreign key checks run when the outermost transaction commits.
        "SAVEPOINT retention_rebuild",
        "PRAGMA defer_foreign_keys = ON",
        f"CREATE TABLE {scratch} AS SELECT * FROM {table}",  # noqa: S608 - constant names
        f"DROP TABLE {table}",
        changed,
        f"INSERT INTO {table} SELECT * FROM {scratch}",  # noqa: S608 - constant names
        f"DROP TABLE {scratch}",
        *recreate,
        "RELEASE retention_rebuild",
    ]
    for statement in statements:
        bind.exec_driver_sql(statement)
