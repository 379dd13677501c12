"""Time as the parts that wait read it: `now()` and `sleep(seconds)` (and `asleep` on an event loop).

The supervisor, the local index's time stamps, the provider's job watcher, operators and
triggers take a `Clock` instead of calling `time` directly: the real one by default, a
`FakeClock` in tests, where a sleep returns at once and moves time on (and, through its
listeners, plays a stub backend's jobs: `tibanna.backends.stub`).
"""
from __future__ import annotations

import asyncio
import threading
import time
from typing import Callable, Protocol

FAKE_EPOCH = 1_700_000_000.0  # where a FakeClock starts by default (2023-11-14 22:13:20 UTC)


class Clock(Protocol):
    """Epoch seconds and pauses."""

    def now(self) -> float:
        """Seconds since the epoch (wall-clock time)."""

    def sleep(self, seconds: float) -> None:
        """Pause the caller for `seconds`."""

    async def asleep(self, seconds: float) -> None:
        """Pause the awaiting task for `seconds`, without blocking its event loop."""


class RealClock:
    """The system's time: `time.time`, `time.sleep`, `asyncio.sleep`."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


REAL_CLOCK = RealClock()


class FakeClock:
    """Time that moves only when something sleeps on it or `advance` is called; a sleep returns at once.

    Every sleep is recorded in `sleeps`. Listeners (`on_advance`) hear of every move, after it:
    a stub backend plays its jobs' chronologies that way, and `at` runs a test's action when the
    clock reaches a given time. Safe to share between threads: concurrent sleepers each move the
    clock on by their own pause, so each sees at least its pause pass, as with real time.
    """

    def __init__(self, start: float = FAKE_EPOCH) -> None:
        self.start = float(start)
        self._now = self.start
        self.sleeps: list[float] = []
        self._listeners: list[Callable[[float], None]] = []
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"sleep length must be non-negative, not {seconds}")
        with self._lock:
            self.sleeps.append(seconds)
        self.advance(seconds)

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)  # let the loop's other tasks run, as a real pause would

    def advance(self, seconds: float) -> None:
        """Move time on by `seconds`, then tell the listeners."""
        if seconds < 0:
            raise ValueError(f"time only moves forward, not by {seconds}")
        with self._lock:
            self._now += seconds
            now, listeners = self._now, list(self._listeners)
        for listener in listeners:
            listener(now)

    def on_advance(self, listener: Callable[[float], None]) -> None:
        """Call `listener(now)` after every move of the clock, in the order listeners were added."""
        with self._lock:
            self._listeners.append(listener)

    def at(self, when: float, action: Callable[[], None]) -> None:
        """Run `action()` once, on the first move that brings the clock to `when` or past it."""
        once = threading.Lock()

        def listener(now: float) -> None:
            if now >= when and once.acquire(blocking=False):
                action()

        self.on_advance(listener)
