"""The pure engine: ``step(protocol, state, event, now) -> (state, effects)``.

It never sends, sleeps or reads the clock; the shell carries out the effects it returns.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from dialogues.effects import (
    AdvanceStatus,
    Button,
    CancelIncident,
    Effect,
    MarkChoice,
    NotifyOfficers,
    OpenIncident,
    Say,
    SetLanguage,
    StartReminders,
    StepCompleted,
    StopReminders,
    UpdateIncident,
)
from dialogues.events import (
    ButtonPressed,
    CancelRequested,
    Event,
    HelpRequested,
    IncidentOpened,
    LanguageRequested,
    ReminderDue,
    StartIncident,
    StatusRequested,
    UserSaid,
)
from dialogues.protocol import ButtonSpec, Markup, Protocol, Step
from dialogues.state import Handled, SchoolRef, State
from nlu.call import call_failed
from nlu.doubt import voices_doubt
from nlu.entities import PREFIXED_NUMBER, count_alone
from nlu.mode import named_mode

START_BUTTON = "start"
CANCEL_PREFIX = "cancel:"
CANCEL_REASONS = ("mistake", "not_sexto")
EVENT_NUMBER = re.compile(r"^(?=.*\d)[A-Za-z0-9][A-Za-z0-9 /_.#-]{0,39}$")
EVENT_NUMBER_DIGITS = 4
MAX_REASON = 500
# /incident this soon after the last step shows that incident's summary again first: the
# summary may never have arrived (a crash between saving the last step and sending it).
SUMMARY_AGAIN_WITHIN = timedelta(minutes=10)

Result = tuple[State, list[Effect]]


def step(protocol: Protocol, state: State, event: Event, now: datetime) -> Result:
    """Apply one event to a member's state."""
    match event:
        case StartIncident(schools=schools):
            return _start(protocol, state, schools, now)
        case IncidentOpened():
            return _opened(protocol, state, event, now)
        case ButtonPressed(data=data):
            return _once(protocol, state, event, now, lambda: _button(protocol, state, data, now))
        case UserSaid():
            return _once(protocol, state, event, now, lambda: _said(protocol, state, event, now))
        case StatusRequested():
            return state, _status(protocol, state)
        case HelpRequested():
            help_text = Say(protocol.text("help.text", state.language), protect=False)
            return state, [help_text, *_step_again(protocol, state)]
        case LanguageRequested(unknown=unknown) if unknown:
            refusal = Say(protocol.text("lang.unknown", state.language, asked=unknown))
            return state, [refusal, *_step_again(protocol, state)]
        case LanguageRequested(language=language):
            return _language(protocol, state, language)
        case CancelRequested():
            return _cancel_request(protocol, state)
        case ReminderDue(kind=kind, number=number):
            return state, _reminder(protocol, state, kind, number)
    raise TypeError(f"unknown event {event!r}")  # pragma: no cover


# ---- rendering ----------------------------------------------------------------------------------


def clock(protocol: Protocol, when: datetime | str) -> str:
    """A time as people read it here: HH:MM in the display zone."""
    moment = datetime.fromisoformat(when) if isinstance(when, str) else when
    return moment.astimezone(protocol.zone).strftime("%H:%M")


def _callback(state: State, step_id: str, button_id: str) -> str:
    return f"{state.incident_id or 0}:{step_id}:{button_id}"


def _buttons(protocol: Protocol, state: State, current: Step) -> tuple[tuple[Button, ...], ...]:
    language = state.language
    if current.choose_school:
        return tuple(
            (Button(school.name, _callback(state, current.id, school.id)),)
            for school in state.schools
        )
    labels = [
        Button(protocol.text(b.label, language), _callback(state, current.id, b.id))
        for b in current.buttons
    ]
    if current.input == "device_count":
        numbers = tuple(b for b in labels if b.data.rsplit(":", 1)[1] != "0")
        others = tuple(b for b in labels if b.data.rsplit(":", 1)[1] == "0")
        return tuple(row for row in (numbers, others) if row)
    return tuple((b,) for b in labels)


