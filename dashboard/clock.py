"""A clock that can be moved forward, for drills: reminders come due without waiting."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.clock import Clock


class ShiftedClock:
    """Another clock's time plus an offset that only grows (fast-forward)."""

    def __init__(self, base: Clock, offset: timedelta = timedelta(0)) -> None:
        self.base = base
        self.offset = offset

    def now(self) -> datetime:
        """The base time, shifted."""
        return self.base.now() + self.offset

    def advance(self, delta: timedelta) -> datetime:
        """Move forward (never back: stored times only move forward)."""
        if delta < timedelta(0):
            raise ValueError("a clock only moves forward")
        self.offset += delta
        return self.now()
