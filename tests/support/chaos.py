"""The real ``sexto run`` with enrolled people, for chaos tests: kill it, break its network.

:class:`Deployment` starts a :class:`~tests.support.loadserver.StampedBotApiServer` on the
running event loop, prepares the database with ``sexto init``, starts the bot process, and
enrolls a crew (officers, a coordinator, professionals). :func:`walk_incident` is a
professional who does not follow a script but reacts to the step the bot shows, so that it
copes with replies lost in a crash: when nothing comes, it asks for ``/incident`` again, and
it notes every step it was shown, so a test can check that a conversation never goes back.

``SEXTO_CHAOS_BOT_SOURCE=/path/to/checkout`` runs that checkout's bot instead (``python -m bot``
with it first on ``PYTHONPATH``): a patched copy can be put through the same tests.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from storage.models import Role
from tests.support.audit import Ledger
from tests.support.botapi import CallRecord
from tests.support.fleet import Seat, create_codes, enroll
from tests.support.loadserver import StampedBotApiServer
from tests.support.process import BotProcess, environment, run, write_config
from tests.support.professionals import UNSOLICITED, Chat, OfficerDesk, Stuck, buttons, says

TOKEN = "123456789:AAchaos-token_for_sexto_bot"
JsonDict = dict[str, Any]

# The steps of an incident, in order, with the button that moves each one on.
STEPS: tuple[tuple[str, str], ...] = (
    ("mode", "Real situation"),
    ("danger", "No immediate danger"),
    ("never", "Understood"),
    ("victim", "Done"),
    ("devices", "None to seize"),
    ("grid", "Grid filled in"),
    ("call911", "I called 911"),
    ("event_number", "Skip"),
    ("waiting", "Kit handed to the patrol officer"),
    ("after", "Noted"),
)
ORDER = {name: index for index, (name, _) in enumerate(STEPS)}
ORDER["summary"] = len(STEPS)
# What the bot may show once an incident is over: the offer of a new one, or its first question.
AFTER_THE_END = ("idle", "mode")


class SourceBotProcess(BotProcess):
    """``python -m bot`` from another checkout, e.g. a copy with a proposed patch applied."""

    def __init__(self, env: dict[str, str], log: Path, source: Path) -> None:
        """Run the bot of ``source`` with this environment."""
        super().__init__({**env, "PYTHONPATH": str(source)}, log)
        self.source = source

    def command(self, *args: str) -> list[str]:
        """The command line of ``python -m bot ARGS``."""
        return [sys.executable, "-m", "bot", *args]

    def init(self) -> subprocess.CompletedProcess[str]:
        """``sexto init`` of that checkout."""
        return subprocess.run(
            self.command("init"),
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.source,
            timeout=120,
            check=False,
        )

    def start(self) -> None:
        """Start the bot."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command("run"),
                env=self.env,
                cwd=self.source,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )


def bot_process(env: dict[str, str], log: Path, source: Path | None = None) -> BotProcess:
    """The bot to run: this checkout's ``sexto run``, or another checkout's."""
    chosen = source or (
        Path(os.environ["SEXTO_CHAOS_BOT_SOURCE"])
        if os.environ.get("SEXTO_CHAOS_BOT_SOURCE")
        else None
    )
    return BotProcess(env, log) if chosen is None else SourceBotProcess(env, log, chosen)


def initialise(bot: BotProcess) -> None:
    """``sexto init`` with the bot's environment; raises when it fails."""
    result = bot.init() if isinstance(bot, SourceBotProcess) else run(bot.env, "init")
    if result.returncode != 0:
        raise RuntimeError(f"sexto init failed:\n{result.stdout}\n{result.stderr}")