def _params(protocol: Protocol, state: State) -> dict[str, object]:
    language = state.language
    school = state.school
    address = f", {school.address}" if school and school.address else ""
    devices = "?" if state.device_count is None else str(state.device_count)
    opened = state.stamp("opened")
    return {
        "school": school.name if school else "",
        "address": address,
        "devices": protocol.text("devices.count", language, count=devices),
        "code": state.incident_code or "",
        "time": clock(protocol, opened.at) if opened else "",
    }


def _show(protocol: Protocol, state: State, step_id: str | None = None) -> Say:
    current = protocol.step(step_id or state.step or protocol.start)
    params = _params(protocol, state)
    if current.id == "event_number":
        stamp = state.stamp("call911")
        params["time"] = clock(protocol, stamp.at) if stamp else ""
    text = protocol.text(current.text, state.language, **params)
    return Say(text, _buttons(protocol, state, current))


def _checklist(protocol: Protocol, state: State) -> str:
    language = state.language
    lines = []
    opened = state.stamp("opened")
    if opened:
        lines.append(
            f"✅ {clock(protocol, opened.at)} {protocol.text('checklist.opened', language)}"
        )
    for item in protocol.checklist:
        assert item.checklist is not None  # noqa: S101 - protocol.checklist guarantees it
        label = protocol.text(item.checklist, language)
        if item.id == "devices" and state.device_count is not None:
            label += " : " if language == "fr" else ": "
            label += protocol.text("devices.count", language, count=state.device_count)
        if item.id == "call911" and state.event_number:
            label += " (" + protocol.text(
                "checklist.event_number", language, number=state.event_number
            )
            label += ")"
        stamp = state.stamp(item.id)
        lines.append(f"✅ {clock(protocol, stamp.at)} {label}" if stamp else f"⬜ {label}")
    return "\n".join(lines)


def _header(protocol: Protocol, state: State, key: str) -> str:
    language = state.language
    drill = protocol.text("drill.tag", language) if state.drill else ""
    return protocol.text(
        key,
        language,
        code=state.incident_code or "",
        drill=drill,
        school=state.school.name if state.school else "",
        status=protocol.text(f"status.{state.status or 'open'}", language),
    )


def _status(protocol: Protocol, state: State) -> list[Effect]:
    language = state.language
    if state.incident_id is None:
        if state.preparing:
            return [Say(protocol.text("status.preparing", language)), _show(protocol, state)]
        return [Say(protocol.text("status.none", language))]
    body = _header(protocol, state, "status.header") + "\n\n" + _checklist(protocol, state)
    if state.active and state.step:
        current = protocol.step(state.step)
        if current.checklist:
            title = protocol.text(f"title.{current.id}", language)
            body += "\n\n" + protocol.text("status.next", language, step=title)
    return [Say(body)]


# ---- transitions --------------------------------------------------------------------------------


def _enter(protocol: Protocol, state: State, step_id: str) -> Result:
    """Move to a step (skipping completed ones that allow it) and show it."""
    current = protocol.step(step_id)
    while current.skip_when_done and state.stamp(current.id) and current.next:
        current = protocol.step(current.next)
    state = replace(state, step=current.id, awaiting=None)
    effects: list[Effect] = []
    if "start_911_reminders" in current.on_enter and state.incident_id is not None:
        effects.append(StartReminders("call_911"))
    if current.terminal:
        effects.append(Say(_summary(protocol, state, current)))
    else:
        effects.append(_show(protocol, state, current.id))
    return state, effects


def _summary(protocol: Protocol, state: State, terminal: Step) -> str:
    return (
        _header(protocol, state, "summary.header")
        + "\n\n"
        + _checklist(protocol, state)
        + "\n\n"
        + protocol.text(terminal.text, state.language)
    )


def _just_finished(protocol: Protocol, state: State, now: datetime) -> list[Effect]:
    """The summary of the incident this conversation finished moments ago, if it did."""
    if state.incident_id is None or state.step is None or not state.stamps:
        return []
    terminal = protocol.step(state.step)
    last = max(datetime.fromisoformat(s.at) for s in state.stamps)
    if not terminal.terminal or now - last > SUMMARY_AGAIN_WITHIN:
        return []
    return [Say(_summary(protocol, state, terminal))]


