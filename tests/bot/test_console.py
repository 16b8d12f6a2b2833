"""The console chat (local mode): what the person types and sees."""

from __future__ import annotations

import io

from bot.console import ConsoleChat, local_member
from bot.escalation import ACK_PREFIX
from bot.runtime import Runtime
from dialogues.events import ButtonPressed
from storage.models import Role
from tests.conftest import add_member, fire_due


async def test_an_alert_arriving_mid_step_leaves_the_steps_letters_as_they_were(
    runtime: Runtime,
) -> None:
    """The officer's alert comes in while the person reads the danger question: its button
    takes the next free letter, and the question's own letters still answer it."""
    out = io.StringIO()
    chat = ConsoleChat(runtime.guide, runtime.escalator, out)
    runtime.escalator.messenger = chat
    await add_member(runtime, Role.OFFICER, ("nord",), 2002, "Agent Roy", "en")
    me = await local_member(runtime.guide, "nord", "en")

    chat.show(await runtime.guide.start_incident(me))
    real = chat.event_for("a")
    assert isinstance(real, ButtonPressed)
    chat.show(await runtime.guide.handle(me, real))
    assert "[a] Yes, immediate danger   [b] No immediate danger" in out.getvalue()

    await fire_due(runtime)  # the officer's alert, printed in the same console
    shown = out.getvalue()
    assert "SX-2026-0001" in shown.split("No immediate danger")[-1]
    assert "[c] Acknowledge" in shown

    acknowledge = chat.event_for("c")
    assert isinstance(acknowledge, str)
    assert acknowledge.startswith(ACK_PREFIX)
    no_danger = chat.event_for("b")
    assert isinstance(no_danger, ButtonPressed)
    chat.show(await runtime.guide.handle(me, no_danger))
    assert "Never, at any time" in out.getvalue()
