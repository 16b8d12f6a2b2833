"""End to end: people in Telegram, the real python-telegram-bot, a local Bot API server."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.handlers import TelegramFront
from storage.models import EventKind, Incident, IncidentStatus, Role, TimelineEvent
from tests.e2e.conftest import Bot


def buttons(message: dict[str, Any]) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


async def next_with_buttons(bot: Bot, chat_id: int) -> dict[str, Any]:
    return await bot.server.wait_for_message(chat_id, lambda m: bool(buttons(m)))


async def press(bot: Bot, user: dict[str, Any], message: dict[str, Any], label: str) -> None:
    """Press a button of a message, like a person tapping it."""
    query = bot.server.press_button(user, message, text=label)
    await bot.server.wait_for_callback_answer(query)


async def marked(bot: Bot, chat_id: int, pressed: dict[str, Any]) -> dict[str, Any]:
    """A pressed message as it is once the bot has marked the choice on it."""
    await bot.server.wait_for_call(
        "editMessageText",
        lambda c: str(c.params.get("message_id")) == str(pressed["message_id"]) and bool(c.ok),
        timeout=10,
    )
    [message] = [
        m for m in bot.server.sent_messages(chat_id) if m["message_id"] == pressed["message_id"]
    ]
    return message


async def at_triage(bot: Bot, user_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A professional who opened a real incident: the user and the triage step's message."""
    pro = await bot.enrolled(Role.PROFESSIONAL, user_id, "Julie")
    bot.server.send_text(pro, "/incident")
    mode = await next_with_buttons(bot, user_id)
    await press(bot, pro, mode, "Real situation")
    return pro, await next_with_buttons(bot, user_id)


async def to_call_911(bot: Bot, user: dict[str, Any], triage: dict[str, Any]) -> dict[str, Any]:
    """From the triage step to the call-911 step (no danger, two phones); returns that step."""
    step = triage
    chat_id = int(user["id"])
    for label in ("No immediate danger", "Understood", "Done", "2", "Grid filled in"):
        await press(bot, user, step, label)
        step = await next_with_buttons(bot, chat_id)
    return step


async def test_a_whole_incident_by_buttons(telegram: Bot) -> None:
    server = telegram.server
    officer = await telegram.enrolled(Role.OFFICER, 700, "Officer Lee")
    pro = await telegram.enrolled(Role.PROFESSIONAL, 500, "Julie")

    server.send_text(pro, "/incident")
    mode = await next_with_buttons(telegram, 500)
    assert buttons(mode) == ["Real situation", "Drill"]
    await press(telegram, pro, mode, "Real situation")
    triage = await next_with_buttons(telegram, 500)
    assert "immediate danger" in triage["text"]
    alert = await server.wait_for_message(700)
    assert "SX-2026-0001" in alert["text"]
    assert "École secondaire du Nord" in alert["text"]

    # The pressed message now shows the choice and has no buttons left.
    closed = await marked(telegram, 500, mode)
    assert re.search(r"→ Real situation \(\d\d:\d\d\)$", closed["text"])
    assert buttons(closed) == []

    step = await to_call_911(telegram, pro, triage)
    assert "Call 911 now" in step["text"]
    assert "10, rue du Nord" in step["text"]
    await press(telegram, pro, step, "I called 911")
    await server.wait_for_message(700, lambda m: "911 call confirmed" in m["text"])
    await next_with_buttons(telegram, 500)
    server.send_text(pro, "2026-778899")
    await server.wait_for_message(500, lambda m: "Event number 2026-778899 recorded" in m["text"])
    step = await next_with_buttons(telegram, 500)
    await press(telegram, pro, step, "Kit handed to the patrol officer")
    step = await next_with_buttons(telegram, 500)
    await press(telegram, pro, step, "Noted")
    summary = await server.wait_for_message(500, lambda m: "Summary of incident" in m["text"])
    assert re.search(r"✅ \d\d:\d\d 911 called \(event no. 2026-778899\)", summary["text"])
    assert "⬜" not in summary["text"]
    assert officer["id"] == 700

    # Protocol content is sent protected from forwarding and saving.
    sends = [c for c in server.calls_of("sendMessage") if c.params.get("chat_id") == 500]
    protocol = [c for c in sends if "Never, at any time" in c.params["text"]]
    assert protocol
    assert all(c.params.get("protect_content") is True for c in protocol)

    async with telegram.runtime.sessions() as session:
        incident = (await session.scalars(select(Incident))).one()
        assert incident.status is IncidentStatus.AWAITING_DECISION
        assert incident.device_count == 2
        assert incident.event_number == "2026-778899"
        kinds = set(
            (
                await session.scalars(
                    select(TimelineEvent.kind).where(TimelineEvent.incident_id == incident.id)
                )
            ).all()
        )
    assert {
        EventKind.STEP_DONE,
        EventKind.MESSAGE_IN,
        EventKind.MESSAGE_OUT,
        EventKind.ALERT_SENT,
    } <= kinds


