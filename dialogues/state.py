"""A member's place in the guide: an immutable, JSON-serialisable value."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from typing import Any, Self


@dataclass(frozen=True)
class SchoolRef:
    """What the guide needs to know of a school."""

    id: str
    name: str
    address: str | None = None


@dataclass(frozen=True)
class Stamp:
    """A checklist step completed at a time (ISO 8601, UTC)."""

    step: str
    at: str

    @property
    def time(self) -> datetime:
        """The completion time."""
        return datetime.fromisoformat(self.at)


@dataclass(frozen=True)
class Handled:
    """The last update from Telegram that moved the guide on: its id (a button press's or a
    typed message's) and, for a button, the choice it marked on the pressed message."""

    id: str
    choice: str | None = None


@dataclass(frozen=True)
class State:
    """Everything the engine remembers between two events of one member."""

    language: str = "fr"
    step: str | None = None
    schools: tuple[SchoolRef, ...] = ()
    school: SchoolRef | None = None
    drill: bool | None = None
    incident_id: int | None = None
    incident_code: str | None = None
    opened_at: str | None = None
    device_count: int | None = None
    event_number: str | None = None
    stamps: tuple[Stamp, ...] = ()
    awaiting: str | None = None
    status: str | None = None
    handled: Handled | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        """An incident is open and its guide is not over."""
        return (
            self.incident_id is not None
            and self.status not in (None, "cancelled")
            and (self.step is not None and self.step != "summary")
        )

    @property
    def preparing(self) -> bool:
        """The guide has started but no incident is open yet."""
        return self.step is not None and self.incident_id is None

    def stamp(self, step: str) -> Stamp | None:
        """When a checklist step was completed, if it was."""
        return next((s for s in self.stamps if s.step == step), None)

    def with_stamp(self, step: str, now: datetime) -> State:
        """The same state with ``step`` completed at ``now`` (the first time only)."""
        if self.stamp(step) is not None:
            return self
        return replace(self, stamps=(*self.stamps, Stamp(step, now.isoformat())))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Rebuild a state saved by ``to_dict`` (unknown keys are ignored)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["schools"] = tuple(SchoolRef(**s) for s in values.get("schools", ()))
        if values.get("school") is not None:
            values["school"] = SchoolRef(**values["school"])
        values["stamps"] = tuple(Stamp(**s) for s in values.get("stamps", ()))
        if values.get("handled") is not None:
            values["handled"] = Handled(**values["handled"])
        return cls(**values)
