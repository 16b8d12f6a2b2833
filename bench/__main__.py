"""``python -m bench``: the assistant under load, against the echo-bot floor, on both databases.

For each N (default 10, 50, 200) it runs the echo bot of :mod:`bench.echo`, the same echo bot
recording every update in PostgreSQL before it answers (``echo-postgres``: the floor of any
bot that does), and the real ``sexto run`` on SQLite and on PostgreSQL, each with N simulated
professionals walking whole incidents concurrently (see :mod:`bench.load`), then measures NLU
parse latency per engine and the 911-reminder lateness of :mod:`bench.reminders`. It prints a
table, then one JSON object as its last line.

Load model: each professional pauses ``--think LOW:HIGH`` seconds (uniformly) between actions,
like a person reading a step and acting on it. A whole incident is 13 actions on average.
Telegram lets a bot send about 30 messages a second; the assistant keeps to that with
python-telegram-bot's AIORateLimiter, the echo bot does not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import reminders
from bench.load import ECHOES, TARGETS, Result, Scenario, Target, run_scenario
from bench.nlu import parse_latency

TARGET_RATIO_N50 = 1.5
TARGET_P99_N200_MS = 250.0
TARGET_EMBEDDED_PARSE_MS = 5.0  # the NLU issue's target for the embedded engine's median


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="10,50,200", help="values of N (default 10,50,200)")
    parser.add_argument(
        "--targets",
        default=",".join(TARGETS),
        help=f"which bots to run: {', '.join(TARGETS)} (default all)",
    )
    parser.add_argument("--think", default="3:9", help="seconds between actions, LOW:HIGH")
    parser.add_argument(
        "--reminder-every", type=float, default=3.0, help="911 reminder period in load runs (s)"
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--concurrent-updates",
        type=int,
        default=32,
        help="the bot's telegram.concurrent_updates (1: one update at a time)",
    )
    parser.add_argument(
        "--pace",
        type=int,
        default=0,
        help="the bot's telegram.max_messages_per_second (default 0: no pacing, like the echo "
        "bot; Telegram's own limit is about 30)",
    )
    parser.add_argument(
        "--reminders",
        type=int,
        default=55,
        help="reminders in the dedicated lateness run (bench.reminders, 1 s apart); 0 skips it",
    )
    parser.add_argument("--no-nlu", action="store_true", help="skip the NLU parse latency")
    parser.add_argument(
        "--bot-source",
        type=Path,
        help="run the bot of another checkout (python -m bot from it), e.g. a patched copy",
    )
    return parser.parse_args()


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def _row(result: Result, echo: Result | None) -> str:
    """One line of the table."""
    if result.skipped:
        return f"{result.users:>4} {result.target:<13} skipped: {result.skipped}"
    ratio = "-"
    if echo is not None and echo.first_p50 and result.target != "echo":
        ratio = f"{result.first_p50 / echo.first_p50:.1f}x"
    done = f"{result.finished}/{result.users}"
    reminders_cell = (
        f"{_ms(result.reminder_late_median)}/{_ms(result.reminder_late_max)}"
        f" {result.reminders_missed}/{result.reminders_duplicated}"
    )
    alerts_cell = (
        f"{_ms(result.alert_latency_median)}/{_ms(result.alert_latency_max)}"
        f" {result.alerts_missed}/{result.alerts_duplicated}"
    )
    if result.target in ECHOES:
        reminders_cell = alerts_cell = "-"
    return (
        f"{result.users:>4} {result.target:<13} {done:>7} {result.updates_per_s:>6.1f} "
        f"{_ms(result.first_p50):>7} {_ms(result.first_p95):>7} {_ms(result.first_p99):>7} "
        f"{ratio:>6} {result.peak_rss_mb:>6.0f} {_ms(result.cpu_ms_per_update):>7} "
        f"{reminders_cell:>20} {alerts_cell:>20}"
    )


HEADER = (
    f"{'N':>4} {'bot':<13} {'done':>7} {'upd/s':>6} {'p50':>7} {'p95':>7} {'p99':>7} "
    f"{'xecho':>6} {'RSS':>6} {'CPU/upd':>7} {'911 late med/max m/d':>20} "
    f"{'alert lat med/max m/d':>20}"
)


def _targets(results: list[Result]) -> dict[str, Any]:
    """The issue's targets, met or missed, and by how much."""
    found: dict[str, Any] = {}
    by_key = {(r.users, r.target): r for r in results if not r.skipped}
    echo50 = by_key.get((50, "echo"))
    for target in ("sqlite", "postgres"):
        ours = by_key.get((50, target))
        if echo50 and ours and echo50.first_p50:
            ratio = ours.first_p50 / echo50.first_p50
            found[f"p50_ratio_to_echo_n50_{target}"] = {
                "value": round(ratio, 2),
                "target": TARGET_RATIO_N50,
                "met": ratio <= TARGET_RATIO_N50,
            }
        big = by_key.get((200, target))
        if big:
            found[f"p99_n200_{target}_ms"] = {
                "value": big.first_p99,
                "target": TARGET_P99_N200_MS,
                "met": big.first_p99 < TARGET_P99_N200_MS and big.finished == big.users,
            }
    ours_all = [r for r in results if r.target not in ECHOES and not r.skipped]
    wrong = sum(
        r.reminders_missed
        + r.reminders_duplicated
        + r.alerts_missed
        + r.alerts_duplicated
        + r.deliveries_missing
        + r.deliveries_duplicated
        for r in ours_all
    )
    found["reminders_and_alerts_exactly_once"] = {"value": wrong, "target": 0, "met": wrong == 0}
    return found


