"""The pure engine, step by step: what the professional sees and what the shell is asked to do."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from dialogues.effects import (
    AdvanceStatus,
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
from dialogues.engine import step
from dialogues.events import (
    ButtonPressed,
    CancelRequested,
    Event,
    HelpRequested,
    IncidentOpened,
    LanguageRequested,
    StartIncident,
    StatusRequested,
    UserSaid,
    language_request,
)
from dialogues.protocol import Protocol, load_protocol
from dialogues.state import SchoolRef, State

NORD = SchoolRef("nord", "École du Nord", "10, rue du Nord")
WEST = SchoolRef("west", "West High", None)
T0 = datetime(2026, 11, 21, 14, 30, tzinfo=UTC)  # 09:30 in Montréal


@pytest.fixture(scope="module")
def protocol() -> Protocol:
    return load_protocol()


class Walk:
    """Feeds events to the engine like the shell does, keeping the state and a minute clock."""

    def __init__(self, protocol: Protocol, language: str = "en") -> None:
        self.protocol = protocol
        self.state = State(language=language)
        self.now = T0
        self.effects: list[Effect] = []

    def __call__(self, event: Event, minutes: float = 1) -> list[Effect]:
        self.now += timedelta(minutes=minutes)
        self.state, self.effects = step(self.protocol, self.state, event, self.now)
        return self.effects

    def press(self, button: str) -> list[Effect]:
        return self(ButtonPressed(f"{self.state.incident_id or 0}:{self.state.step}:{button}"))

    def says(self) -> list[Say]:
        return [e for e in self.effects if isinstance(e, Say)]

    def text(self) -> str:
        return "\n".join(s.text for s in self.says())

    def buttons(self) -> list[str]:
        return [b.label for s in self.says() for row in s.buttons for b in row]

    def open(self, drill: bool = False, schools: tuple[SchoolRef, ...] = (NORD,)) -> None:
        self(StartIncident(schools))
        if len(schools) > 1:
            self.press(schools[0].id)
        self.press("drill" if drill else "real")
        self(IncidentOpened(42, "SX-2026-0042"), minutes=0)

    def to(self, target: str) -> None:
        """Walk the plain path (no danger, 2 phones) until ``target`` is the current step."""
        path = {
            "danger": "no",
            "never": "ok",
            "victim": "done",
            "devices": "2",
            "grid": "done",
            "call911": "called",
            "event_number": "skip",
            "waiting": "collected",
            "after": "done",
        }
        self.open()
        while self.state.step != target:
            assert self.state.step is not None
            self.press(path[self.state.step])


def test_one_school_goes_straight_to_real_or_drill(protocol: Protocol) -> None:
    walk = Walk(protocol)
    walk(StartIncident((NORD,)))
    assert walk.state.step == "mode"
    assert walk.state.school == NORD
    assert walk.buttons() == ["Real situation", "Drill"]


def test_several_schools_are_offered_as_buttons(protocol: Protocol) -> None:
    walk = Walk(protocol)
    walk(StartIncident((NORD, WEST)))
    assert walk.state.step == "school"
    assert walk.buttons() == ["École du Nord", "West High"]
    effects = walk.press("west")
    assert walk.state.school == WEST
    assert walk.state.step == "mode"
    assert any(isinstance(e, MarkChoice) and "West High" in e.text for e in effects)


def test_no_school_means_no_incident(protocol: Protocol) -> None:
    walk = Walk(protocol)
    walk(StartIncident(()))
    assert walk.state.step is None
    assert "No school is linked" in walk.text()


@pytest.mark.parametrize(("choice", "drill"), [("real", False), ("drill", True)])
def test_opening_waits_for_the_incident_then_shows_triage(
    protocol: Protocol, choice: str, drill: bool
) -> None:
    walk = Walk(protocol)
    walk(StartIncident((NORD,)))
    effects = walk.press(choice)
    assert OpenIncident("nord", drill=drill) in effects
    assert walk.says() == []  # nothing shown before the incident exists
    effects = walk(IncidentOpened(42, "SX-2026-0042"), minutes=0)
    assert NotifyOfficers("opened") in effects
    text = walk.text()
    assert "SX-2026-0042" in text
    assert "09:32" in text  # opened at 14:32 UTC, shown in Montréal time
    assert ("DRILL" in text) is drill
    assert "immediate danger" in text
    assert walk.says()[-1].buttons[0][0].data == "42:danger:yes"


TABLE = [
    # (step, button, next step, effects expected among others)
    ("danger", "no", "never", [StepCompleted("danger", "no")]),
    ("danger", "yes", "emergency", [StepCompleted("danger", "yes")]),
    ("never", "ok", "victim", [StepCompleted("never", "ok")]),
    ("victim", "done", "devices", [StepCompleted("victim", "done")]),
    ("devices", "3", "grid", [UpdateIncident(device_count=3)]),
    ("devices", "0", "grid", [UpdateIncident(device_count=0)]),
    ("grid", "done", "call911", [StartReminders("call_911")]),
    (
        "call911",
        "called",
        "event_number",
        [
            AdvanceStatus("police_called"),
            StopReminders("call_911"),
            NotifyOfficers("police_called"),
        ],
    ),
    ("event_number", "skip", "waiting", [StepCompleted("event_number", "skip")]),
    ("waiting", "collected", "after", [AdvanceStatus("kit_collected")]),
    ("after", "done", "summary", [AdvanceStatus("awaiting_decision"), StopReminders(None)]),
]


@pytest.mark.parametrize(("at", "button", "then", "expected"), TABLE)
def test_each_button_of_each_step(
    protocol: Protocol, at: str, button: str, then: str, expected: list[Effect]
) -> None:
    walk = Walk(protocol)
    walk.to(at)
    shown = walk.says()[-1]
    assert any(b.data == f"42:{at}:{button}" for row in shown.buttons for b in row)
    effects = walk.press(button)
    assert walk.state.step == then
    for effect in expected:
        assert effect in effects
    assert isinstance(effects[0], MarkChoice)  # the pressed message is closed with the choice
    assert walk.says(), "the next step is shown"


def test_checklist_steps_are_stamped_with_the_time(protocol: Protocol) -> None:
    walk = Walk(protocol)
    walk.to("grid")
    assert [s.step for s in walk.state.stamps] == [
        "opened",
        "danger",
        "never",
        "victim",
        "devices",
    ]
    assert walk.state.stamp("devices") is not None
    assert walk.state.stamp("devices").time == walk.now  # type: ignore[union-attr]


def test_emergency_call_skips_the_later_911_step(protocol: Protocol) -> None:
    walk = Walk(protocol)
    walk.open()
    walk.press("yes")
    assert "Call 911 now" in walk.text()
    assert "9-8-8" in walk.text()
    assert "DPJ" in walk.text()
    effects = walk.press("called")
    assert AdvanceStatus("police_called") in effects
    assert walk.state.step == "never"
    for button in ("ok", "done", "1"):
        walk.press(button)
    effects = walk.press("done")  # grid done: the 911 step is already done
    assert walk.state.step == "event_number"
    assert not any(isinstance(e, StartReminders) for e in effects)


def test_emergency_continue_keeps_the_911_step(protocol: Protocol) -> None:
    walk = Walk(protocol)
    walk.open()
    walk.press("yes")
    walk.press("continue")
    for button in ("ok", "done", "1", "done"):
        walk.press(button)
    assert walk.state.step == "call911"


@pytest.mark.parametrize(
    ("typed", "count"),
    [
        ("3", 3),
        (" 12 ", 12),
        ("0", 0),
        ("three", 3),
        ("deux", 2),
        ("juste un", 1),
        ("2 phones", 2),
    ],
)
def test_typed_device_count(protocol: Protocol, typed: str, count: int) -> None:
    """The step says "press a number or type it": in digits or in words, as if pressed."""
    walk = Walk(protocol)
    walk.to("devices")
    effects = walk(UserSaid(typed))
    assert UpdateIncident(device_count=count) in effects
    assert walk.state.device_count == count
    assert walk.state.step == "grid"


@pytest.mark.parametrize("typed", ["aucun", "none", "y en a pas"])
def test_none_typed_asks_which_none_it_is(protocol: Protocol, typed: str) -> None:
    """None to seize, or none bagged yet? Not recorded as 0 phones: the buttons say which."""
    walk = Walk(protocol)
    walk.to("devices")
    effects = walk(UserSaid(typed))
    assert walk.state.step == "devices"
    assert 'Press "None to seize". If they are not bagged yet' in walk.text()
    assert "None to seize" in walk.buttons()
    assert not any(isinstance(e, UpdateIncident) for e in effects)


@pytest.mark.parametrize("typed", ["-1", "100", "", "deux minutes", "beaucoup", "2 or 3"])
def test_bad_device_count_is_refused_with_the_buttons(protocol: Protocol, typed: str) -> None:
    walk = Walk(protocol)
    walk.to("devices")
    walk(UserSaid(typed))
    assert walk.state.step == "devices"
    assert "Type the number of phones" in walk.text()
    assert "None to seize" in walk.buttons()


def test_event_number_typed_is_recorded(protocol: Protocol) -> None:
    walk = Walk(protocol)
    walk.to("event_number")
    effects = walk(UserSaid("2026-123456"))
    assert UpdateIncident(event_number="2026-123456") in effects
    assert walk.state.step == "waiting"
    assert "Event number 2026-123456 recorded" in walk.text()


@pytest.mark.parametrize("typed", ["what now?", "x" * 41, "<b>1</b>"])
def test_text_that_is_not_an_event_number(protocol: Protocol, typed: str) -> None:
    walk = Walk(protocol)
    walk.to("event_number")
    walk(UserSaid(typed))
    assert walk.state.step == "event_number"
    assert walk.state.event_number is None
    assert "Skip" in walk.buttons()


def test_free_text_restates_the_step_without_pretending(protocol: Protocol) -> None:
    walk = Walk(protocol)
    walk.to("victim")
    walk(UserSaid("she is crying, what do I do"))
    assert walk.state.step == "victim"
    assert "cannot read typed messages" in walk.text()
    assert "Take charge of the victim" in walk.text()
    assert walk.buttons() == ["Done"]


def test_free_text_when_idle_offers_to_start(protocol: Protocol) -> None:
    walk = Walk(protocol)
    walk(UserSaid("bonjour"))
    assert walk.says()[0].buttons[0][0].data == "start"


@pytest.mark.parametrize(("text", "intent"), [("ok", "affirm"), ("nope", "deny")])
@pytest.mark.parametrize("at", [None, "summary"])
def test_a_yes_or_a_no_with_no_incident_in_progress_offers_to_start(
    protocol: Protocol, text: str, intent: str, at: str | None
) -> None:
    """Before any incident or after one is closed, there is no step's button to point to."""
    walk = Walk(protocol)
    if at is not None:
        walk.to(at)
    walk(said(text, intent))
    assert "No incident in progress" in walk.text()
    assert "press the button:" not in walk.text()
    assert walk.buttons() == ["Open an incident"]