def _start(
    protocol: Protocol, state: State, schools: tuple[SchoolRef, ...], now: datetime
) -> Result:
    language = state.language
    if state.active:
        return state, [
            Say(protocol.text("incident.busy", language, code=state.incident_code or "")),
            _show(protocol, state),
        ]
    before = _just_finished(protocol, state, now)
    fresh = State(language=language, schools=schools)
    if not fresh.schools:
        return fresh, [*before, Say(protocol.text("school.none", language))]
    if len(fresh.schools) == 1:
        fresh = replace(fresh, school=fresh.schools[0])
        start = protocol.step(protocol.start).next or protocol.start
    else:
        start = protocol.start
    fresh, effects = _enter(protocol, fresh, start)
    return fresh, [*before, *effects]


def _opened(protocol: Protocol, state: State, event: IncidentOpened, now: datetime) -> Result:
    state = replace(
        state,
        incident_id=event.incident_id,
        incident_code=event.code,
        opened_at=now.isoformat(),
        status="open",
    ).with_stamp("opened", now)
    language = state.language
    drill = protocol.text("drill.note", language) if state.drill else ""
    opened = Say(
        protocol.text(
            "incident.opened",
            language,
            code=event.code,
            time=clock(protocol, now),
            school=state.school.name if state.school else "",
            drill=Markup(drill),
        )
    )
    state, shown = _enter(protocol, state, state.step or protocol.start)
    return state, [opened, NotifyOfficers("opened"), *shown]


def _stale(protocol: Protocol, state: State, now: datetime) -> list[Effect]:
    if state.step is None or protocol.step(state.step).terminal:
        return _where_we_are(protocol, state, now)
    return [Say(protocol.text("stale", state.language)), *_where_we_are(protocol, state, now)]


def _where_we_are(protocol: Protocol, state: State, now: datetime) -> list[Effect]:
    """The step shown again; after the last one, its summary (soon after) or a new incident.

    Just after the last step, an old button is most often the last button's press again:
    Telegram hands an update over again when the program stopped before confirming it (a crash
    right after the step was saved, whose summary may never have gone out).
    """
    if state.step is None or protocol.step(state.step).terminal:
        return _just_finished(protocol, state, now) or [_idle(protocol, state)]
    return [_show(protocol, state)]


def _telegram_id(event: Event) -> str:
    if isinstance(event, ButtonPressed) and event.press:
        return f"press:{event.press}"
    if isinstance(event, UserSaid) and event.message:
        return f"message:{event.message}"
    return ""


def handled_again(state: State, event: Event) -> bool:
    """The update that last moved this guide on, handed over again by Telegram: the program
    stopped after saving its step but before confirming the update (a crash, a kill)."""
    key = _telegram_id(event)
    return bool(key) and state.handled is not None and state.handled.id == key


def _once(
    protocol: Protocol, state: State, event: Event, now: datetime, handle: Callable[[], Result]
) -> Result:
    """``handle()`` the event, unless it is the one that last moved the guide on: its step is
    saved, so only what its reply did, which may never have gone out, is done again."""
    if state.handled is not None and handled_again(state, event):
        mark = [MarkChoice(state.handled.choice)] if state.handled.choice else []
        return state, [*mark, *_where_we_are(protocol, state, now)]
    state, effects = handle()
    key = _telegram_id(event)
    if key and any(isinstance(e, MarkChoice | StepCompleted | UpdateIncident) for e in effects):
        choice = next((e.text for e in effects if isinstance(e, MarkChoice)), None)
        state = replace(state, handled=Handled(key, choice))
    return state, effects


def _idle(protocol: Protocol, state: State) -> Say:
    language = state.language
    return Say(
        protocol.text("idle.hint", language),
        ((Button(protocol.text("idle.start", language), START_BUTTON),),),
        protect=False,
    )


