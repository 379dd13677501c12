"""The shared job watcher (tibanna_provider.watch), driven by a fake clock: no sleeps.

The jobs live in a fictional world (`World`): their statuses and logs change at scripted fake
times. The watcher under test is the real one; only time and the index are made up.
"""
from __future__ import annotations

import asyncio
import logging

import pytest

from tibanna.exceptions import AWSEMJobErrorException, TibannaError, job_error
from tibanna_provider.watch import JobFailed, JobWatcher, UnknownJob, WaitTimeout


class FakeTime:
    """A clock that moves only when the watcher sleeps; records each pause."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.pauses.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


class World:
    """Jobs whose status and log follow a script of (fake time, status, log) steps."""

    def __init__(self, time: FakeTime, scripts: dict[str, list[tuple[float, str, str]]],
                 errors: dict[str, tuple[str, str]] | None = None) -> None:
        self.time, self.scripts, self.errors = time, scripts, errors or {}
        self.queries = 0

    def _state(self, jobid: str) -> tuple[str, str]:
        status, text = "RUNNING", ""
        for at, step_status, step_text in self.scripts[jobid]:
            if self.time.now >= at:
                status, text = step_status, step_text
        return status, text

    # What the watcher uses of tibanna.core.API.
    def jobs(self, job_ids: list[str]) -> list[dict]:
        self.queries += 1
        found = []
        for jobid in job_ids:
            if jobid in self.scripts:
                status = self._state(jobid)[0]
                error, cause = self.errors.get(jobid, (None, None)) if status != "RUNNING" else (None, None)
                found.append({"jobid": jobid, "status": status, "log_bucket": "logs", "error": error, "cause": cause})
        return found

    def log(self, job_id: str, logbucket: str, quiet: bool) -> str:
        return self._state(job_id)[1]

    def job_failure(self, job: dict, log_tail: int = 20) -> TibannaError:
        return job_error(job, self._state(job["jobid"])[1], log_tail)


def watcher(world: World, time: FakeTime, logger: logging.Logger | None = None) -> JobWatcher:
    return JobWatcher(world, logger or logging.getLogger("watch-test"), clock=time.clock, sleep=time.sleep,
                      asleep=time.asleep)


def test_wait_backs_off_to_the_poll_interval_and_returns_the_jobs():
    time = FakeTime()
    world = World(time, {"j": [(100, "SUCCEEDED", "")]})
    jobs = watcher(world, time).wait(["j"], poll_interval=30, first_delay=0.5)
    assert jobs["j"]["status"] == "SUCCEEDED"
    assert time.pauses[:7] == [0.5, 1, 2, 4, 8, 16, 30]
    assert 100 <= time.now <= 130  # seen within one interval of its end


def test_log_lines_are_forwarded_whole_once_each_and_the_rest_at_the_end(caplog):
    time = FakeTime()
    world = World(time, {"j": [(0, "RUNNING", "one\ntw"), (1, "RUNNING", "one\ntwo\nthr"), (3, "SUCCEEDED",
                                                                                          "one\ntwo\nthree")]})
    offsets: dict[str, int] = {}
    with caplog.at_level(logging.INFO, logger="watch-test"):
        watcher(world, time).wait(["j"], poll_interval=1, offsets=offsets)
    assert [r.getMessage() for r in caplog.records] == ["[j] one", "[j] two", "[j] three"]
    assert offsets == {"j": len("one\ntwo\nthree")}


def test_a_failed_job_raises_its_own_error_with_cause_and_log_tail():
    time = FakeTime()
    text = "".join(f"line {i}\n" for i in range(30))
    world = World(time, {"ok": [(0, "SUCCEEDED", "")], "bad": [(5, "FAILED", text)]},
                  {"bad": ("AWSEMJobErrorException", "exit code 3")})
    with pytest.raises(JobFailed) as failure:
        watcher(world, time).wait(["ok", "bad"], poll_interval=2)
    assert [job["jobid"] for job in failure.value.jobs] == ["bad"]
    error = failure.value.errors[0]
    assert isinstance(error, AWSEMJobErrorException)
    assert str(error).startswith("job bad FAILED with AWSEMJobErrorException: exit code 3")
    assert "line 29" in str(error) and "line 10" in str(error) and "line 9\n" not in str(error)
    assert str(failure.value) == str(error)


def test_the_timeout_ends_the_wait_with_a_last_look_at_the_deadline():
    time = FakeTime()
    world = World(time, {"j": [(1000, "SUCCEEDED", "")]})
    with pytest.raises(WaitTimeout, match="still RUNNING .*left running"):
        watcher(world, time).wait(["j"], poll_interval=4, timeout=10)
    assert time.now == 10 and sum(time.pauses) == 10
    assert world.queries == 6  # at 0, 0.5, 1.5, 3.5, 7.5 and 10


def test_a_job_that_ends_at_the_deadline_is_seen():
    time = FakeTime()
    world = World(time, {"j": [(10, "SUCCEEDED", "")]})
    assert watcher(world, time).wait(["j"], poll_interval=30, timeout=10)["j"]["status"] == "SUCCEEDED"


def test_an_unknown_job_is_an_error_at_once():
    time = FakeTime()
    with pytest.raises(UnknownJob, match="no job nope"):
        watcher(World(time, {}), time).wait(["nope"])
    assert time.pauses == []


def test_look_uses_jobs_already_read_by_a_shared_poller():
    time = FakeTime()
    world = World(time, {"j": [(0, "SUCCEEDED", "")]})
    polled = {"j": {"jobid": "j", "status": "RUNNING", "log_bucket": "logs"}}
    assert watcher(world, time).look(["j"], None, jobs=polled) is None  # not re-read
    assert world.queries == 0


def test_the_async_wait_pauses_with_the_injected_sleep():
    time = FakeTime()
    world = World(time, {"j": [(7, "SUCCEEDED", "")]})
    jobs = asyncio.run(watcher(world, time).await_wait(["j"], poll_interval=2, first_delay=1))
    assert jobs["j"]["status"] == "SUCCEEDED" and time.pauses == [1, 2, 2, 2]