@pytest.mark.parametrize(
    "data", ["42:danger:no", "0:never:ok", "41:never:ok", "42:never:nope", "garbage", "1:2:3:4"]
)
def test_stale_or_forged_buttons_change_nothing(protocol: Protocol, data: str) -> None:
    walk = Walk(protocol)
    walk.to("never")
    before = walk.state
    effects = walk(ButtonPressed(data))
    assert walk.state == before
    assert not any(isinstance(e, StepCompleted | AdvanceStatus) for e in effects)
    assert "earlier step" in walk.text()


def test_cancel_asks_why_and_records_the_typed_reason(protocol: Protocol) -> None:
    walk = Walk(protocol)
    walk.to("grid")
    walk(CancelRequested())
    assert "Why cancel incident SX-2026-0042" in walk.text()
    assert walk.buttons() == ["Opened by mistake", "Not a SEXTO situation", "Don't cancel"]
    effects = walk(UserSaid("The students were adults visiting"))
    assert CancelIncident("The students were adults visiting") in effects
    assert StopReminders(None) in effects
    assert walk.state.incident_id is None
    assert walk.state.step is None


def test_cancel_by_button_and_keep_going(protocol: Protocol) -> None:
    walk = Walk(protocol)
    walk.to("victim")
    walk(CancelRequested())
    walk(ButtonPressed("cancel:keep"))
    assert walk.state.step == "victim"
    assert walk.state.awaiting is None
    walk(CancelRequested())
    effects = walk(ButtonPressed("cancel:mistake"))
    assert CancelIncident("Opened by mistake") in effects


