"""The benchmark's durable floor: the echo bot recording every update in PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from bench.echo import TABLES
from bench.load import Result, Scenario, _asyncpg_dsn, _audit_echo_log, run_scenario
from tests.support.databases import postgres_database
from tests.support.professionals import ECHO_PLAN

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


async def test_the_echo_bot_records_each_update_and_its_reply_before_answering(
    tmp_path: Path,
) -> None:
    result = await run_scenario(
        Scenario("echo-postgres", 2, think=(0.05, 0.1), run_timeout=120), tmp_path
    )

    assert result.skipped is None
    assert result.finished == 2, result.stuck
    # Every action was answered, and the log audit found each one and its reply.
    assert result.actions == 2 * len(ECHO_PLAN)
    assert result.problems == []
    assert result.bot_errors == 0


async def test_the_log_audit_says_when_the_log_misses_an_update() -> None:
    async with postgres_database() as url:
        connection = await asyncpg.connect(_asyncpg_dsn(url))
        try:
            for table in TABLES:
                await connection.execute(table)
            await connection.execute("INSERT INTO echo_state VALUES (7, 2)")
            await connection.execute(
                "INSERT INTO echo_log (chat_id, text) VALUES (7, 'a'), (7, 'a'), (7, 'b')"
            )
        finally:
            await connection.close()
        result = Result("echo-postgres", 1, actions=3)

        await _audit_echo_log(result, url)

    assert result.problems == ["echo log: 2 updates and 3 rows for 3 answered actions"]