def _floors(results: list[Result]) -> list[dict[str, Any]]:
    """Per N: the durable floor against the echo bot, and the assistant on PostgreSQL against
    the durable floor (p50 ratios; where both runs of a pair were made)."""
    by_key = {(r.users, r.target): r for r in results if not r.skipped and r.first_p50}
    found = []
    for n in sorted({r.users for r in results}):
        echo, floor = by_key.get((n, "echo")), by_key.get((n, "echo-postgres"))
        ours = by_key.get((n, "postgres"))
        item: dict[str, Any] = {"users": n}
        if echo and floor:
            item["echo_postgres_to_echo"] = round(floor.first_p50 / echo.first_p50, 2)
        if floor and ours:
            item["postgres_to_echo_postgres"] = round(ours.first_p50 / floor.first_p50, 2)
        if len(item) > 1:
            found.append(item)
    return found


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    low, _, high = args.think.partition(":")
    think = (float(low), float(high or low))
    users = [int(n) for n in _split(args.users)]
    targets: list[Target] = [t for t in TARGETS if t in _split(args.targets)]
    unknown = set(_split(args.targets)) - set(targets)
    if unknown:
        raise SystemExit(f"unknown target(s): {', '.join(sorted(unknown))}")
    results: list[Result] = []
    loads: list[dict[str, Any]] = []
    print(HEADER, flush=True)
    for n in users:
        echo: Result | None = None
        for target in targets:
            scenario = Scenario(
                target,
                n,
                think=think,
                reminder_every=args.reminder_every,
                seed=args.seed,
                concurrent_updates=args.concurrent_updates,
                max_messages_per_second=args.pace,
                bot_source=args.bot_source if target not in ECHOES else None,
            )
            before = os.getloadavg()[0]
            with tempfile.TemporaryDirectory(prefix="sexto-bench-") as folder:
                result = await run_scenario(scenario, Path(folder))
            loads.append({"users": n, "target": target, "loadavg_before": round(before, 2)})
            results.append(result)
            if target == "echo":
                echo = result
            print(_row(result, echo), flush=True)
    summary: dict[str, Any] = {
        "config": {
            "users": users,
            "targets": targets,
            "think_s": list(think),
            "reminder_every_s": args.reminder_every,
            "seed": args.seed,
            "cpus": os.cpu_count(),
            "bot_source": str(args.bot_source) if args.bot_source else None,
        },
        "runs": [r.to_json() for r in results],
        "loadavg": loads,
    }
    if not args.no_nlu:
        nlu = [await parse_latency("embedded"), await parse_latency("rasa")]
        summary["nlu"] = nlu
        for item in nlu:
            if "skipped" in item:
                print(f"NLU {item['engine']}: skipped ({item['skipped']})")
            else:
                print(
                    f"NLU {item['engine']}: parse median {item['parse_ms_median']} ms, "
                    f"p95 {item['parse_ms_p95']} ms over {item['examples']} examples "
                    f"(accuracy {item['accuracy']}, fallbacks {item['fallbacks']})"
                )
    if args.reminders:
        with tempfile.TemporaryDirectory(prefix="sexto-bench-") as folder:
            chain = await reminders.measure(args.reminders, 1.0, Path(folder))
        summary["reminder_chain"] = chain
        print(
            f"911 reminder chain ({chain['reminders']} every 1 s, one incident): lateness "
            f"median {chain['lateness_ms_median']} ms, p95 {chain['lateness_ms_p95']} ms, max "
            f"{chain['lateness_ms_max']} ms, missing {chain['missing']}, "
            f"duplicates {chain['duplicates']}"
        )
    summary["floors"] = _floors(results)
    for item in summary["floors"]:
        parts = []
        if "echo_postgres_to_echo" in item:
            parts.append(f"echo-postgres {item['echo_postgres_to_echo']}x the echo bot")
        if "postgres_to_echo_postgres" in item:
            parts.append(f"postgres {item['postgres_to_echo_postgres']}x echo-postgres")
        print(f"p50 at N = {item['users']}: " + ", ".join(parts))
    summary["targets"] = _targets(results)
    embedded = next((n for n in summary.get("nlu", []) if n["engine"] == "embedded"), None)
    if embedded and "skipped" not in embedded:
        median = embedded["parse_ms_median"]
        summary["targets"]["nlu_embedded_parse_median_ms"] = {
            "value": median,
            "target": TARGET_EMBEDDED_PARSE_MS,
            "met": median < TARGET_EMBEDDED_PARSE_MS,
        }
    for name, verdict in summary["targets"].items():
        state = "met" if verdict["met"] else "MISSED"
        print(f"target {name}: {verdict['value']} (target {verdict['target']}) {state}")
    return summary


def main() -> None:
    """Command line."""
    os.environ.setdefault("PTB_TIMEDELTA", "1")
    args = _arguments()
    started = time.monotonic()
    summary = asyncio.run(_main(args))
    summary["seconds"] = round(time.monotonic() - started, 1)
    sys.stdout.flush()
    print(json.dumps(summary, ensure_ascii=False))


if __name__ == "__main__":
    main()