def test_cancel_before_opening_and_with_nothing_open(protocol: Protocol) -> None:
    walk = Walk(protocol)
    walk(CancelRequested())
    assert "no incident in progress" in walk.text()
    walk(StartIncident((NORD, WEST)))
    effects = walk(CancelRequested())
    assert not any(isinstance(e, CancelIncident) for e in effects)
    assert walk.state.step is None


def test_restart_mid_flow_resumes_from_the_saved_state(protocol: Protocol) -> None:
    walk = Walk(protocol)
    walk.to("devices")
    saved = json.loads(json.dumps(walk.state.to_dict()))
    restored = Walk(protocol)
    restored.state = State.from_dict(saved)
    restored.now = walk.now
    assert restored.state == walk.state
    restored.press("2")
    assert restored.state.step == "grid"
    assert restored.state.device_count == 2


def test_a_second_incident_waits_for_the_first(protocol: Protocol) -> None:
    walk = Walk(protocol)
    walk.to("grid")
    walk(StartIncident((NORD,)))
    assert walk.state.step == "grid"
    assert "still in progress" in walk.text()


def test_status_lists_steps_with_their_times(protocol: Protocol) -> None:
    walk = Walk(protocol)
    walk(StatusRequested())
    assert "No incident in progress" in walk.text()
    walk.to("call911")
    walk(StatusRequested())
    text = walk.text()
    assert "SX-2026-0042" in text
    assert "✅ 09:33 Incident opened" in text
    assert "✅ 09:34 Immediate danger checked" in text
    assert "✅ 09:37 Phones bagged: 2 phone(s)" in text
    assert "⬜ 911 called" in text
    assert "Current step: Call 911" in text


def test_finishing_shows_a_summary_and_frees_the_member(protocol: Protocol) -> None:
    walk = Walk(protocol)
    walk.to("after")
    walk.press("done")
    text = walk.text()
    assert "Summary of incident SX-2026-0042" in text
    assert "awaiting the DPCP's decision" in text
    assert "⬜" not in text
    walk(StartIncident((NORD,)))
    assert walk.state.step == "mode"


def test_incident_soon_after_the_end_shows_the_summary_again(protocol: Protocol) -> None:
    """The summary may have been lost (a crash right after the last step was saved): asking
    for /incident within 10 minutes shows it again before the new incident's first step."""
    walk = Walk(protocol)
    walk.to("after")
    walk.press("done")
    summary = walk.text()
    effects = walk(StartIncident((NORD,)), minutes=9)
    said = [e.text for e in effects if isinstance(e, Say)]
    assert said[0] == summary
    assert len(said) == 2  # then the new incident's first question
    assert walk.state.step == "mode"
    # A second /incident, or one long after the end, starts afresh without it.
    again = walk(StartIncident((NORD,)), minutes=1)
    assert not any("Summary of incident" in e.text for e in again if isinstance(e, Say))

    later = Walk(protocol)
    later.to("after")
    later.press("done")
    effects = later(StartIncident((NORD,)), minutes=11)
    assert not any("Summary of incident" in e.text for e in effects if isinstance(e, Say))
    assert later.state.step == "mode"


def test_the_last_button_pressed_again_soon_shows_the_summary_again(protocol: Protocol) -> None:
    """Telegram hands a press over again when the program stopped before confirming it: after
    a crash right after the last step was saved, that press brings back the lost summary."""
    walk = Walk(protocol)
    walk.to("after")
    last = f"{walk.state.incident_id}:after:done"
    walk(ButtonPressed(last))
    summary = walk.text()
    finished = walk.state
    effects = walk(ButtonPressed(last), minutes=2)
    assert [e.text for e in effects if isinstance(e, Say)] == [summary]
    assert walk.state == finished
    assert not any(isinstance(e, StepCompleted | AdvanceStatus) for e in effects)
    walk(ButtonPressed(f"{walk.state.incident_id}:grid:done"), minutes=1)  # an older button
    assert walk.text() == summary
    # Long after the end, an old button only offers to open a new incident.
    walk(ButtonPressed(last), minutes=11)
    assert "Summary of incident" not in walk.text()
    assert walk.says()[-1].buttons[0][0].data == "start"