async def test_a_photo_is_deleted_unopened(telegram: Bot) -> None:
    server = telegram.server
    pro = await telegram.enrolled(Role.PROFESSIONAL, 501, "Sam")
    photo = server.send_photo(pro)
    deleted = await server.wait_for_call("deleteMessage")
    assert deleted.params["message_id"] == photo["message_id"]
    warning = await server.wait_for_message(501)
    assert "deleted that file without opening it" in warning["text"]
    forwarded = server.forward_photo(pro, "someone")
    await server.wait_for_call(
        "deleteMessage", lambda c: c.params["message_id"] == forwarded["message_id"]
    )
    await server.wait_for_message(501)
    for send in (server.send_video, server.send_document, server.send_voice, server.send_sticker):
        sent = send(pro)
        await server.wait_for_call(
            "deleteMessage", lambda c, m=sent: c.params["message_id"] == m["message_id"]
        )
        await server.wait_for_message(501, lambda m: "without opening" in m["text"])
    assert server.file_requests == []  # never downloaded
    async with telegram.runtime.sessions() as session:
        rows = (
            await session.scalars(
                select(TimelineEvent).where(TimelineEvent.kind == EventKind.MEDIA_DELETED)
            )
        ).all()
    assert {r.data["kind"] for r in rows} >= {"photo", "video", "document", "voice", "sticker"}
    assert all(set(r.data) == {"kind"} for r in rows)  # no file id, no caption


async def test_a_stranger_gets_only_how_to_enroll(telegram: Bot) -> None:
    server = telegram.server
    stranger = server.add_user(900, "Curious", language_code="en")
    for text in ("/incident", "hello", "/status", "/start WRONGCODE"):
        server.send_text(stranger, text)
    replies = [await server.wait_for_message(900) for _ in range(4)]
    texts = [r["text"] for r in replies]
    assert all("reserved for staff trained" in t for t in texts[:3])
    assert "does not exist" in texts[3]
    stranger_photo = server.send_photo(stranger)
    await server.wait_for_call(
        "deleteMessage", lambda c: c.params["message_id"] == stranger_photo["message_id"]
    )
    async with telegram.runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Incident)) == 0


async def test_a_code_works_once(telegram: Bot) -> None:
    server = telegram.server
    code = await telegram.code(Role.PROFESSIONAL)
    first = server.add_user(601, "First", language_code="fr")
    second = server.add_user(602, "Second", language_code="fr")
    server.send_text(first, f"/start {code}")
    assert "Bienvenue, First" in (await server.wait_for_message(601))["text"]
    server.send_text(second, f"/start {code}")
    assert "déjà servi" in (await server.wait_for_message(602))["text"]
    server.send_text(first, "/start")
    assert "déjà inscrit" in (await server.wait_for_message(601))["text"]


async def test_commands_without_a_command_entity_are_still_commands(telegram: Bot) -> None:
    """Some clients and Bot API servers do not mark a typed command (no bot_command entity)."""
    server = telegram.server
    code = await telegram.code(Role.PROFESSIONAL)
    pro = server.add_user(621, "Julie", language_code="en")
    server.send_text(pro, f"/start {code}", entities=[])
    assert "Welcome, Julie" in (await server.wait_for_message(621))["text"]
    server.send_text(pro, "/incident", entities=[])
    mode = await next_with_buttons(telegram, 621)
    assert "Real situation" in buttons(mode)
    await press(telegram, pro, mode, "Drill")
    await server.wait_for_message(621, lambda m: "SX-" in m["text"])
    server.send_text(pro, "/STATUS", entities=[])
    status = await server.wait_for_message(621, lambda m: "Status" in m["text"])
    assert "SX-" in status["text"]


@pytest.mark.parametrize("marked", [True, False], ids=["entity", "no-entity"])
async def test_an_unknown_command_shows_the_help(telegram: Bot, marked: bool) -> None:
    """A command the bot does not have gets the list of those it has, whether or not the
    client marked it as a command; words starting with a slash are still words."""
    server = telegram.server
    pro = await telegram.enrolled(Role.PROFESSIONAL, 622, "Julie", language="en")
    entities = None if marked else []
    server.send_text(pro, "/photos please", entities=entities)
    help_text = (await server.wait_for_message(622))["text"]
    assert "/incident: open an incident" in help_text
    server.send_text(pro, "/ can I look at the photo?", entities=[])
    answer = (await server.wait_for_message(622))["text"]
    assert "Never look at the images" in answer