@dataclass
class Deployment:
    """The bot process, its Bot API server, its database, and the people enrolled."""

    server: StampedBotApiServer
    bot: BotProcess
    database_url: str
    chats: dict[int, Chat] = field(default_factory=dict)
    kills: list[datetime] = field(default_factory=list)
    restarts: list[datetime] = field(default_factory=list)

    @classmethod
    async def start(
        cls,
        server: StampedBotApiServer,
        folder: Path,
        database_url: str,
        seats: Sequence[Seat],
        **config: Any,
    ) -> Deployment:
        """Initialise the database, start the bot, enroll ``seats``."""
        path = write_config(folder, **config)
        env = environment(
            path, database_url, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=server.url
        )
        bot = bot_process(env, folder / "bot.log")
        await asyncio.to_thread(initialise, bot)
        codes = await create_codes(database_url, seats)
        deployment = cls(server, bot, database_url)
        await deployment.launch()
        deployment.chats = await enroll(server, seats, codes, reply_within=30)
        return deployment

    async def launch(self) -> None:
        """Start the bot process and wait until it polls."""
        polls = self.server.polls_started
        self.bot.start()
        self.restarts.append(datetime.now(UTC))
        deadline = time.monotonic() + 60
        while self.server.polls_started <= polls:
            process = self.bot.process
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"the bot exited:\n{self.bot.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the bot did not poll in 60 s:\n{self.bot.output()[-3000:]}")
            await asyncio.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the bot."""
        self.kills.append(datetime.now(UTC))
        self.bot.kill()

    async def stop(self) -> None:
        """SIGTERM the bot, as a supervisor would."""
        process = self.bot.process
        if process is not None and process.poll() is None:
            await asyncio.to_thread(self.bot.stop)

    def errors(self) -> list[str]:
        """Tracebacks and errors in the bot's log."""
        lines = self.bot.output().splitlines()
        return [line for line in lines if "Traceback" in line or " ERROR " in line]


def step_of(message: JsonDict) -> str | None:
    """Which step a bot message shows (None for anything else, reminders included)."""
    text = str(message.get("text", ""))
    if UNSOLICITED.search(text):
        return None
    if "Summary of incident" in text:
        return "summary"
    labels = buttons(message)
    if "Open an incident" in labels:
        return "idle"
    for name, label in STEPS:
        if label in labels:
            return name
    return None


@dataclass
class Walk:
    """What one professional saw while walking an incident."""

    user: int
    steps: list[str] = field(default_factory=list)
    resyncs: int = 0
    # Why each resync was needed: what the bot asked of the server for this person meanwhile.
    stalls: list[str] = field(default_factory=list)
    finished: bool = False
    error: str | None = None

    def went_back(self) -> list[str]:
        """Steps shown after a later one: the conversation lost progress."""
        problems = []
        highest = -1
        for name in self.steps:
            index = ORDER.get(name, -1)
            if index < highest:
                problems.append(f"user {self.user}: back to {name} after {self.steps}")
            highest = max(highest, index)
        return problems


async def walk_incident(
    chat: Chat,
    rng: random.Random,
    *,
    think: tuple[float, float] = (0.05, 0.3),
    patience: float = 4.0,
    deadline: float = 120.0,
    wait_for_reminder: bool = True,
) -> Walk:
    """Walk a whole incident, reacting to the step shown; ``/incident`` again when stuck."""
    walk = Walk(chat.id)
    first_seen = len(chat.seen)
    ends = time.monotonic() + deadline
    server = chat.server
    chat.server.send_text(chat.user, "/incident")
    reminded = False
    try:
        while True:
            since = server.last_update_at[chat.id]
            calls_before = len(server.calls)
            try:
                shown = await chat.expect(lambda m: step_of(m) is not None, since, patience)
            except Stuck as error:
                if time.monotonic() > ends:
                    raise
                walk.stalls.append(stall(error, walk.steps, server.calls, calls_before, chat.id))
                walk.resyncs += 1
                server.send_text(chat.user, "/incident")
                continue
            step = step_of(shown)
            assert step is not None
            over = any(step_of(m) == "summary" for m in chat.seen[first_seen:])
            if step == "summary" or (over and step in AFTER_THE_END):
                # The summary came: the incident is over. What follows it can only offer a new
                # incident (an old button pressed, or a press handed over again after a crash
                # arriving after a later press had finished the incident; /incident).
                walk.steps.append("summary")
                walk.finished = True
                return walk
            walk.steps.append(step)
            if step == "idle":
                raise Stuck(f"user {chat.id}: the incident vanished ({walk.steps})")
            await asyncio.sleep(rng.uniform(*think))
            if step == "call911" and wait_for_reminder and not reminded:
                # Confirm right after a reminder, like a person it reminded would.
                try:
                    shown = await chat.expect(says("Reminder"), since, patience)
                    reminded = True
                except Stuck:
                    pass
            label = dict(STEPS)[step]
            if step == "devices" and rng.random() < 0.5:
                server.send_text(chat.user, str(rng.randrange(1, 4)))
            elif step == "event_number" and rng.random() < 0.5:
                server.send_text(chat.user, f"2026-{rng.randrange(100000, 999999)}")
            else:
                try:
                    server.press_button(chat.user, shown, text=label)
                except LookupError:
                    # Its buttons are gone (already pressed before a crash): ask again.
                    walk.resyncs += 1
                    server.send_text(chat.user, "/incident")
    except Stuck as error:
        walk.error = str(error)
    return walk


