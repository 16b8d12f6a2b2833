"""The console chat (local mode): what the person types and sees."""

from __future__ import annotations

import io

from sqlalchemy import select

from bot.console import ConsoleChat, ReadLine, local_member
from bot.escalation import ACK_PREFIX
from bot.guide import Outcome
from bot.runtime import Runtime
from dialogues.effects import Button, Say
from dialogues.events import ButtonPressed, HelpRequested, StatusRequested, UserSaid
from storage.models import EventKind, Role, TimelineEvent
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


def test_buttons_of_one_answer_are_lettered_on_across_its_messages(runtime: Runtime) -> None:
    """The step, then the button recording a 911 call: two messages, [a] and [b]."""
    out = io.StringIO()
    chat = ConsoleChat(runtime.guide, runtime.escalator, out)
    chat.show(Outcome([Say("old", ((Button("Old", "1:x:y"),),))]))
    step = Say("Step", ((Button("Done", "1:victim:done"),),))
    offer = Say("You called 911?", ((Button("I called 911", "1:confirm:call911"),),))
    chat.show(Outcome([Say("Here is where we are"), step, offer]))
    assert "[a] Done" in out.getvalue()
    assert "[b] I called 911" in out.getvalue()
    assert chat.event_for("a") == ButtonPressed("1:victim:done")
    assert chat.event_for("b") == ButtonPressed("1:confirm:call911")
    assert chat.event_for("c") == UserSaid("c")  # the earlier answer's button is gone


def lines(*typed: str) -> ReadLine:
    """A reader giving these lines, then the end of input."""
    queue = list(typed)

    async def read() -> str | None:
        return queue.pop(0) if queue else None

    return read


async def test_the_language_asked_for_is_used_though_the_demo_professional_spoke_another(
    runtime: Runtime,
) -> None:
    """The demo professional last spoke French (in the drill simulator, say): `sexto chat
    --language en` answers in English, an incident under way included."""
    me = await local_member(runtime.guide, "nord", "fr")
    await runtime.guide.start_incident(me)

    out = io.StringIO()
    chat = ConsoleChat(runtime.guide, runtime.escalator, out)
    await chat.run(me, lines("/status"), language="en")
    shown = out.getvalue()
    assert "OK, I will speak English from now on." in shown
    assert "Commands" in shown
    assert "Is this a real situation or a training drill?" in shown
    assert "Commandes" not in shown

    again = io.StringIO()
    await ConsoleChat(runtime.guide, runtime.escalator, again).run(me, lines(), language="en")
    assert "from now on" not in again.getvalue()  # already English: nothing to switch
    assert "Commands" in again.getvalue()

    kept = io.StringIO()
    await ConsoleChat(runtime.guide, runtime.escalator, kept).run(me, lines())
    assert "Commands" in kept.getvalue()  # no language asked for: the last one is kept


async def test_a_blank_line_asks_nothing_and_records_nothing(runtime: Runtime) -> None:
    """Enter pressed on an empty prompt (or spaces only) shows the prompt again: no "I did not
    understand", nothing in the conversation log, as in Telegram, where nothing can be sent
    empty."""
    me = await local_member(runtime.guide, "nord", "en")
    out = io.StringIO()
    chat = ConsoleChat(runtime.guide, runtime.escalator, out)
    await chat.run(me, lines("/incident", "", "   ", "\t"), language="en")
    shown = out.getvalue()
    assert "I did not understand" not in shown
    assert shown.count("Is this a real situation or a training drill?") == 1
    assert shown.count("\n> ") == 5  # a prompt for each line read, and one more at the end
    assert await typed(runtime) == []

    answered = io.StringIO()
    again = ConsoleChat(runtime.guide, runtime.escalator, answered)
    await again.run(me, lines("can I look at the phone to check?"))
    assert "Never look at the images" in answered.getvalue()
    assert await typed(runtime) == ["can I look at the phone to check?"]


async def typed(runtime: Runtime) -> list[str]:
    """What the conversation log holds as typed by the person, oldest first."""
    async with runtime.sessions() as session:
        rows = await session.scalars(
            select(TimelineEvent)
            .where(TimelineEvent.kind == EventKind.MESSAGE_IN)
            .order_by(TimelineEvent.id)
        )
        return [r.data["text"] for r in rows if "text" in r.data]


async def test_lang_names_a_language_or_is_refused(runtime: Runtime) -> None:
    me = await local_member(runtime.guide, "nord", "en")
    out = io.StringIO()
    chat = ConsoleChat(runtime.guide, runtime.escalator, out)
    await chat.run(me, lines("/lang de", "/lang anglais", "/status"), language="en")
    shown = out.getvalue()
    assert 'I speak only French and English ("de" is neither)' in shown
    assert "français" not in shown.split("I speak only")[1]  # nothing switched to French
    assert "No incident in progress" in shown


def test_commands_typed_in_the_console_are_read_as_in_telegram(runtime: Runtime) -> None:
    """An unknown command gets the help, "@bot" after a command is ignored, and a slash then a
    space is words."""
    chat = ConsoleChat(runtime.guide, runtime.escalator, io.StringIO())
    assert chat.event_for("/photos please") == HelpRequested()
    assert chat.event_for("/STATUS@sexto_bot") == StatusRequested()
    assert chat.event_for("/Incident") == "incident"
    assert chat.event_for("/quit") is None
    assert chat.event_for("/ can I look?") == UserSaid("/ can I look?")
