"""The fake clock: sleeps that return at once, recorded; listeners and actions at a given time."""
from __future__ import annotations

import asyncio
import threading

import pytest

from tibanna.clock import REAL_CLOCK, FakeClock


def test_sleeps_move_time_on_at_once_and_are_recorded():
    clock = FakeClock(start=100.0)
    heard: list[float] = []
    clock.on_advance(heard.append)
    clock.sleep(2.5)
    asyncio.run(clock.asleep(1))
    clock.advance(0.5)
    assert clock.now() == 104.0 and clock.sleeps == [2.5, 1] and heard == [102.5, 103.5, 104.0]
    with pytest.raises(ValueError):
        clock.sleep(-1)
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_an_action_runs_once_when_the_clock_reaches_its_time_from_any_thread():
    clock = FakeClock(start=0.0)
    ran: list[float] = []
    clock.at(10, lambda: ran.append(clock.now()))
    clock.sleep(9)
    assert ran == []
    threads = [threading.Thread(target=clock.sleep, args=(1,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ran) == 1 and ran[0] >= 10 and clock.now() == 17


def test_the_real_clock_is_the_systems_time():
    import time

    before = time.time()
    assert before <= REAL_CLOCK.now() <= time.time()