def stall(
    error: Stuck, steps: Sequence[str], calls: Sequence[CallRecord], since: int, user: int
) -> str:
    """Why no step came: the wait, the last step seen, the bot's calls for this person during
    the wait (``calls[since:]``) by outcome, faults included, and its latest polls."""
    tally: dict[str, int] = {}
    for call in calls[since:]:
        if str(call.params.get("chat_id", "")) == str(user):
            outcome = call.fault or {True: "ok", False: "error", None: "pending"}[call.ok]
            key = f"{call.method} {outcome}"
            tally[key] = tally.get(key, 0) + 1
    polls = [
        f"{c.time.strftime('%H:%M:%S.%f')[:-3]} {c.fault or c.status or 'pending'}"
        for c in calls
        if c.method.lower() == "getupdates"
    ][-3:]
    return f"{error} after {steps[-1:] or ['start']}; calls meanwhile: {tally}; polls: {polls}"


def crash_window_duplicates(
    ledger: Ledger,
    calls: Sequence[CallRecord],
    kills: Sequence[datetime],
    restarts: Sequence[datetime],
) -> tuple[list[str], list[str]]:
    """Deliveries accepted by Telegram more than once: (in the crash window, the others).

    A message Telegram accepted less than a second before a kill -9 may be sent again after
    the restart: the program had no time to record it, and Telegram has no idempotency key
    (the one window the README documents). Any other repeat is a bug.

    ``restarts[i]`` is when the bot was started again after ``kills[i]``; the second copy must
    come after it. A request the killed bot wrote just before it died can be read by the server
    (in the test's own event loop) after the kill was noted: a first copy stamped between a
    kill and the next start can only come from the killed process, and is in the same window.
    """
    accepted: dict[tuple[int, str], list[datetime]] = {}
    for call in calls:
        if call.method.lower() == "sendmessage" and call.ok:
            key = (int(call.params.get("chat_id", 0)), str(call.params.get("text", "")))
            accepted.setdefault(key, []).append(call.time)
    allowed, other = [], []
    for delivery in ledger.deliveries:
        times = sorted(accepted.get((int(delivery.chat_id or 0), delivery.text), []))
        if len(times) < 2:
            continue
        what = f"delivery {delivery.id} ({delivery.level}) accepted {len(times)} times"
        first, second = times[0], times[1]
        crashed = any(
            (kill < first < restart or timedelta() <= kill - first <= timedelta(seconds=1))
            and second > restart
            for kill, restart in zip(kills, restarts, strict=True)
        )
        (allowed if crashed and len(times) == 2 else other).append(what)
    return allowed, other


def professionals(seats: Sequence[Seat]) -> list[int]:
    """User ids of the professionals among the seats."""
    return [s.user_id for s in seats if s.role is Role.PROFESSIONAL]


def desks(deployment: Deployment, seats: Sequence[Seat]) -> list[OfficerDesk]:
    """An alert-acknowledging desk for every officer and coordinator."""
    return [
        OfficerDesk(deployment.chats[s.user_id], random.Random(s.user_id), pause=(0.2, 1.5))
        for s in seats
        if s.role in (Role.OFFICER, Role.COORDINATOR)
    ]
