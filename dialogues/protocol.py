"""The protocol as data: steps of the flow and the texts, loaded from YAML and checked."""

from __future__ import annotations

import html
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

HERE = Path(__file__).resolve().parent
LANGUAGES = ("fr", "en")
ACTIONS = frozenset({"open_real", "open_drill", "confirm_911", "kit_collected", "finish"})
ENTER_ACTIONS = frozenset({"start_911_reminders"})
INPUTS = frozenset({"device_count", "event_number"})


class ProtocolError(Exception):
    """The flow or the texts are inconsistent."""


@dataclass(frozen=True)
class ButtonSpec:
    """A button of a step."""

    id: str
    label: str
    next: str | None
    do: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    """One step of the flow."""

    id: str
    text: str
    buttons: tuple[ButtonSpec, ...] = ()
    next: str | None = None
    checklist: str | None = None
    input: str | None = None
    on_enter: tuple[str, ...] = ()
    skip_when_done: bool = False
    choose_school: bool = False
    terminal: bool = False

    def button(self, button_id: str) -> ButtonSpec | None:
        """The button with this id, if the step has it."""
        return next((b for b in self.buttons if b.id == button_id), None)


@dataclass(frozen=True)
class Protocol:
    """The whole flow and its texts."""

    start: str
    steps: Mapping[str, Step]
    texts: Mapping[str, Mapping[str, str]]
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("America/Montreal"))

    def step(self, step_id: str) -> Step:
        """The step with this id."""
        return self.steps[step_id]

    def text(self, key: str, language: str, **params: object) -> str:
        """A text in a language, its parameters HTML-escaped."""
        template = self.texts[key][language]
        safe = {
            name: value if isinstance(value, Markup) else html.escape(str(value), quote=False)
            for name, value in params.items()
        }
        return template.format_map(safe)

    @property
    def checklist(self) -> tuple[Step, ...]:
        """The steps that appear in /status, in flow order."""
        return tuple(s for s in self.steps.values() if s.checklist)


class Markup(str):
    """Text that is already HTML and must not be escaped again."""

    __slots__ = ()


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _step(step_id: str, raw: Mapping[str, Any]) -> Step:
    buttons = tuple(
        ButtonSpec(
            id=str(b["id"]),
            label=str(b["label"]),
            next=b.get("next"),
            do=tuple(b.get("do", ())),
        )
        for b in raw.get("buttons", ())
    )
    known = {
        "text",
        "buttons",
        "next",
        "checklist",
        "input",
        "on_enter",
        "skip_when_done",
        "choose_school",
        "terminal",
    }
    unknown = set(raw) - known
    if unknown:
        raise ProtocolError(f"step {step_id}: unknown key(s) {', '.join(sorted(unknown))}")
    return Step(
        id=step_id,
        text=str(raw["text"]),
        buttons=buttons,
        next=raw.get("next"),
        checklist=raw.get("checklist"),
        input=raw.get("input"),
        on_enter=tuple(raw.get("on_enter", ())),
        skip_when_done=bool(raw.get("skip_when_done", False)),
        choose_school=bool(raw.get("choose_school", False)),
        terminal=bool(raw.get("terminal", False)),
    )


def validate(protocol: Protocol) -> list[str]:
    """Every problem: missing texts or languages, dangling steps, unknown actions."""
    problems: list[str] = []
    for key, by_language in protocol.texts.items():
        for language in LANGUAGES:
            if not by_language.get(language):
                problems.append(f"text {key}: missing in {language}")
        fields = {language: _fields(text) for language, text in by_language.items()}
        if len({frozenset(f) for f in fields.values()}) > 1:
            problems.append(f"text {key}: placeholders differ between languages: {fields}")
    if protocol.start not in protocol.steps:
        problems.append(f"start step {protocol.start} does not exist")
    for step in protocol.steps.values():
        keys = [step.text, *(b.label for b in step.buttons)]
        if step.checklist:
            keys += [step.checklist, f"title.{step.id}"]
        problems += [f"step {step.id}: text {k} missing" for k in keys if k not in protocol.texts]
        targets = [step.next, *(b.next for b in step.buttons)]
        for target in targets:
            if target is not None and target not in protocol.steps:
                problems.append(f"step {step.id}: goes to unknown step {target}")
        for button in step.buttons:
            problems += [
                f"step {step.id}: unknown action {a}" for a in button.do if a not in ACTIONS
            ]
        problems += [
            f"step {step.id}: unknown on_enter {a}"
            for a in step.on_enter
            if a not in ENTER_ACTIONS
        ]
        if step.input is not None and step.input not in INPUTS:
            problems.append(f"step {step.id}: unknown input {step.input}")
        if not step.terminal and not step.buttons and not (step.choose_school and step.next):
            problems.append(f"step {step.id}: no way forward")
        if step.skip_when_done and step.next is None:
            problems.append(f"step {step.id}: skip_when_done needs next")
    problems += [f"step {s}: unreachable" for s in sorted(unreachable(protocol))]
    return problems


def unreachable(protocol: Protocol) -> set[str]:
    """Steps that no path from the start reaches."""
    seen: set[str] = set()
    todo = [protocol.start]
    while todo:
        current = todo.pop()
        if current in seen or current not in protocol.steps:
            continue
        seen.add(current)
        step = protocol.steps[current]
        todo += [t for t in (step.next, *(b.next for b in step.buttons)) if t is not None]
    return set(protocol.steps) - seen


def load_protocol(
    zone: ZoneInfo | None = None,
    flow_path: Path = HERE / "flow.yml",
    texts_path: Path = HERE / "texts.yml",
) -> Protocol:
    """Load and validate the flow and the texts."""
    flow = yaml.safe_load(flow_path.read_text(encoding="utf-8"))
    texts = yaml.safe_load(texts_path.read_text(encoding="utf-8"))
    protocol = Protocol(
        start=str(flow["start"]),
        steps={sid: _step(sid, raw) for sid, raw in flow["steps"].items()},
        texts={str(k): {str(lk): str(lv) for lk, lv in v.items()} for k, v in texts.items()},
        zone=zone or ZoneInfo("America/Montreal"),
    )
    problems = validate(protocol)
    if problems:
        raise ProtocolError("the protocol is inconsistent:\n  " + "\n  ".join(problems))
    return protocol