def test_a_press_handed_over_again_shows_its_step_again_without_doing_it_twice(
    protocol: Protocol,
) -> None:
    """After a crash between saving a step and confirming its update, Telegram hands the same
    press over again: the next step comes again as if for the first time, with the same choice
    marked, and nothing is done twice. Another press of that button is still an old button."""
    walk = Walk(protocol)
    walk.to("call911")
    called = f"{walk.state.incident_id}:call911:called"
    first = walk(ButtonPressed(called, press="q-1"))
    [chosen] = [e for e in first if isinstance(e, MarkChoice)]
    next_step = walk.says()
    after = walk.state

    again = walk(ButtonPressed(called, press="q-1"), minutes=0.5)
    assert again == [chosen, *next_step]
    assert walk.state == after
    assert "earlier step" not in walk.text()

    walk(ButtonPressed(called, press="q-2"), minutes=0.5)  # a second tap on the same button
    assert walk.text().startswith("That button belongs to an earlier step.")
    assert not any(isinstance(e, MarkChoice) for e in walk.effects)
    assert walk.state == after
    # The next press moves on and becomes the one remembered.
    walk(ButtonPressed(f"{walk.state.incident_id}:event_number:skip", press="q-3"))
    assert walk.state.step == "waiting"
    walk(ButtonPressed(called, press="q-1"))
    assert walk.text().startswith("That button belongs to an earlier step.")


def test_a_press_handed_over_again_after_the_last_step_shows_the_summary_and_its_mark(
    protocol: Protocol,
) -> None:
    walk = Walk(protocol)
    walk.to("after")
    last = ButtonPressed(f"{walk.state.incident_id}:after:done", press="q-9")
    walk(last)
    summary = walk.text()
    [chosen] = [e for e in walk.effects if isinstance(e, MarkChoice)]
    assert walk(last, minutes=0.5) == [chosen, Say(summary)]


def test_a_typed_message_handed_over_again_shows_where_it_led_without_doing_it_twice(
    protocol: Protocol,
) -> None:
    """The event number typed, saved, then its reply lost in a crash: Telegram hands the same
    message over again, and the step it led to comes again, nothing recorded twice. The same
    text typed again (a new message) is read again, as before."""
    walk = Walk(protocol)
    walk.to("event_number")
    walk(UserSaid("2026-123456", message="77"))
    assert "Event number 2026-123456 recorded" in walk.text()
    waiting = walk.says()[-1]
    after = walk.state

    again = walk(UserSaid("2026-123456", message="77"), minutes=0.5)
    assert again == [waiting]
    assert walk.state == after

    walk(UserSaid("2026-123456", message="78"), minutes=0.5)
    assert "Event number 2026-123456 recorded" not in walk.text()
    assert walk.says()[-1] == waiting


def test_a_question_handed_over_again_is_answered_again(protocol: Protocol) -> None:
    """A question moves nothing on: handed over again, it is answered again (its answer may
    be what was lost)."""
    walk = Walk(protocol)
    walk.to("devices")
    question = UserSaid("can I look?", intent="ask_view_image", confidence=0.9, message="12")
    first = walk(question)
    assert walk(question) == first


def test_language_switch_restates_the_step(protocol: Protocol) -> None:
    walk = Walk(protocol, language="fr")
    walk.to("never")
    effects = walk(LanguageRequested(None))
    assert SetLanguage("en") in effects
    assert walk.state.language == "en"
    assert "Never, at any time" in walk.text()
    walk(LanguageRequested("fr"))
    assert "Jamais, à aucun moment" in walk.text()


@pytest.mark.parametrize(
    ("typed", "wanted"),
    [
        ("", LanguageRequested(None)),
        ("en", LanguageRequested("en")),
        ("English", LanguageRequested("en")),
        ("anglais", LanguageRequested("en")),
        ("FR", LanguageRequested("fr")),
        ("  français please", LanguageRequested("fr")),
        ("french", LanguageRequested("fr")),
        ("de", LanguageRequested(None, unknown="de")),
        ("español", LanguageRequested(None, unknown="español")),
    ],
)
def test_the_lang_argument_is_a_code_or_a_name(typed: str, wanted: LanguageRequested) -> None:
    assert language_request(typed) == wanted


def test_a_language_the_guide_does_not_speak_switches_nothing(protocol: Protocol) -> None:
    """'/lang de' used to switch to the other language; '/lang anglais' from English, to French."""
    walk = Walk(protocol, language="en")
    walk.to("never")
    step_shown = walk.says()[-1]
    effects = walk(language_request("<b>deutsch</b>"))
    assert walk.state.language == "en"
    assert not any(isinstance(e, SetLanguage) for e in effects)
    assert "I speak only French and English" in walk.says()[0].text
    assert "&lt;b&gt;deutsch&lt;/b&gt;" in walk.says()[0].text  # what was typed, escaped
    assert walk.says()[-1] == step_shown  # and the pending step again, its buttons at hand
    walk(language_request("anglais"))
    assert walk.state.language == "en"
    french = Walk(protocol, language="fr")
    french(language_request("de"))
    assert french.state.language == "fr"
    assert "Je ne parle que français et anglais" in french.text()