def _button(protocol: Protocol, state: State, data: str, now: datetime) -> Result:
    if data.startswith(CANCEL_PREFIX):
        return _cancel_choice(protocol, state, data[len(CANCEL_PREFIX) :], now)
    parts = data.split(":")
    if len(parts) != 3 or state.step is None:
        return state, _stale(protocol, state, now)
    incident, step_id, button_id = parts
    if step_id == CONFIRM_911 and button_id == "call911":
        return _confirm_911_anywhere(protocol, state, incident, now)
    if step_id != state.step or incident != str(state.incident_id or 0):
        return state, _stale(protocol, state, now)
    current = protocol.step(step_id)
    if current.choose_school:
        school = next((s for s in state.schools if s.id == button_id), None)
        if school is None or current.next is None:
            return state, _stale(protocol, state, now)
        state, shown = _enter(protocol, replace(state, school=school), current.next)
        return state, [_chosen(protocol, state, school.name, now), *shown]
    spec = current.button(button_id)
    numeric = button_id.isdecimal() and int(button_id) <= 99
    if spec is None and current.input == "device_count" and numeric:
        count = str(int(button_id))
        spec = ButtonSpec(id=count, label="", next=current.buttons[0].next)
        label = protocol.text("confirm.devices_count", state.language, count=count)
        return _advance(protocol, state, current, spec, label, now, pressed=True)
    if spec is None:
        return state, _stale(protocol, state, now)
    label = protocol.text(spec.label, state.language)
    return _advance(protocol, state, current, spec, label, now, pressed=True)


def _confirm_911_anywhere(
    protocol: Protocol, state: State, incident: str, now: datetime
) -> Result:
    """The confirm button offered for a typed "I called 911", pressed at any step."""
    if not state.active or incident != str(state.incident_id) or state.stamp("call911"):
        return state, _stale(protocol, state, now)
    current = protocol.step(state.step or protocol.start)
    if current.id == "call911":
        spec = current.button("called")
        if spec is not None:
            label = protocol.text(spec.label, state.language)
            return _advance(protocol, state, current, spec, label, now, pressed=True)
    label = protocol.text("call911.called", state.language)
    state = replace(state, status="police_called").with_stamp("call911", now)
    effects: list[Effect] = [
        _chosen(protocol, state, label, now),
        StepCompleted("call911", "called"),
        AdvanceStatus("police_called"),
        StopReminders("call_911"),
        NotifyOfficers("police_called"),
        Say(protocol.text("confirm.already", state.language, time=clock(protocol, now))),
        _pending(protocol, state, current),
    ]
    return state, effects


def _chosen(protocol: Protocol, state: State, label: str, now: datetime) -> MarkChoice:
    return MarkChoice(
        protocol.text("chosen", state.language, label=label, time=clock(protocol, now))
    )


def _advance(
    protocol: Protocol,
    state: State,
    current: Step,
    spec: ButtonSpec,
    label: str,
    now: datetime,
    *,
    pressed: bool,
) -> Result:
    """Complete ``current`` by ``spec`` (a button, or typed input standing for one)."""
    effects: list[Effect] = [_chosen(protocol, state, label, now)] if pressed else []
    state = replace(state, awaiting=None)
    if state.incident_id is not None:
        effects.append(StepCompleted(current.id, spec.id))
    if current.checklist:
        state = state.with_stamp(current.id, now)
    if current.input == "device_count":
        state = replace(state, device_count=int(spec.id))
        effects.append(UpdateIncident(device_count=int(spec.id)))
    waiting_for_incident = False
    for action in spec.do:
        if action in ("open_real", "open_drill"):
            school = state.school
            if school is None:  # pragma: no cover - the school step always comes first
                return state, _stale(protocol, state, now)
            state = replace(state, drill=action == "open_drill")
            effects.append(OpenIncident(school.id, drill=action == "open_drill"))
            waiting_for_incident = True
        elif action == "confirm_911":
            state = replace(state, status="police_called").with_stamp("call911", now)
            effects += [
                AdvanceStatus("police_called"),
                StopReminders("call_911"),
                NotifyOfficers("police_called"),
            ]
        elif action == "kit_collected":
            state = replace(state, status="kit_collected")
            effects.append(AdvanceStatus("kit_collected"))
        elif action == "finish":
            state = replace(state, status="awaiting_decision")
            effects += [AdvanceStatus("awaiting_decision"), StopReminders(None)]
    target = spec.next or current.next
    if target is None:  # pragma: no cover - validate() rejects such steps
        return state, effects
    if waiting_for_incident:
        # The next step is shown once the shell reports the incident open (IncidentOpened).
        return replace(state, step=target), effects
    state, shown = _enter(protocol, state, target)
    return state, effects + shown


