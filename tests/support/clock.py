"""A frozen clock that tests advance by hand instead of sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FrozenClock:
    """Always says the same time until told to move."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 11, 21, 14, 30, tzinfo=UTC)

    def now(self) -> datetime:
        """The frozen time."""
        return self.current

    def advance(self, delta: timedelta | None = None, **units: float) -> datetime:
        """Move forward by ``delta`` or by keyword units (minutes=5)."""
        self.current += delta if delta is not None else timedelta(**units)
        return self.current