def test_help_lists_the_commands(protocol: Protocol) -> None:
    walk = Walk(protocol, language="fr")
    walk(HelpRequested())
    for command in ("/incident", "/status", "/cancel", "/lang", "/help"):
        assert command in walk.text()
    assert walk.buttons() == []  # no incident: nothing to show again


def test_help_in_an_incident_shows_the_pending_step_again(protocol: Protocol) -> None:
    """The help pushes the step's buttons up the screen; they come back under it."""
    walk = Walk(protocol, language="fr")
    walk.to("devices")
    step_shown = walk.says()[-1]
    walk(HelpRequested())
    assert "/incident" in walk.says()[0].text
    assert walk.says()[-1] == step_shown
    assert walk.state.step == "devices"


def test_school_names_are_escaped(protocol: Protocol) -> None:
    walk = Walk(protocol)
    walk(StartIncident((replace(NORD, name="<b>Nord</b> & Co"),)))
    walk.press("real")
    walk(IncidentOpened(1, "SX-2026-0001"))
    assert "&lt;b&gt;Nord&lt;/b&gt; &amp; Co" in walk.text()


# ---- typed messages with what the NLU understood ------------------------------------------------


def labels(protocol: Protocol, language: str, *keys: str) -> list[str]:
    """The buttons' labels of these text keys, in ``language``."""
    return [protocol.text(key, language) for key in keys]


def answered_in_place(walk: Walk, event: Event, answer: str, *button_keys: str) -> list[Effect]:
    """``event``'s effects, checked to give ``answer`` with the step's buttons and no move."""
    before = walk.state
    effects = walk(event)
    assert answer in walk.text()
    assert walk.buttons() == labels(walk.protocol, walk.state.language, *button_keys)
    assert walk.state == before
    return effects


def said(text: str, intent: str, **entities: str) -> UserSaid:
    return UserSaid(text, intent, 0.9, tuple(entities.items()))


def test_below_the_threshold_the_bot_says_it_did_not_understand(protocol: Protocol) -> None:
    walk = Walk(protocol)
    walk.to("victim")
    walk(said("hmm", "nlu_fallback"))
    assert "I did not understand" in walk.text()
    assert walk.buttons() == ["Done"]
    assert walk.state.step == "victim"


@pytest.mark.parametrize(
    ("intent", "answer"),
    [
        ("ask_view_image", "Never look at the images"),
        ("ask_share_image", "Never forward, send, show or share"),
        ("ask_copy_image", "No screenshot"),
        ("ask_delete_image", "Do not delete anything"),
        ("report_received_image", "on your own device"),
        ("ask_device_handling", "Confiscate the phones"),
        ("ask_return_device", "do not give any phone back"),
        ("ask_call_911", "Call 911 yourself, the same day"),
        ("ask_parents", "information sheets"),
        ("ask_victim_support", "Kids Help Phone"),
        ("ask_dpj", "report to the DPJ without delay"),
        ("ask_legal", "I cannot predict that decision"),
        ("ask_confidentiality", "need to know"),
        ("out_of_scope", "only help with the SEXTO protocol"),
    ],
)
def test_questions_are_answered_then_the_step_is_offered_again(
    protocol: Protocol, intent: str, answer: str
) -> None:
    walk = Walk(protocol)
    walk.to("grid")
    before = walk.state
    effects = walk(said("...", intent))
    assert answer in walk.text()
    assert "Current step: Fill in the evaluation grid" in walk.text()
    assert walk.buttons() == ["Grid filled in"]
    assert walk.state == before
    assert not any(isinstance(e, StepCompleted | AdvanceStatus | UpdateIncident) for e in effects)


@pytest.mark.parametrize(
    ("intent", "answer", "language"),
    [
        ("deny", 'Noted. To go on, press "No immediate danger"', "en"),
        ("affirm", "call 911 now", "en"),
        ("deny", "appuyez sur « Non, pas de danger immédiat »", "fr"),
        ("affirm", "appelez le 911 maintenant", "fr"),
    ],
)
def test_yes_or_no_typed_at_the_danger_question_answers_it_and_waits_for_the_button(
    protocol: Protocol, intent: str, answer: str, language: str
) -> None:
    """Not "when it is done": the question was whether anyone is in danger. The answer
    stays a button press, as every step's (the state never changes on the NLU alone)."""
    walk = Walk(protocol, language)
    walk.to("danger")
    answered_in_place(walk, said("...", intent), answer, "danger.yes", "danger.no")
    assert "When it is done" not in walk.text()


@pytest.mark.parametrize(
    ("text", "intent", "language", "answer"),
    [
        ("not sure", "deny", "en", "When in doubt, act as if there were a danger"),
        ("idk", "affirm", "en", "When in doubt, act as if there were a danger"),
        ("je sais pas", "deny", "fr", "Dans le doute, faites comme s'il y avait un danger"),
        ("peut-être", "ask_legal", "fr", "Dans le doute, faites comme s'il y avait un danger"),
        ("pas sûr", "nlu_fallback", "fr", "Dans le doute, faites comme s'il y avait un danger"),
        ("euh", "nlu_fallback", "fr", "Dans le doute, faites comme s'il y avait un danger"),
        ("hmm", "nlu_fallback", "en", "When in doubt, act as if there were a danger"),
    ],
)
def test_doubt_at_the_danger_question_is_told_to_call_911_not_to_press_no(
    protocol: Protocol, text: str, intent: str, language: str, answer: str
) -> None:
    """ "Not sure" read as a no got "Noted. To go on, press No immediate danger"."""
    walk = Walk(protocol, language)
    walk.to("danger")
    answered_in_place(walk, said(text, intent), answer, "danger.yes", "danger.no")
    assert protocol.text("answer.deny.danger", language) not in walk.text()