ANSWERED = frozenset(
    {
        "ask_view_image",
        "ask_share_image",
        "ask_copy_image",
        "ask_delete_image",
        "report_received_image",
        "ask_device_handling",
        "ask_return_device",
        "ask_call_911",
        "ask_parents",
        "ask_victim_support",
        "ask_dpj",
        "ask_legal",
        "ask_confidentiality",
        "greet",
        "thank",
        "affirm",
        "deny",
        "out_of_scope",
    }
)
CONFIRM_911 = "confirm"


def _said(protocol: Protocol, state: State, event: UserSaid, now: datetime) -> Result:
    language = state.language
    text = event.text.strip()
    intent = event.intent
    if intent == "emergency":
        return state, _emergency(protocol, state)
    if state.awaiting == "cancel_reason":
        if not 0 < len(text) <= MAX_REASON:
            return state, [Say(protocol.text("cancel.reason_invalid", language))]
        return _cancel(protocol, state, text, now)
    idle = state.step is None or protocol.step(state.step).terminal
    current = None if idle or state.step is None else protocol.step(state.step)
    count = count_alone(text) if current is not None and current.input == "device_count" else None
    if current is not None and count is not None:
        # "2", "deux", "juste un": the count the step asks for, as if pressed. "aucun" may
        # mean none to seize or none bagged yet: the buttons say which.
        if count > 99 or (count == 0 and not text.isdecimal()):
            key = "devices.invalid" if count else "devices.none_typed"
            return state, [Say(protocol.text(key, language), _buttons(protocol, state, current))]
        spec = ButtonSpec(id=str(count), label="", next=current.buttons[0].next)
        return _advance(protocol, state, current, spec, text, now, pressed=False)
    if current is not None and current.input == "event_number":
        # The whole message when it is a number; else the number the NLU found in a sentence.
        whole = EVENT_NUMBER.match(text) is not None
        number = text if whole else (event.entity("event_number") or text)
        # A message that is a number of some length, or letters glued to digits, is one,
        # whatever the NLU made of it ("EV-2026-777" read as affirm, "EV-1" as a question);
        # a short one ("ok 10-4") only if it was not answered.
        digits = sum(c in string.digits for c in text)
        plain_number = whole and (
            digits >= EVENT_NUMBER_DIGITS or PREFIXED_NUMBER.match(text) is not None
        )
        if (
            EVENT_NUMBER.match(number)
            and number != "911"
            and (plain_number or intent not in ANSWERED)
        ):
            state = replace(state, event_number=number)
            recorded = Say(protocol.text("event.recorded", language, number=number))
            skip = current.buttons[0]
            state, shown = _advance(protocol, state, current, skip, number, now, pressed=False)
            return state, [UpdateIncident(event_number=number), recorded, *shown]
    mode = named_mode(text) if current is not None else None
    if current is not None and mode is not None and mode in {b.id for b in current.buttons}:
        # "c'est réel", "just a drill" at "real situation or drill?": which button opens it
        # ("just a drill" was read as 911 called, "it's real" not understood).
        return state, [Say(protocol.text(f"answer.mode.{mode}", language)), _show(protocol, state)]
    if (
        current is not None
        and state.incident_id is not None
        and (current.id == "emergency" or not state.stamp("call911"))
        and call_failed(text, calling=current.id in ("call911", "emergency"))
    ):
        # "j'ai appelé, c'était occupé", "the call dropped": call again now. The engines read
        # these as 911 called, a question on calling or a not-yet ("press the button when done").
        return state, [
            Say(protocol.text("answer.call_failed", language)),
            _pending(protocol, state, current),
        ]
    if intent in ("confirm_911_called", "confirm_devices_secured", "confirm_kit_collected"):
        return state, _confirm(protocol, state, current, intent, event)
    unsure = f"answer.unsure.{current.id}" if current is not None else ""
    if unsure in protocol.texts and voices_doubt(text):
        # "je sais pas", "not sure" at the danger question: not the answer to a no ("press No
        # immediate danger"), whatever the NLU made of it.
        return state, [
            Say(protocol.text(unsure, language)),
            _pending(protocol, state, current),
        ]
    if intent is None:
        return state, _unparsed(protocol, state, current)
    if intent == "start_incident" or (idle and intent == "ask_next_step"):
        if idle:
            return state, [_start_offer(protocol, state)]
        return state, [
            Say(protocol.text("answer.ask_next_step", language)),
            _show(protocol, state),
        ]
    if intent == "ask_next_step":
        effects: list[Effect] = [
            Say(protocol.text("answer.ask_next_step", language)),
            _show(protocol, state),
        ]
        if (
            event.stated == "confirm_911_called"
            and state.incident_id is not None
            and not state.stamp("call911")
            and state.step != "call911"  # the step shown has the button already
        ):
            # "J'ai appelé le 911, on fait quoi?": the step, and the call's button under it.
            effects.append(_offer_911(protocol, state))
        return state, effects
    if intent in ANSWERED:
        if idle and intent in ("affirm", "deny"):
            # "ok" or "non" with no incident in progress: the answers to a yes and a no point
            # to a step's button, and there is none; where things stand, and the start button.
            return state, [_idle(protocol, state)]
        # A step may answer in its own words ("non" to "is anyone in danger?" is not "not yet").
        key = f"answer.{intent}"
        values: dict[str, object] = {}
        called = state.stamp("call911") if intent == "ask_call_911" else None
        if called is not None and state.incident_id is not None:
            # Once 911 is called, "how long will the police take?" is not answered with how
            # to call: the call's time, and what to do until the kit is collected.
            handed_over = state.stamp("waiting") is not None
            key = f"{key}.{'kit_collected' if handed_over else 'called'}"
            values = {"time": clock(protocol, called.at)}
        elif current is not None and f"{key}.{current.id}" in protocol.texts:
            key = f"{key}.{current.id}"
        answer = Say(protocol.text(key, language, **values))
        if idle:
            if intent in ("greet", "thank", "out_of_scope"):
                return state, [answer, _idle(protocol, state)]
            return state, [answer]
        return state, [answer, _pending(protocol, state, current)]
    # nlu_fallback, or an intent this version does not know
    if idle:
        return state, [Say(protocol.text("answer.fallback", language)), _idle(protocol, state)]
    return state, [Say(protocol.text("answer.fallback", language)), _show(protocol, state)]


