"""Kill -9 the real bot at random points of incidents, restart it, and check nothing was lost.

Each trial sends a few professionals through whole incidents (buttons and typed text, 911
reminders every second, officers acknowledging alerts) and kills the bot after a random number
of their updates, a random few milliseconds into handling it, then restarts it after a random
pause. Afterwards: every reminder, alert and escalation notice reached Telegram exactly once
(except the documented crash window: a message accepted less than a second before the kill),
reminders are numbered without gaps, every timeline is complete and in order, every incident
was finished, and no conversation ever went back to an earlier step.
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from pathlib import Path

import pytest

from storage.models import EscalationKind, IncidentStatus
from tests.chaos.conftest import trials_on
from tests.support.audit import (
    audit_deliveries,
    audit_reminders,
    early_alert_stages,
    read_ledger,
    timeline_problems,
)
from tests.support.chaos import (
    TOKEN,
    Deployment,
    Walk,
    crash_window_duplicates,
    desks,
    professionals,
    walk_incident,
)
from tests.support.fleet import crew
from tests.support.loadserver import StampedBotApiServer

# Up to 30 s a trial (a restart included) on a busy machine: 50 trials outlast the suite's 300 s.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(max(300, 60 + 30 * trials_on("sqlite")))]

PER_TRIAL = 3
EVERY = timedelta(seconds=1)
POLICY = {
    "call_911_reminder_every": "1s",
    "call_911_reminders_before_escalation": 2,
    "officer_ack_timeout": "2s",
    "officer_alert_repeats": 1,
    "stalled_after": "1h",
}


async def _trial(
    deployment: Deployment, users: list[int], rng: random.Random, trial: int
) -> list[Walk]:
    """Walk incidents for ``users``; kill -9 the bot on the way, restart it."""
    server = deployment.server
    first = len(server.update_at)
    walks = [
        asyncio.create_task(
            walk_incident(deployment.chats[user], random.Random(rng.randrange(1 << 30)))
        )
        for user in users
    ]
    everyone = asyncio.gather(*walks)
    kill_after = rng.randrange(1, PER_TRIAL * 12)
    reached = asyncio.ensure_future(
        server.wait_until(
            lambda: len(server.update_at) - first >= kill_after, 120, f"{kill_after} updates"
        )
    )
    await asyncio.wait([reached, everyone], return_when=asyncio.FIRST_COMPLETED)
    reached.cancel()
    await asyncio.sleep(rng.uniform(0, 0.05))
    deployment.kill()
    await asyncio.sleep(rng.uniform(0, 2.0))
    await deployment.launch()
    return list(await everyone)


async def test_kill_9_at_random_points_loses_and_repeats_nothing(
    database_url: str, tmp_path: Path, chaos_rng: random.Random
) -> None:
    trials = trials_on("sqlite" if database_url.startswith("sqlite") else "postgres")
    seats = crew(PER_TRIAL * trials)
    pros = professionals(seats)
    walks: list[Walk] = []
    async with StampedBotApiServer(token=TOKEN, bot_username="sexto_chaos_bot") as server:
        deployment = await Deployment.start(
            server,
            tmp_path,
            database_url,
            seats,
            escalation=POLICY,
            telegram={"read_timeout": "2s", "connect_timeout": "2s"},
        )
        stop = asyncio.Event()
        officers = desks(deployment, seats)
        serving = [asyncio.create_task(desk.serve(stop)) for desk in officers]
        try:
            for trial in range(trials):
                group = pros[trial * PER_TRIAL : (trial + 1) * PER_TRIAL]
                walks += await _trial(deployment, group, chaos_rng, trial)
            await asyncio.sleep(1.5)  # the last reminders and alerts
        finally:
            stop.set()
            await asyncio.gather(*serving)
            await deployment.stop()
        calls = server.calls

    ledger = await read_ledger(database_url)
    back = [problem for w in walks for problem in w.went_back()]
    assert [w.error for w in walks if not w.finished] == []
    assert back == []

    assert len(ledger.incidents) == len(pros)
    assert {i.status for i in ledger.incidents} == {IncidentStatus.AWAITING_DECISION}
    assert timeline_problems(ledger) == []

    deliveries = audit_deliveries(ledger, calls)
    assert deliveries.missing == []
    assert deliveries.failed == []
    allowed, repeated = crash_window_duplicates(
        ledger, calls, deployment.kills, deployment.restarts[1:]
    )
    assert repeated == []
    if allowed:
        print(f"resent after a crash (documented window): {allowed}")

    outages = [
        (kill, start + timedelta(seconds=3))
        for kill, start in zip(deployment.kills, deployment.restarts[1:], strict=True)
    ]
    reminders = audit_reminders(ledger, calls, EVERY, outages=outages)
    assert reminders.gaps == []
    assert reminders.missed == []
    early = reminders.early + early_alert_stages(ledger, timedelta(seconds=2))
    assert early == []
    assert len(reminders.duplicated) <= len(allowed)

    for incident in ledger.incidents:
        alerts = {
            e.reason
            for e in ledger.escalations
            if e.incident_id == incident.id and e.kind is EscalationKind.OFFICER_ALERT
        }
        assert alerts == {"opened", "police_called"}, incident.code
