"""How stored facts are shown: local times, bot messages made safe, timeline event details."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from dialogues.engine import CANCEL_PREFIX, START_BUTTON
from dialogues.protocol import Protocol
from storage.models import EventKind, TimelineEvent

KEPT_TAGS = re.compile(r"(</?(?:b|i)>)")
OTHER_TAGS = re.compile(r"</?(?:b|i|u|s|em|strong|code|pre|tg-spoiler)>")

Translate = Callable[[str], str]


def local_time(moment: datetime | None, zone: ZoneInfo, with_seconds: bool = False) -> str:
    """A stored UTC time as people read it here (empty when there is none)."""
    if moment is None:
        return ""
    pattern = "%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M"
    return moment.astimezone(zone).strftime(pattern)


def duration(delta: timedelta | float | None) -> str:
    """A duration as minutes and seconds (1 h 05 min, 7 min 30 s)."""
    if delta is None:
        return ""
    seconds = round(delta.total_seconds() if isinstance(delta, timedelta) else delta)
    hours, rest = divmod(max(seconds, 0), 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {seconds:02d} s" if seconds else f"{minutes} min"
    return f"{seconds} s"


def plain(text: str) -> str:
    """Telegram HTML as plain text (for CSV, PDF and titles)."""
    return html.unescape(OTHER_TAGS.sub("", text))


def telegram_html(text: str) -> Markup:
    """A bot message (Telegram HTML) made safe: only <b> and <i> survive, all else is text."""
    out: list[str] = []
    opened: list[str] = []
    for part in KEPT_TAGS.split(text):
        if not part:
            continue
        match = re.fullmatch(r"<(/?)(b|i)>", part)
        if match is None:
            out.append(str(escape(plain(part))))
        elif not match.group(1):
            opened.append(match.group(2))
            out.append(f"<{match.group(2)}>")
        elif opened and opened[-1] == match.group(2):
            opened.pop()
            out.append(f"</{match.group(2)}>")
    out.extend(f"</{tag}>" for tag in reversed(opened))
    return Markup("".join(out))  # noqa: S704 - built only from escaped text and <b>/<i>


def button_label(
    protocol: Protocol, data: str, language: str, schools: Mapping[str, str] | None = None
) -> str:
    """The label of the button whose callback data this is (the data itself if unknown)."""
    if data == START_BUTTON:
        return protocol.text("idle.start", language)
    if data.startswith(CANCEL_PREFIX):
        key = f"cancel.{data[len(CANCEL_PREFIX) :]}"
        return protocol.text(key, language) if key in protocol.texts else data
    parts = data.split(":")
    if len(parts) != 3:
        return data
    _, step_id, button_id = parts
    if step_id == "confirm":
        return protocol.text("call911.called", language)
    step = protocol.steps.get(step_id)
    if step is None:
        return data
    if step.choose_school:
        return (schools or {}).get(button_id, button_id)
    spec = step.button(button_id)
    if spec is not None:
        return protocol.text(spec.label, language)
    if step.input == "device_count" and button_id.isdecimal():
        return button_id
    return data


def removed_text(event: TimelineEvent) -> bool:
    """The retention purge removed this event's text (a pressed button still shows)."""
    data = event.data or {}
    return event.redacted_at is not None and "text" not in data and "button" not in data


def _pairs(items: list[tuple[str, Any]]) -> Markup:
    shown = [
        Markup("<span class='pair'><span class='key'>{}:</span> {}</span>").format(key, value)
        for key, value in items
        if value not in (None, "", [])
    ]
    return Markup(" ").join(shown)


def event_detail(
    event: TimelineEvent,
    t: Translate,
    protocol: Protocol,
    language: str,
    names: Mapping[int, str],
    schools: Mapping[str, str],
) -> Markup:
    """What one timeline event says, escaped (user text is never trusted)."""
    data: dict[str, Any] = dict(event.data or {})
    kind = event.kind
    removed = Markup("<span class='removed'>{}</span>").format(t("retention.removed"))
    if kind == EventKind.MESSAGE_IN:
        if "button" in data:
            label = button_label(protocol, str(data["button"]), language, schools)
            return Markup("<span class='button-pressed'>▸ {}</span>").format(label)
        said = (
            removed
            if removed_text(event)
            else Markup("<q class='user-text'>{}</q>").format(str(data.get("text", "")))
        )
        extra = _pairs([(t("detail.intent"), data.get("intent"))])
        return said + (Markup(" ") + extra if extra else Markup(""))
    if kind == EventKind.INCIDENT_OPENED:
        return _pairs(
            [
                (t("detail.code"), data.get("code")),
                (t("detail.kind"), t("kind.drill") if data.get("drill") else t("kind.real")),
            ]
        )
    if kind == EventKind.MESSAGE_OUT:
        if removed_text(event):
            return removed
        return Markup("<span class='bot-text'>{}</span>").format(
            telegram_html(str(data.get("text", "")))
        )
    if kind in (EventKind.STEP_DONE,):
        step = event.step or ""
        title = f"title.{step}"
        name = protocol.text(title, language) if title in protocol.texts else step
        return _pairs([(t("detail.step"), name), (t("detail.choice"), data.get("choice"))])
    if kind == EventKind.STATUS_CHANGED:
        status = str(data.get("status", ""))
        key = f"status.{status}"
        return _pairs(
            [
                (
                    t("detail.status"),
                    protocol.text(key, language) if key in protocol.texts else status,
                )
            ]
        )
    if kind in (
        EventKind.ALERT_SENT,
        EventKind.ALERT_FAILED,
        EventKind.REMINDER_SENT,
        EventKind.REMINDER_FAILED,
        EventKind.NUDGE_SENT,
    ):
        to = data.get("to")
        recipient = names.get(int(to), f"#{to}") if isinstance(to, int) else None
        return _pairs(
            [
                (t("detail.to"), recipient),
                (t("detail.level"), data.get("level")),
                (t("detail.number"), data.get("seq")),
                (t("detail.reason"), data.get("reason")),
                (t("detail.error"), data.get("error")),
            ]
        )
    if kind == EventKind.ALERT_ACKNOWLEDGED:
        who = names.get(event.member_id or 0) if event.member_id else None
        return _pairs([(t("detail.by"), who), (t("detail.reason"), data.get("reason"))])
    if kind == EventKind.ESCALATED:
        people = [names.get(int(i), f"#{i}") for i in data.get("to", []) if isinstance(i, int)]
        return _pairs(
            [(t("detail.reason"), data.get("reason")), (t("detail.to"), ", ".join(people))]
        )
    if kind == EventKind.OUTCOME_RECORDED:
        outcome = f"followup.{data.get('outcome')}_name"
        shown = (
            protocol.text(outcome, language) if outcome in protocol.texts else data.get("outcome")
        )
        return _pairs([(t("detail.outcome"), shown)])
    pairs = [
        (str(key), value if isinstance(value, str | int | float) else str(value))
        for key, value in data.items()
    ]
    if event.redacted_at is not None:
        return _pairs(pairs) + Markup(" ") + removed if pairs else removed
    return _pairs(pairs)