async def test_lang_takes_a_code_or_a_name_and_refuses_other_languages(telegram: Bot) -> None:
    server = telegram.server
    pro = await telegram.enrolled(Role.PROFESSIONAL, 611, "Julie", language="en")
    server.send_text(pro, "/lang deutsch")
    refused = (await server.wait_for_message(611))["text"]
    assert 'I speak only French and English ("deutsch" is neither)' in refused
    server.send_text(pro, "/lang français")
    assert "je vous parle maintenant en français" in (await server.wait_for_message(611))["text"]
    server.send_text(pro, "/lang English")
    assert "I will speak English" in (await server.wait_for_message(611))["text"]


async def test_groups_are_left(telegram: Bot) -> None:
    server = telegram.server
    user = server.add_user(800, "Prof", language_code="fr")
    group = server.add_group("Salle des profs", members=[user])
    server.add_bot_to_group(group, by=user)
    goodbye = await server.wait_for_message(group["id"])
    assert "conversation privée" in goodbye["text"]
    await server.wait_for_call("leaveChat")
    assert group["id"] in server.left_chats


async def test_commands_are_published_in_both_languages(telegram: Bot) -> None:
    # Published beside serving: English goes last.
    await telegram.server.wait_for_call(
        "setMyCommands", lambda c: c.params.get("language_code") == "en" and bool(c.ok)
    )
    french = [c["command"] for c in telegram.server.get_commands(language_code="fr")]
    english = telegram.server.get_commands(language_code="en")
    assert french == ["incident", "status", "cancel", "incidents", "dashboard", "lang", "help"]
    assert english[0]["description"] == "Open a SEXTO incident"


async def test_an_officer_follows_up_with_incidents(telegram: Bot) -> None:
    server = telegram.server
    officer = await telegram.enrolled(Role.OFFICER, 700, "Officer Lee")
    pro = await telegram.enrolled(Role.PROFESSIONAL, 500, "Julie")
    server.send_text(officer, "/incidents")
    assert "No open incident" in (await server.wait_for_message(700))["text"]
    server.send_text(pro, "/incident")
    mode = await next_with_buttons(telegram, 500)
    await press(telegram, pro, mode, "Real situation")
    await server.wait_for_message(700, lambda m: "🔔 SEXTO" in m["text"])

    server.send_text(officer, "/incidents")
    card = await server.wait_for_message(700, lambda m: "Status: open" in m["text"])
    assert buttons(card) == ["Kit collected"]
    query = server.press_button(officer, card, text="Kit collected")
    answer = await server.wait_for_callback_answer(query)
    assert answer.text == "Recorded."
    notice = await server.wait_for_message(500, lambda m: "collected the kit" in m["text"])
    assert "Officer Lee" in notice["text"]
    [updated] = [m for m in server.sent_messages(700) if m["message_id"] == card["message_id"]]
    assert "Status: kit collected" in updated["text"]
    server.send_text(pro, "/incidents")
    refused = await server.wait_for_message(500, lambda m: "is for community" in m["text"])
    assert refused


async def test_dashboard_sends_officers_a_sign_in_link(telegram: Bot) -> None:
    server = telegram.server
    officer = await telegram.enrolled(Role.OFFICER, 700, "Officer Lee")
    pro = await telegram.enrolled(Role.PROFESSIONAL, 500, "Julie")
    server.send_text(officer, "/dashboard")
    message = await server.wait_for_message(700, lambda m: "sign-in link" in m["text"])
    assert "http://127.0.0.1:8080/login?token=" in message["text"]
    server.send_text(pro, "/dashboard")
    refused = await server.wait_for_message(500, lambda m: "dashboard" in m["text"])
    assert "for officers and coordinators" in refused["text"]


async def test_a_slow_edit_does_not_hold_up_the_next_step(telegram: Bot) -> None:
    """Marking the choice on the pressed message is rate-limited (Telegram asks to wait 3 s):
    the next step comes at once, and the old message is still marked once the wait is over."""
    server = telegram.server
    pro, triage = await at_triage(telegram, 501)

    server.inject_fault("editMessageText", "429", retry_after=3)
    await press(telegram, pro, triage, "No immediate danger")
    step = await server.wait_for_message(501, lambda m: bool(buttons(m)), timeout=2)
    assert "No immediate danger" not in step["text"]
    [pressed] = [m for m in server.sent_messages(501) if m["message_id"] == triage["message_id"]]
    assert buttons(pressed), "the 3 s wait is not over: the old buttons are still there"

    closed = await marked(telegram, 501, triage)
    assert "→ No immediate danger" in closed["text"]
    assert buttons(closed) == []


