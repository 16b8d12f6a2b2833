"""What APScheduler's job store holds, read the way the scheduler's own threads read it."""

from __future__ import annotations

import sqlalchemy

from bot.scheduler import jobs_url


def stored_job_ids(database_url: str) -> list[str]:
    """The ids of the jobs stored for the program running on ``database_url`` (blocking)."""
    engine = sqlalchemy.create_engine(jobs_url(database_url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(sqlalchemy.text("SELECT id FROM apscheduler_jobs"))
            return [str(row[0]) for row in rows]
    finally:
        engine.dispose()
