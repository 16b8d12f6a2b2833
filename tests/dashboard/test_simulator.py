"""The drill simulator of local mode: the same guide in a web chat, drills only, time forward."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette

from bot.runtime import Runtime
from bot.settings import Config
from dashboard.clock import ShiftedClock
from dashboard.simulator import ClockWakeups, DrillMessenger, Simulator
from storage.models import Incident, IncidentStatus, Role
from tests.conftest import add_member
from tests.dashboard.conftest import local_dashboard, sign_in_locally, with_escalation
from tests.dashboard.scenario import BASE, csrf_of, main_of
from tests.support.clock import FrozenClock

BUTTON = re.compile(
    r'action="/drill/(press|ack)".*?name="data" value="([^"]*)"'
    r'(?:.*?name="(?:line|member)" value="(\d+)")?.*?<button[^>]*>([^<]*)</button>',
    re.S,
)


@dataclass
class Trainer:
    """A trainer in the web chat."""

    client: httpx.AsyncClient
    runtime: Runtime
    app: Starlette
    page: str = ""

    async def look(self) -> str:
        self.page = (await self.client.get("/drill")).text
        return main_of(self.page)

    async def post(self, url: str, **data: str) -> None:
        answer = await self.client.post(url, data={"csrf": csrf_of(self.page), **data})
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/drill"
        await self.look()

    def buttons(self) -> list[tuple[str, str, str, str]]:
        """(form, data, line or member, label) of every button on the page, in order."""
        return [
            (form, html.unescape(data), extra or "", html.unescape(label))
            for form, data, extra, label in BUTTON.findall(main_of(self.page))
        ]

    async def press(self, label: str) -> None:
        """The latest chat button with this label."""
        found = [b for b in self.buttons() if b[0] == "press" and b[3] == label]
        assert found, f"no button {label!r} in {[b[3] for b in self.buttons()]}"
        _, data, line, _ = found[-1]
        await self.post("/drill/press", data=data, line=line)

    async def acknowledge(self) -> None:
        """The first Acknowledge button of the officers' panel."""
        _, data, member, _ = next(b for b in self.buttons() if b[0] == "ack")
        await self.post("/drill/ack", data=data, member=member)