def test_doubt_at_another_step_keeps_that_steps_answer(protocol: Protocol) -> None:
    """ "Je sais pas" at the grid is a "not yet", answered as one."""
    walk = Walk(protocol, "fr")
    walk.to("grid")
    walk(said("je sais pas", "deny"))
    assert protocol.text("answer.deny", "fr") in walk.text()
    assert "Dans le doute" not in walk.text()


@pytest.mark.parametrize("language", ["en", "fr"])
def test_a_question_on_the_phones_while_waiting_says_who_keeps_them(
    protocol: Protocol, language: str
) -> None:
    """ "Can the secretary hold the bags until the police get here?" once they are bagged."""
    walk = Walk(protocol, language)
    walk.to("waiting")
    walk(said("can the secretary hold the bags until the police get here?", "ask_device_handling"))
    keep = {
        "en": "keep the bags locked away, under your control",
        "fr": "gardez les sacs sous clé",
    }
    assert keep[language] in walk.text()


@pytest.mark.parametrize(
    ("text", "language", "answer"),
    [
        ("we ran out of bags", "en", "No bag left, or no kit? Do not improvise"),
        ("y reste pu de sacs dans la trousse", "fr", "Plus de sac ou pas de trousse ?"),
    ],
)
def test_no_bag_left_at_the_phones_step_says_how_to_keep_them(
    protocol: Protocol, text: str, language: str, answer: str
) -> None:
    """A kit without bags got only "put each one in a kit bag"."""
    walk = Walk(protocol, language)
    walk.to("devices")
    before = walk.state
    walk(said(text, "ask_device_handling"))
    assert answer in walk.text()
    assert walk.state == before


@pytest.mark.parametrize(
    ("text", "intent", "language", "answer"),
    [
        ("just a drill", "confirm_911_called", "en", 'A drill: press "Drill"'),
        ("it's real", "nlu_fallback", "en", 'A real situation: press "Real situation"'),
        ("c'est pas un exercice", "deny", "fr", "appuyez sur « Situation réelle »"),
        ("yes", "affirm", "en", "A real situation or a drill? Press the button that fits"),
        ("non", "deny", "fr", "Situation réelle ou exercice ? Appuyez sur le bouton"),
    ],
)
def test_real_or_drill_typed_says_which_button_opens_the_incident(
    protocol: Protocol, text: str, intent: str, language: str, answer: str
) -> None:
    """ "just a drill" got "the incident is not open yet: answer this first", "it's real" was
    not understood and "yes" was told to press "the button" of two."""
    walk = Walk(protocol, language)
    walk(StartIncident((NORD,)))
    effects = answered_in_place(walk, said(text, intent), answer, "mode.real", "mode.drill")
    assert not any(isinstance(e, OpenIncident | StepCompleted) for e in effects)


def test_real_or_drill_named_later_is_not_taken_for_the_mode(protocol: Protocol) -> None:
    walk = Walk(protocol)
    walk.to("danger")
    walk(said("it's real", "nlu_fallback"))
    assert "Real situation" not in walk.text()
    assert "I did not understand" in walk.text()


@pytest.mark.parametrize(
    ("text", "intent", "language", "answer"),
    [
        ("ils m'ont pas donné de numéro", "deny", "fr", "Pas de numéro d'événement ? Appuyez"),
        ("no number", "deny", "en", 'No event number? Press "Skip"'),
        ("ok", "affirm", "en", 'Type the event number as 911 gave it, or press "Skip"'),
    ],
)
def test_yes_or_no_at_the_event_number_says_to_type_it_or_skip(
    protocol: Protocol, text: str, intent: str, language: str, answer: str
) -> None:
    """ "Pas de numéro" got "OK. When it is done, press the button", with nothing to do."""
    walk = Walk(protocol, language)
    walk.to("event_number")
    answered_in_place(walk, said(text, intent), answer, "event.skip")


@pytest.mark.parametrize(
    ("text", "language", "answer"),
    [
        ("still no patrol car after an hour", "en", "The police have not come yet? How soon"),
        ("la police est pas encore venue", "fr", "La police n'est pas encore passée ?"),
    ],
)
def test_not_yet_while_waiting_for_the_police_says_what_to_do_meanwhile(
    protocol: Protocol, text: str, language: str, answer: str
) -> None:
    """ "Still no patrol car after an hour" got "OK. When it is done, press the button"."""
    walk = Walk(protocol, language)
    walk.to("waiting")
    answered_in_place(walk, said(text, "deny"), answer, "waiting.collected")


@pytest.mark.parametrize(
    ("intent", "language", "answer"),
    [
        ("affirm", "en", 'If 911 is called, press "I called 911"; otherwise'),
        ("deny", "en", 'Call 911 now if someone is in danger. Once the call is made, press "I'),
        ("affirm", "fr", "Si le 911 est appelé, appuyez sur « J'ai appelé le 911 »"),
        ("deny", "fr", "Appelez le 911 maintenant si quelqu'un est en danger"),
    ],
)
def test_yes_or_no_at_the_emergency_step_says_which_button(
    protocol: Protocol, intent: str, language: str, answer: str
) -> None:
    """ "done" got "To record it, press the button" over two buttons; "not yet" got "When it is
    done, press the button" while someone may be in danger."""
    walk = Walk(protocol, language)
    walk.open()
    walk.press("yes")
    assert walk.state.step == "emergency"
    answered_in_place(walk, said("...", intent), answer, "emergency.called", "emergency.continue")


