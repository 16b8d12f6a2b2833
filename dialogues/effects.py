"""Effects: what the engine asks the shell to do, as data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Button:
    """An inline button: its label and callback data (at most 64 bytes)."""

    label: str
    data: str


@dataclass(frozen=True)
class Say:
    """Send a message to the member (HTML), with rows of buttons."""

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    protect: bool = True


@dataclass(frozen=True)
class MarkChoice:
    """Close the message whose button was pressed: show the choice and drop its buttons."""

    text: str


@dataclass(frozen=True)
class OpenIncident:
    """Open an incident; the shell answers with IncidentOpened."""

    school_id: str
    drill: bool


@dataclass(frozen=True)
class StepCompleted:
    """A step of the guide was completed (timeline: step_done)."""

    step: str
    choice: str


@dataclass(frozen=True)
class AdvanceStatus:
    """Move the incident's status forward."""

    status: str


@dataclass(frozen=True)
class UpdateIncident:
    """Record the number of phones bagged or the 911 event number."""

    device_count: int | None = None
    event_number: str | None = None


@dataclass(frozen=True)
class CancelIncident:
    """Cancel the incident with a reason."""

    reason: str


@dataclass(frozen=True)
class StartReminders:
    """Start a reminder chain (e.g. call_911)."""

    kind: str


@dataclass(frozen=True)
class StopReminders:
    """Stop a reminder chain, or every chain of the incident when kind is None."""

    kind: str | None = None


@dataclass(frozen=True)
class NotifyOfficers:
    """Alert the school's community relations officer of an incident event."""

    reason: str


@dataclass(frozen=True)
class SetLanguage:
    """Remember the member's language."""

    language: str


Effect = (
    Say
    | MarkChoice
    | OpenIncident
    | StepCompleted
    | AdvanceStatus
    | UpdateIncident
    | CancelIncident
    | StartReminders
    | StopReminders
    | NotifyOfficers
    | SetLanguage
)