@pytest.fixture
async def trainer(config: Config, database_url: str, clock: FrozenClock) -> AsyncIterator[Trainer]:
    """A signed-in trainer in local mode."""
    async with local_dashboard(config, database_url, clock) as (runtime, app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            await sign_in_locally(client, runtime)
            trainer = Trainer(client, runtime, app)
            await trainer.look()
            yield trainer


async def incidents(runtime: Runtime) -> list[Incident]:
    async with runtime.sessions() as session:
        return list((await session.scalars(select(Incident))).all())


async def test_a_drill_through_the_call_911_step(trainer: Trainer) -> None:
    await trainer.post("/drill/start")
    page = await trainer.look()
    assert "Incident <b>SX-2026-0001</b> opened" in page
    assert "<b>DRILL</b>: nothing is sent to the police." in page
    assert "Real situation" not in page  # the simulator answered "Drill" itself
    await trainer.press("No immediate danger")
    await trainer.press("Understood")
    await trainer.press("Done")
    await trainer.post("/drill/say", text="3")  # typed, like in Telegram
    assert "evaluation grid" in main_of(trainer.page)
    await trainer.press("Grid filled in")
    page = await trainer.look()
    assert "Call 911 now" in page
    assert "Reminder 1" not in page

    await trainer.post("/drill/forward", minutes="5")
    page = await trainer.look()
    assert "Reminder 1" in page  # the 911 reminder came due in simulated time
    assert "(5 min ahead)" in page

    await trainer.press("I called 911")
    page = await trainer.look()
    assert "911 call recorded at" in page
    assert "Skip" in [b[3] for b in trainer.buttons()]

    [incident] = await incidents(trainer.runtime)
    assert incident.drill
    assert incident.status is IncidentStatus.POLICE_CALLED
    assert incident.device_count == 3


async def test_the_simulator_refuses_real_incidents(trainer: Trainer) -> None:
    await trainer.post("/drill/press", data="0:mode:real", line="")
    assert "The simulator only runs drills." in main_of(trainer.page)  # shown once
    assert await incidents(trainer.runtime) == []


async def test_a_drill_alert_goes_to_the_trainer_marked_drill(trainer: Trainer) -> None:
    await trainer.post("/drill/start")
    page = await trainer.look()
    assert "In a drill, the alert goes to the professional only" in page
    acks = [b for b in trainer.buttons() if b[3] == "Acknowledge"]
    assert acks, "the drill copy of the alert, with its button, is in the chat"
    await trainer.press("Acknowledge")
    page = await trainer.look()
    assert "Acknowledged by Local trainer at 09:30" in page


async def test_commands_and_typed_text(trainer: Trainer) -> None:
    await trainer.post("/drill/command", name="help")
    assert "/incident" in await trainer.look()
    await trainer.post("/drill/say", text="<script>alert(1)</script>")
    page = await trainer.look()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    await trainer.post("/drill/command", name="lang")
    assert "Français" in await trainer.look() or "français" in trainer.page


async def test_a_nul_character_is_refused_with_the_reason(trainer: Trainer) -> None:
    before = await trainer.look()
    answer = await trainer.client.post(
        "/drill/say", data={"csrf": csrf_of(trainer.page), "text": "le cell\x00 est dans le sac"}
    )
    assert answer.status_code == 400
    assert "NUL character" in answer.text
    assert "remove it, then try again" in answer.text
    assert await trainer.look() == before  # nothing was said to the bot


async def test_a_command_typed_in_the_text_box_is_that_command(trainer: Trainer) -> None:
    """ "/help" typed was answered as text: the victim-support answer ("aide")."""
    await trainer.post("/drill/say", text="/help")
    assert "/incident" in await trainer.look()
    await trainer.post("/drill/say", text="/lang fr")
    assert "je vous parle maintenant en français" in await trainer.look()
    await trainer.post("/drill/say", text="/lang de")
    assert "Je ne parle que français et anglais" in await trainer.look()


async def test_only_the_offered_fast_forwards(trainer: Trainer) -> None:
    clock = trainer.runtime.clock
    assert isinstance(clock, ShiftedClock)
    await trainer.post("/drill/forward", minutes="100000")
    await trainer.post("/drill/forward", minutes="-5")
    assert clock.offset == timedelta(0)
    await trainer.post("/drill/forward", minutes="15")
    assert clock.offset == timedelta(minutes=15)


async def test_the_officers_panel_when_drills_alert_officers(
    config: Config, database_url: str, clock: FrozenClock
) -> None:
    config = with_escalation(config, drills_alert_officers=True, officer_ack_timeout="10m")
    async with local_dashboard(config, database_url, clock) as (runtime, app):
        officer = await add_member(runtime, Role.OFFICER, ("nord",), 2001, "Agent Roy", "en")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            await sign_in_locally(client, runtime)
            trainer = Trainer(client, runtime, app)
            page = await trainer.look()
            assert "these would be alerted: Agent Roy, Local coordinator" in page
            await trainer.post("/drill/start")
            page = await trainer.look()
            panel = page.split('class="officers"', 1)[1]
            assert "Agent Roy" in panel
            assert "SX-2026-0001" in panel
            await trainer.post("/drill/forward", minutes="10")  # no acknowledgement: repeat
            panel = (await trainer.look()).split('class="officers"', 1)[1]
            assert "(repeat 1)" in panel or panel.count("SX-2026-0001") >= 2
            await trainer.acknowledge()
            page = await trainer.look()
            panel = page.split('class="officers"', 1)[1]
            assert "Acknowledged by Agent Roy" in panel
            chat = page.split('class="officers"', 1)[0]
            assert "Agent Roy (community relations officer) is aware" in chat
    assert officer.id


async def test_the_simulator_is_only_in_local_mode(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    coordinator = await add_member(runtime, Role.COORDINATOR, (), 3001, "Coord", "en")
    from tests.dashboard.scenario import sign_in

    await sign_in(client, runtime, coordinator.id)
    assert (await client.get("/drill")).status_code == 404
    page = await client.get("/incidents")
    assert 'href="/drill"' not in page.text
    refused = await client.post("/drill/start", data={"csrf": csrf_of(page.text)})
    assert refused.status_code == 404
    assert await incidents(runtime) == []


def test_a_shifted_clock_only_moves_forward(clock: FrozenClock) -> None:
    shifted = ShiftedClock(clock)
    assert shifted.now() == clock.now()
    shifted.advance(timedelta(minutes=5))
    assert shifted.now() == clock.now() + timedelta(minutes=5)
    clock.advance(minutes=1)
    assert shifted.now() == clock.now() + timedelta(minutes=5)
    with pytest.raises(ValueError, match="forward"):
        shifted.advance(timedelta(minutes=-1))


async def test_the_drill_messenger_keeps_and_edits_messages(clock: FrozenClock) -> None:
    messenger = DrillMessenger(clock, first_id=100)
    first = await messenger.send(None, "hello")
    second = await messenger.send(42, "alert")
    assert (first, second) == (100, 101)
    await messenger.edit(42, second, "alert, acknowledged")
    assert messenger.posts[second].text == "alert, acknowledged"
    assert messenger.posts[second].edited
    assert messenger.posts[second].buttons == ()


async def test_clock_wakeups_come_due_by_the_clock(clock: FrozenClock) -> None:
    wakeups = ClockWakeups()
    await wakeups.schedule(1, clock.now() + timedelta(minutes=5))
    await wakeups.schedule(2, clock.now())
    assert wakeups.due(clock.now()) == [2]
    assert wakeups.due(clock.now() + timedelta(minutes=5)) == [2, 1]
    await wakeups.cancel(2)
    assert await wakeups.reconcile([(3, clock.now())], await wakeups.scheduled()) == (1, 1)
    assert wakeups.jobs == {3: clock.now()}


async def test_the_simulator_sends_what_came_due_while_it_was_stopped(
    config: Config, database_url: str, clock: FrozenClock
) -> None:
    async with local_dashboard(config, database_url, clock) as (_, app):
        simulator = app.state.dashboard.simulator
        assert isinstance(simulator, Simulator)
        await simulator.start("en")
        for label in ("No immediate danger", "Understood", "Done", "2", "Grid filled in"):
            line = next(
                (n, b.data)
                for n, line in reversed(list(enumerate(simulator.lines)))
                for row in line.buttons
                for b in row
                if b.label == label
            )
            await simulator.press(line[1], "en", line[0])
        simulator.wakeups.jobs.clear()  # as after a restart
        clock.advance(minutes=6)
        await simulator.recover()
        assert any("Reminder 1" in line.text for line in simulator.lines)


async def test_the_simulator_sends_reminders_as_time_passes(
    config: Config, database_url: str, clock: FrozenClock
) -> None:
    async with local_dashboard(config, database_url, clock) as (_, app):
        simulator = app.state.dashboard.simulator
        assert isinstance(simulator, Simulator)
        await simulator.start("en")
        before = len(simulator.messenger.posts)
        stop = asyncio.Event()
        ticking = asyncio.create_task(simulator.run(stop, every=0.01))
        clock.advance(minutes=20)  # real time passing: the stalled nudge comes due
        for _ in range(200):
            if len(simulator.messenger.posts) > before:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await ticking
        assert len(simulator.messenger.posts) > before


async def test_an_unknown_command_typed_gets_the_list_of_commands(trainer: Trainer) -> None:
    """As in Telegram: "/photos" is a command the bot does not have, "/ can I look?" words."""
    before = (await trainer.look()).count("/status: where the incident stands")
    await trainer.post("/drill/say", text="/photos please")
    after = (await trainer.look()).count("/status: where the incident stands")
    assert after == before + 1
    await trainer.post("/drill/say", text="/ can I look at the photo?")
    page = await trainer.look()
    assert page.count("/status: where the incident stands") == after
    assert "Never look at the images" in page


async def test_incident_typed_opens_a_drill(trainer: Trainer) -> None:
    assert "SX-" not in await trainer.look()
    await trainer.post("/drill/say", text="/incident")
    assert "SX-" in await trainer.look()