@pytest.mark.parametrize(
    ("language", "text", "answer"),
    [
        ("en", "911 wants the students' names, do I give them?", "follow their instructions"),
        ("fr", "le répartiteur veut le nom des élèves, je lui dis?", "suivez ses consignes"),
    ],
)
def test_the_dispatchers_questions_during_the_call_are_answered(
    protocol: Protocol, language: str, text: str, answer: str
) -> None:
    """What to say to 911 listed what to give, not what to do with the dispatcher's questions."""
    walk = Walk(protocol, language)
    walk.to("call911")
    answered_in_place(walk, said(text, "ask_call_911"), answer, "call911.called")
    assert {"en": "never here", "fr": "jamais ici"}[language] in walk.text()


@pytest.mark.parametrize(
    ("step", "text", "intent", "language", "answer"),
    [
        ("call911", "I called 911 but the call dropped", "confirm_911_called", "en", "again"),
        ("call911", "j'ai appelé, c'était occupé", "confirm_911_called", "fr", "rappelez le 911"),
        ("call911", "tried calling but it cut off", "deny", "en", "call 911 again right away"),
        ("devices", "le 911 répond pas", "ask_call_911", "fr", "rappelez le 911 tout de suite"),
        ("emergency", "the line is busy", "nlu_fallback", "en", "call 911 again right away"),
    ],
)
def test_a_call_that_did_not_go_through_is_answered_call_again(
    protocol: Protocol, step: str, text: str, intent: str, language: str, answer: str
) -> None:
    """ "I called 911 but the call dropped" was offered the button that records the call;
    "tried calling but it cut off" got "OK. When it is done, press the button"."""
    walk = Walk(protocol, language)
    if step == "emergency":
        walk.open()
        walk.press("yes")
    else:
        walk.to(step)
    before = walk.state
    walk(said(text, None if intent == "nlu_fallback" else intent))
    assert answer in walk.text()
    assert walk.state == before
    record = protocol.text("call911.called", language)
    assert walk.buttons().count(record) == (step != "devices")  # the step's own button only


@pytest.mark.parametrize(
    ("step", "text"),
    [
        ("waiting", "the line was busy"),  # 911 is recorded already
        ("devices", "I called his mom, no answer"),  # another call, away from the 911 step
    ],
)
def test_another_call_or_one_after_911_is_recorded_is_not_answered_call_again(
    protocol: Protocol, step: str, text: str
) -> None:
    walk = Walk(protocol, "en")
    walk.to(step)
    walk(said(text, "deny"))
    assert "call 911 again right away" not in walk.text()


def test_puzzlement_at_the_danger_question_is_not_a_doubt(protocol: Protocol) -> None:
    """ "hein?" did not understand the question: it is shown again, not taken for a doubt."""
    walk = Walk(protocol, "fr")
    walk.to("danger")
    walk(said("hein?", "nlu_fallback"))
    assert "Je n'ai pas compris" in walk.text()
    assert "Dans le doute" not in walk.text()
    assert walk.state.step == "danger"


@pytest.mark.parametrize(
    ("at", "answer"),
    [
        ("event_number", "A patrol officer will come to the school for the kit"),
        ("waiting", "A patrol officer will come to the school for the kit"),
        ("after", "the kit is with the police"),
    ],
)
def test_once_911_is_called_a_question_on_calling_gives_the_calls_time(
    protocol: Protocol, at: str, answer: str
) -> None:
    """ "How long will the police take?" after the call is not answered with how to call."""
    walk = Walk(protocol)
    walk.to(at)
    before = walk.state
    walk(said("how long will the police take to show up?", "ask_call_911"))
    assert "The 911 call is" in walk.text()
    assert "recorded for this incident, at 09:" in walk.text()
    assert answer in walk.text()
    assert "Call 911 yourself" not in walk.text()
    assert walk.state == before


def test_911_called_from_the_danger_step_is_the_call_later_questions_hear_of(
    protocol: Protocol,
) -> None:
    walk = Walk(protocol, "fr")
    walk.open()
    walk.press("yes")
    walk.press("called")
    walk.press("ok")
    walk(said("la police arrive quand?", "ask_call_911"))
    assert "L'appel au 911 est déjà noté pour cet incident, à 09:3" in walk.text()
    assert "Appelez le 911 vous-même" not in walk.text()


def test_before_911_is_called_a_question_on_calling_says_how(protocol: Protocol) -> None:
    walk = Walk(protocol)
    walk.to("grid")
    walk(said("how long will the police take to show up?", "ask_call_911"))
    assert "Call 911 yourself, the same day" in walk.text()


def test_no_typed_at_a_later_step_still_means_not_yet(protocol: Protocol) -> None:
    walk = Walk(protocol)
    walk.to("grid")
    walk(said("not yet", "deny"))
    assert "When it is done, press the button" in walk.text()


@pytest.mark.parametrize("at", ["mode", "never", "call911", "event_number"])
def test_an_emergency_at_any_step_says_911_then_returns(protocol: Protocol, at: str) -> None:
    walk = Walk(protocol)
    if at == "mode":
        walk(StartIncident((NORD,)))
    else:
        walk.to(at)
    before = walk.state
    walk(said("elle veut mourir", "emergency"))
    assert "call 911 now" in walk.text()
    assert "9-8-8" in walk.text()
    assert walk.state == before
    assert walk.buttons()  # the step it was on, with its buttons