def _unparsed(protocol: Protocol, state: State, current: Step | None) -> list[Effect]:
    """Typed text without any understanding of it: restate where we are."""
    language = state.language
    if current is None:
        return [_idle(protocol, state)]
    if current.input == "device_count":
        return [
            Say(protocol.text("devices.invalid", language), _buttons(protocol, state, current))
        ]
    if current.input == "event_number":
        return [Say(protocol.text("event.invalid", language), _buttons(protocol, state, current))]
    return [Say(protocol.text("freetext.buttons", language)), _show(protocol, state)]


def _pending(protocol: Protocol, state: State, current: Step | None) -> Say:
    """A short reminder of the current step with its buttons (the full text if unnamed)."""
    if current is None:
        return _idle(protocol, state)
    if current.checklist is None:
        return _show(protocol, state)
    label = protocol.text(f"title.{current.id}", state.language)
    return Say(
        protocol.text("answer.pending", state.language, step=label),
        _buttons(protocol, state, current),
    )


def _start_offer(protocol: Protocol, state: State) -> Say:
    language = state.language
    return Say(
        protocol.text("answer.start_incident", language),
        ((Button(protocol.text("idle.start", language), START_BUTTON),),),
        protect=False,
    )


def _emergency(protocol: Protocol, state: State) -> list[Effect]:
    """Someone may be in danger: 911 and crisis lines first, then back to where we were."""
    effects: list[Effect] = [Say(protocol.text("answer.emergency", state.language))]
    if state.step is None or protocol.step(state.step).terminal:
        effects.append(_start_offer(protocol, state))
    else:
        effects.append(_show(protocol, state))
    return effects