async def test_the_next_step_goes_out_before_the_button_is_answered(
    telegram: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the person waits for (the next step) is sent first; stopping the pressed button's
    spinner and marking the choice come right after, not in its way."""
    # The order is what is checked here, not the half-second limit (the next test's): a busy
    # machine must not turn a step slower than the limit into a wrong order.
    monkeypatch.setattr(TelegramFront, "spinner_grace", 30.0)
    server = telegram.server
    pro, triage = await at_triage(telegram, 502)

    query = server.press_button(pro, triage, text="No immediate danger")
    await server.wait_for_callback_answer(query)
    step = await next_with_buttons(telegram, 502)
    calls = server.calls
    [sent] = [
        i
        for i, c in enumerate(calls)
        if c.method == "sendMessage" and c.ok and c.result["message_id"] == step["message_id"]
    ]
    [answered] = [
        i
        for i, c in enumerate(calls)
        if c.method == "answerCallbackQuery" and c.params.get("callback_query_id") == query["id"]
    ]
    assert sent < answered


async def test_a_slow_step_still_stops_the_button_spinning(
    telegram: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When a step takes long (a busy moment, a database slow to answer), the pressed button
    is answered within half a second anyway, and the step follows when it is ready."""
    server = telegram.server
    pro, triage = await at_triage(telegram, 503)

    guide = telegram.runtime.guide
    quick = guide.handle_account

    async def slow(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(3)
        return await quick(*args, **kwargs)

    monkeypatch.setattr(guide, "handle_account", slow)
    query = server.press_button(pro, triage, text="No immediate danger")
    answer = await server.wait_for_callback_answer(query, timeout=2)
    assert answer.text is None
    assert [m for m in server.sent_messages(503) if m["message_id"] > triage["message_id"]] == []
    step = await next_with_buttons(telegram, 503)
    assert "No immediate danger" not in step["text"]
    assert len([c for c in server.calls if c.method == "answerCallbackQuery"]) == 2


async def test_a_press_handed_over_again_shows_its_step_again_and_records_it_once(
    telegram: Bot,
) -> None:
    """Telegram hands an update over again when the program stopped (a crash, a kill) after
    saving the step of a press but before confirming it: the person, who pressed once, gets
    that step again without being told of an old button, and the press counts once."""
    server = telegram.server
    pro, triage = await at_triage(telegram, 504)
    query = server.press_button(pro, triage, text="No immediate danger")
    await server.wait_for_callback_answer(query)
    step = await next_with_buttons(telegram, 504)
    await marked(telegram, 504, triage)

    server.send_update({"callback_query": query})  # the same press: its id, its message
    again = await server.wait_for_message(
        504, lambda m: m["message_id"] > step["message_id"] and bool(buttons(m))
    )
    assert again["text"] == step["text"]
    assert buttons(again) == buttons(step)
    later = [m for m in server.sent_messages(504) if m["message_id"] > step["message_id"]]
    assert [m["message_id"] for m in later] == [again["message_id"]]
    [closed] = [m for m in server.sent_messages(504) if m["message_id"] == triage["message_id"]]
    assert "→ No immediate danger" in closed["text"]
    assert buttons(closed) == []

    async with telegram.runtime.sessions() as session:
        events = (await session.scalars(select(TimelineEvent))).all()
    pressed = query["data"]
    assert [e.kind for e in events if e.data.get("button") == pressed] == [EventKind.MESSAGE_IN]
    assert [e.step for e in events if e.kind == EventKind.STEP_DONE] == ["danger"]


async def test_a_typed_message_handed_over_again_is_recorded_once(telegram: Bot) -> None:
    """The same after a crash for a typed event number: handed over again, it brings the step
    it led to, and the number is recorded once."""
    server = telegram.server
    pro, triage = await at_triage(telegram, 505)
    step = await to_call_911(telegram, pro, triage)
    await press(telegram, pro, step, "I called 911")
    await next_with_buttons(telegram, 505)
    typed = server.send_text(pro, "2026-778899")
    await server.wait_for_message(505, lambda m: "Event number 2026-778899 recorded" in m["text"])
    waiting = await next_with_buttons(telegram, 505)

    server.send_update({"message": typed})  # the same message: its id, its text
    again = await next_with_buttons(telegram, 505)
    assert again["text"] == waiting["text"]
    later = [m for m in server.sent_messages(505) if m["message_id"] > waiting["message_id"]]
    assert [m["message_id"] for m in later] == [again["message_id"]]

    async with telegram.runtime.sessions() as session:
        events = (await session.scalars(select(TimelineEvent))).all()
    said = [e for e in events if e.kind == EventKind.MESSAGE_IN and "text" in e.data]
    assert [e.data["text"] for e in said] == ["2026-778899"]
    assert [e.step for e in events if e.kind == EventKind.STEP_DONE].count("event_number") == 1
