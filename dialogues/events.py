"""Events: what happened, fed into the engine by the shell."""

from __future__ import annotations

from dataclasses import dataclass

from dialogues.state import SchoolRef


@dataclass(frozen=True)
class StartIncident:
    """The member asked to open an incident (/incident or the start button)."""

    schools: tuple[SchoolRef, ...]


@dataclass(frozen=True)
class ButtonPressed:
    """An inline button was pressed; ``data`` is its callback data, ``press`` Telegram's id of
    the press (the same when Telegram hands the same update over again; none in local mode)."""

    data: str
    press: str = ""


@dataclass(frozen=True)
class UserSaid:
    """The member typed text, with what the NLU understood of it (intent None: not parsed)."""

    text: str
    intent: str | None = None
    confidence: float = 0.0
    entities: tuple[tuple[str, str], ...] = ()
    # A confirmation stated on the way to the request ("I called 911. Now what").
    stated: str | None = None
    # Telegram's id of the message (the same when Telegram hands it over again; none locally).
    message: str = ""

    def entity(self, name: str) -> str | None:
        """The first entity of this name, if any."""
        return next((value for key, value in self.entities if key == name), None)


@dataclass(frozen=True)
class IncidentOpened:
    """The shell opened the incident the engine asked for."""

    incident_id: int
    code: str


@dataclass(frozen=True)
class StatusRequested:
    """/status."""


@dataclass(frozen=True)
class HelpRequested:
    """/help."""


@dataclass(frozen=True)
class LanguageRequested:
    """/lang, with a language or None to switch to the other one; ``unknown``: what was asked
    for instead of a language the guide speaks (nothing is switched)."""

    language: str | None = None
    unknown: str = ""


def language_request(argument: str) -> LanguageRequested:
    """The /lang command's argument as typed: a code or a name in either language ("en",
    "english", "anglais", "FR", "français"); none, the other language."""
    asked = argument.strip()
    word = asked.lower()
    if not word:
        return LanguageRequested(None)
    if word.startswith("fr"):
        return LanguageRequested("fr")
    if word.startswith(("en", "ang")):
        return LanguageRequested("en")
    return LanguageRequested(None, unknown=asked[:20])


@dataclass(frozen=True)
class CancelRequested:
    """/cancel."""


@dataclass(frozen=True)
class ReminderDue:
    """A reminder chain woke up (kind call_911 or stalled); ``number`` counts from 1."""

    kind: str
    number: int


Event = (
    StartIncident
    | ButtonPressed
    | UserSaid
    | IncidentOpened
    | StatusRequested
    | HelpRequested
    | LanguageRequested
    | CancelRequested
    | ReminderDue
)