def _confirm(
    protocol: Protocol, state: State, current: Step | None, intent: str, event: UserSaid
) -> list[Effect]:
    """A typed confirmation: never recorded as such, answered with the button that records it."""
    language = state.language
    if current is None:
        return [_start_offer(protocol, state)]
    if state.incident_id is None:  # choosing the school or real/drill: nothing to record yet
        return [
            Say(protocol.text("confirm.not_open", language)),
            _pending(protocol, state, current),
        ]
    step_id = {
        "confirm_911_called": "call911",
        "confirm_devices_secured": "devices",
        "confirm_kit_collected": "waiting",
    }[intent]
    done = state.stamp(step_id)
    if done is not None:
        return [
            Say(protocol.text("confirm.already", language, time=clock(protocol, done.at))),
            _pending(protocol, state, current),
        ]
    if step_id == "call911":
        return [_offer_911(protocol, state)]
    if current.id != step_id:
        return [Say(protocol.text("confirm.later", language)), _pending(protocol, state, current)]
    if step_id == "devices":
        rows = _buttons(protocol, state, current)
        count = event.entity("device_count")
        if count is not None and count.isdecimal() and int(count) <= 99:
            label = protocol.text("confirm.devices_count", language, count=count)
            rows = ((Button(label, _callback(state, current.id, str(int(count)))),), *rows)
        return [Say(protocol.text("confirm.devices", language), rows)]
    return [Say(protocol.text("confirm.kit", language), _buttons(protocol, state, current))]


def _offer_911(protocol: Protocol, state: State) -> Say:
    """The button that records a typed "I called 911", whatever the step."""
    label = protocol.text("call911.called", state.language)
    data = _callback(state, CONFIRM_911, "call911")
    return Say(protocol.text("confirm.call_911", state.language), ((Button(label, data),),))


def _language(protocol: Protocol, state: State, language: str | None) -> Result:
    if language is None:
        language = "en" if state.language == "fr" else "fr"
    state = replace(state, language=language)
    switched = Say(protocol.text("lang.switched", language), protect=False)
    return state, [SetLanguage(language), switched, *_step_again(protocol, state)]


def _step_again(protocol: Protocol, state: State) -> list[Effect]:
    """The pending step shown again under a command's answer, its buttons at hand."""
    if state.step is not None and not protocol.step(state.step).terminal:
        return [_show(protocol, state)]
    return []


def _cancel_request(protocol: Protocol, state: State) -> Result:
    language = state.language
    if state.active:
        buttons = tuple(
            (Button(protocol.text(f"cancel.{key}", language), CANCEL_PREFIX + key),)
            for key in (*CANCEL_REASONS, "keep")
        )
        ask = protocol.text("cancel.ask", language, code=state.incident_code or "")
        return replace(state, awaiting="cancel_reason"), [Say(ask, buttons)]
    if state.preparing:
        return State(language=language), [Say(protocol.text("cancel.discarded", language))]
    return state, [Say(protocol.text("cancel.nothing", language))]


def _cancel_choice(protocol: Protocol, state: State, choice: str, now: datetime) -> Result:
    language = state.language
    if state.awaiting != "cancel_reason" or not state.active:
        return state, _stale(protocol, state, now)
    if choice == "keep":
        state = replace(state, awaiting=None)
        label = protocol.text("cancel.keep", language)
        return state, [
            _chosen(protocol, state, label, now),
            Say(protocol.text("cancel.kept", language)),
            _show(protocol, state),
        ]
    if choice not in CANCEL_REASONS:
        return state, _stale(protocol, state, now)
    label = protocol.text(f"cancel.{choice}", language)
    state, effects = _cancel(protocol, state, label, now)
    return state, [_chosen(protocol, state, label, now), *effects]


def _cancel(protocol: Protocol, state: State, reason: str, now: datetime) -> Result:
    language = state.language
    done = protocol.text(
        "cancel.done",
        language,
        code=state.incident_code or "",
        time=clock(protocol, now),
        reason=reason,
    )
    return State(language=language), [
        CancelIncident(reason),
        StopReminders(None),
        Say(done, protect=False),
    ]


def _reminder(protocol: Protocol, state: State, kind: str, number: int) -> list[Effect]:
    """A reminder's message, or nothing when it no longer applies (the shell then stops it)."""
    language = state.language
    if not state.active or state.step is None:
        return []
    if kind == "call_911":
        if state.step != "call911" or state.stamp("call911") is not None:
            return []
        shown = state.stamp("grid") or state.stamp("opened")
        since = clock(protocol, shown.at) if shown else ""
        text = protocol.text(
            "reminder.call_911",
            language,
            number=number,
            code=state.incident_code or "",
            since=since,
        )
        current = protocol.step("call911")
        return [Say(text, _buttons(protocol, state, current))]
    if kind == "stalled":
        return [Say(protocol.text("reminder.stalled", language)), _show(protocol, state)]
    return []