def test_an_emergency_wins_over_a_pending_cancel_reason(protocol: Protocol) -> None:
    walk = Walk(protocol)
    walk.to("grid")
    walk(CancelRequested())
    effects = walk(said("he says he will hurt himself", "emergency"))
    assert not any(isinstance(e, CancelIncident) for e in effects)
    assert "call 911 now" in walk.text()


@pytest.mark.parametrize(
    ("intent", "step", "expected"),
    [
        ("confirm_911_called", "call911", "0:confirm:call911"),
        ("confirm_kit_collected", "waiting", "42:waiting:collected"),
    ],
)
def test_typed_confirmations_only_offer_a_button(
    protocol: Protocol, intent: str, step: str, expected: str
) -> None:
    walk = Walk(protocol)
    walk.to(step)
    before = walk.state
    effects = walk(said("done", intent))
    assert walk.state == before
    assert not any(isinstance(e, AdvanceStatus) for e in effects)
    data = [b.data for s in walk.says() for row in s.buttons for b in row]
    assert expected.replace("0:", "42:") in data


@pytest.mark.parametrize("schools", [(NORD,), (NORD, WEST)])
@pytest.mark.parametrize("intent", ["confirm_911_called", "confirm_devices_secured"])
def test_a_confirmation_while_the_incident_is_being_opened_keeps_to_the_question(
    protocol: Protocol, intent: str, schools: tuple[SchoolRef, ...]
) -> None:
    walk = Walk(protocol)
    walk(StartIncident(schools))
    before = walk.state
    walk(said("j'ai appelé le 911", intent))
    assert walk.state == before
    assert "The incident is not open yet" in walk.text()
    # The question being answered, with its buttons; not an offer to open another incident.
    assert walk.buttons() == (
        ["École du Nord", "West High"] if len(schools) > 1 else ["Real situation", "Drill"]
    )


def test_called_911_now_what_shows_the_step_and_the_button_that_records_the_call(
    protocol: Protocol,
) -> None:
    walk = Walk(protocol)
    walk.to("victim")
    step_shown = walk.says()[-1]
    text = "I called 911 already. Now what"
    walk(UserSaid(text, "ask_next_step", 0.7, (), stated="confirm_911_called"))
    assert step_shown in walk.says()
    assert walk.says()[-1].buttons[0][0].data == "42:confirm:call911"
    assert walk.state.stamp("call911") is None  # recorded only on the button
    walk(ButtonPressed("42:confirm:call911"))
    assert walk.state.stamp("call911") is not None
    assert walk.state.step == "victim"  # the step still to do


@pytest.mark.parametrize(
    ("step", "stated"),
    [("call911", "confirm_911_called"), ("waiting", "confirm_911_called"), ("victim", None)],
)
def test_now_what_without_a_911_call_to_record_shows_the_step_only(
    protocol: Protocol, step: str, stated: str | None
) -> None:
    walk = Walk(protocol)
    walk.to(step)
    walk(UserSaid("now what", "ask_next_step", 0.7, (), stated=stated))
    assert [s.buttons for s in walk.says()][-1] == walk.says()[1].buttons  # the step's own
    assert "42:confirm:call911" not in [b.data for s in walk.says() for r in s.buttons for b in r]


def test_a_confirmation_already_recorded_says_when(protocol: Protocol) -> None:
    walk = Walk(protocol)
    walk.to("waiting")
    walk(said("j'ai appelé le 911", "confirm_911_called"))
    assert "already recorded (09:38)" in walk.text()


def test_a_typed_phone_count_becomes_a_button(protocol: Protocol) -> None:
    walk = Walk(protocol)
    walk.to("devices")
    walk(said("7 cells in the bags", "confirm_devices_secured", device_count="7"))
    assert walk.buttons()[0] == "7 phone(s) bagged"
    effects = walk.press("7")
    assert UpdateIncident(device_count=7) in effects
    assert walk.state.step == "grid"


def test_an_event_number_inside_a_sentence(protocol: Protocol) -> None:
    walk = Walk(protocol)
    walk.to("event_number")
    walk(said("le numéro c'est 2026-5551", "nlu_fallback", event_number="2026-5551"))
    assert walk.state.event_number == "2026-5551"
    assert walk.state.step == "waiting"


@pytest.mark.parametrize(
    ("typed", "intent", "recorded"),
    [
        ("EV-2026-777", "affirm", "EV-2026-777"),  # an engine's misreading changes nothing
        ("2026-104522", "nlu_fallback", "2026-104522"),
        ("EV-1", "ask_legal", "EV-1"),  # short, but letters glued to digits
        ("SQ26", "out_of_scope", "SQ26"),
        ("ok 10-4", "affirm", None),  # a short number answered as what it says
        ("10-4", "affirm", None),
        ("911", "ask_call_911", None),
    ],
)
def test_a_typed_event_number_is_recorded_whatever_the_nlu_made_of_it(
    protocol: Protocol, typed: str, intent: str, recorded: str | None
) -> None:
    walk = Walk(protocol)
    walk.to("event_number")
    walk(said(typed, intent))
    assert walk.state.event_number == recorded
    assert walk.state.step == ("waiting" if recorded else "event_number")


def test_asking_to_start_offers_the_button(protocol: Protocol) -> None:
    walk = Walk(protocol)
    walk(said("I need to report a sexting case", "start_incident"))
    assert walk.says()[0].buttons[0][0].data == "start"
