"""Reminder lateness: the real bot process, a local Bot API server, and a 911 reminder chain.

Lateness is the time from a reminder's due time (the call-911 step's start plus n periods, as
stored in the database) to the moment its sendMessage reached the Bot API server.

    uv run python -m bench.reminders --count 55 --every 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from storage.database import create_engine, session_factory
from storage.models import Escalation, EscalationKind
from tests.support.botapi import ThreadedBotApiServer
from tests.support.process import BotProcess, enroll, environment, run, write_config

TOKEN = "123456789:AAbench-token_for_sexto"
PRO = 5151


def buttons(message: dict[str, Any]) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


async def measure(count: int, every: float, folder: Path) -> dict[str, Any]:
    """Run a chain of ``count`` reminders every ``every`` seconds; return the lateness figures."""
    database = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    config = write_config(
        folder,
        escalation={
            "call_911_reminder_every": f"{every:g}s",
            "call_911_reminders_before_escalation": count + 10,
            "stalled_after": "1h",
        },
    )
    with ThreadedBotApiServer(token=TOKEN, bot_username="sexto_bench_bot") as server:
        env = environment(config, database, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=server.url)
        if run(env, "init").returncode != 0:
            raise RuntimeError("sexto init failed")
        code = enroll(env, "professional")
        bot = BotProcess(env, folder / "bot.log")
        bot.start()
        try:
            user = server.add_user(PRO, "Bench", language_code="en")
            server.send_text(user, f"/start {code}")
            await server.wait_for_message(PRO, timeout=30)
            server.send_text(user, "/incident")
            step = await server.wait_for_message(PRO, lambda m: bool(buttons(m)))
            path = ("Real situation", "No immediate danger", "Understood", "Done", "1")
            for label in (*path, "Grid filled in"):
                server.press_button(user, step, text=label)
                if label != "Grid filled in":
                    step = await server.wait_for_message(PRO, lambda m: bool(buttons(m)))
            await server.wait_for_message(
                PRO,
                lambda m: f"Reminder {count}" in m["text"],
                timeout=count * every + 30,
            )
        finally:
            bot.stop()
        arrivals: dict[int, Any] = {}
        for call in server.calls_of("sendMessage"):
            found = re.search(r"Reminder (\d+)", str(call.params.get("text", "")))
            if found and call.ok:
                arrivals.setdefault(int(found.group(1)), call.time)
        duplicates = sum(
            1
            for call in server.calls_of("sendMessage")
            if call.ok and re.search(r"Reminder (\d+)", str(call.params.get("text", "")))
        ) - len(arrivals)
    engine = create_engine(database)
    async with session_factory(engine)() as session:
        chain = (
            await session.scalars(
                select(Escalation).where(Escalation.kind == EscalationKind.CALL_911)
            )
        ).one()
        started = chain.started_at
    await engine.dispose()
    late = [
        (arrivals[n] - (started + timedelta(seconds=every * n))).total_seconds() * 1000
        for n in sorted(arrivals)
        if n <= count
    ]
    return {
        "reminders": len(late),
        "every_s": every,
        "lateness_ms_median": round(statistics.median(late), 1),
        "lateness_ms_p95": round(sorted(late)[int(0.95 * (len(late) - 1))], 1),
        "lateness_ms_max": round(max(late), 1),
        "lateness_ms_min": round(min(late), 1),
        "missing": count - len([n for n in arrivals if n <= count]),
        "duplicates": duplicates,
    }


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=55, help="reminders to wait for (>= 50)")
    parser.add_argument("--every", type=float, default=1.0, help="seconds between reminders")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        result = asyncio.run(measure(args.count, args.every, Path(folder)))
    print(
        f"911 reminders: {result['reminders']} every {args.every:g}s, lateness median "
        f"{result['lateness_ms_median']} ms, p95 {result['lateness_ms_p95']} ms, max "
        f"{result['lateness_ms_max']} ms, missing {result['missing']}, "
        f"duplicates {result['duplicates']}",
        file=sys.stderr,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
