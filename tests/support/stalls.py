"""A watch on the event loop of an end-to-end test: when the loop stops turning for a while,
say so in the test's log, with what the loop's thread was doing at that moment.

The bot, the local Telegram server and the test share one loop. A test that waits for a reply
with a time-out fails the same way whether the bot was wrong or the loop was held (by a
blocking call, or by the machine being busy elsewhere); this log tells the two apart.
asyncio's debug mode reports slow callbacks too, but slows every test down and says only
which callback was slow; a thread reading the loop's stack says where it was held.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
import traceback
from collections.abc import AsyncIterator

log = logging.getLogger("tests.stalls")


class _Watch:
    def __init__(self, loop: asyncio.AbstractEventLoop, threshold: float) -> None:
        self._loop = loop
        self._threshold = threshold
        self._loop_thread = threading.get_ident()
        self._last_turn = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="stall-watch", daemon=True)
        self.stalls: list[float] = []

    def _turned(self) -> None:
        self._last_turn = time.monotonic()
        if not self._stop.is_set():
            self._loop.call_later(self._threshold / 4, self._turned)

    def _watch(self) -> None:
        reported = 0.0
        while not self._stop.wait(self._threshold / 4):
            late = time.monotonic() - self._last_turn - self._threshold / 4
            if late < self._threshold:
                if reported:
                    self.stalls.append(reported)
                    log.warning("the event loop turned again after %.2f s", reported)
                reported = 0.0
                continue
            if not reported:
                frame = sys._current_frames().get(self._loop_thread)
                where = "".join(traceback.format_stack(frame)[-12:]) if frame else "(unknown)\n"
                log.warning("the event loop has not turned for %.2f s; it is at:\n%s", late, where)
            reported = late

    def start(self) -> None:
        self._loop.call_soon(self._turned)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.asynccontextmanager
async def watched_loop(threshold: float = 0.3) -> AsyncIterator[list[float]]:
    """Watch the running loop for the duration; yields the list of stalls seen (in seconds)."""
    watch = _Watch(asyncio.get_running_loop(), threshold)
    watch.start()
    try:
        yield watch.stalls
    finally:
        watch.stop()
