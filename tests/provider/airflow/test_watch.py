"""The shared job watcher (tibanna_provider.watch) on the stub backend's fake clock: no sleeps.

The jobs follow scripts (their statuses and logs change at fake times); the watcher and the API
it reads are the real ones, and the watcher pauses on the API's clock.
"""
from __future__ import annotations

import asyncio
import logging

import pytest

from jobhelpers import shell_job
from tibanna.backends.stub import Script, StubBackend
from tibanna.core import API
from tibanna.exceptions import AWSEMJobErrorException
from tibanna_provider.watch import JobFailed, JobWatcher, UnknownJob, WaitTimeout


@pytest.fixture
def stub(tmp_path) -> StubBackend:
    return StubBackend(tmp_path)


def submit(stub: StubBackend, **scripts: Script) -> API:
    """The API on `stub` with one job per script, named after its keyword, submitted now."""
    api = API(backend=stub)
    for jobid, script in scripts.items():
        stub.script = script
        api.run_workflow(shell_job("true"), jobid=jobid)
    return api


def watcher(api: API, logger: logging.Logger | None = None) -> JobWatcher:
    return JobWatcher(api, logger or logging.getLogger("watch-test"))


def test_wait_backs_off_to_the_poll_interval_and_returns_the_jobs(stub):
    api = submit(stub, j=Script.succeeds(after=100))
    jobs = watcher(api).wait(["j"], poll_interval=30, first_delay=0.5)
    assert jobs["j"]["status"] == "SUCCEEDED"
    assert stub.clock.sleeps[:7] == [0.5, 1, 2, 4, 8, 16, 30]
    assert 100 <= stub.clock.now() - stub.clock.start <= 130  # seen within one interval of its end


def test_log_lines_are_forwarded_whole_once_each_and_the_rest_at_the_end(stub, caplog):
    api = submit(stub, j=Script.succeeds(after=3, log=[(0, "one\ntw"), (1, "o\nthr"), (3, "ee")]))
    offsets: dict[str, int] = {}
    with caplog.at_level(logging.INFO, logger="watch-test"):
        watcher(api).wait(["j"], poll_interval=1, offsets=offsets)
    assert [r.getMessage() for r in caplog.records if r.name == "watch-test"] == ["[j] one", "[j] two", "[j] three"]
    assert offsets == {"j": len("one\ntwo\nthree")}


def test_a_failed_job_raises_its_own_error_with_cause_and_log_tail(stub):
    text = "".join(f"line {i}\n" for i in range(30))
    api = submit(stub, ok=Script.succeeds(after=0), bad=Script.fails(after=5, cause="exit code 3", log=text))
    with pytest.raises(JobFailed) as failure:
        watcher(api).wait(["ok", "bad"], poll_interval=2)
    assert [job["jobid"] for job in failure.value.jobs] == ["bad"]
    error = failure.value.errors[0]
    assert isinstance(error, AWSEMJobErrorException)
    assert str(error).startswith("job bad FAILED with AWSEMJobErrorException: exit code 3")
    assert "line 29" in str(error) and "line 10" in str(error) and "line 9\n" not in str(error)
    assert str(failure.value) == str(error)


def test_the_timeout_ends_the_wait_with_a_last_look_at_the_deadline(stub):
    api = submit(stub, j=Script.succeeds(after=1000))
    with pytest.raises(WaitTimeout, match="still RUNNING .*left running"):
        watcher(api).wait(["j"], poll_interval=4, timeout=10)
    assert stub.clock.now() - stub.clock.start == 10
    assert stub.clock.sleeps == [0.5, 1, 2, 4, 2.5]  # looks at 0, 0.5, 1.5, 3.5, 7.5 and 10
    assert api.check_status(job_id="j") == "RUNNING"  # left running


def test_a_job_that_ends_at_the_deadline_is_seen(stub):
    api = submit(stub, j=Script.succeeds(after=10))
    assert watcher(api).wait(["j"], poll_interval=30, timeout=10)["j"]["status"] == "SUCCEEDED"


def test_an_unknown_job_is_an_error_at_once(stub):
    with pytest.raises(UnknownJob, match="no job nope"):
        watcher(API(backend=stub)).wait(["nope"])
    assert stub.clock.sleeps == []


def test_look_uses_jobs_already_read_by_a_shared_poller(stub):
    api = submit(stub, j=Script.succeeds(after=0))
    polled = {"j": {"jobid": "j", "status": "RUNNING", "log_bucket": "log-bucket"}}
    assert watcher(api).look(["j"], None, jobs=polled) is None  # not re-read: it SUCCEEDED meanwhile
    assert watcher(api).look(["j"], None)["j"]["status"] == "SUCCEEDED"


def test_the_async_wait_pauses_on_the_clock(stub):
    api = submit(stub, j=Script.succeeds(after=7))
    jobs = asyncio.run(watcher(api).await_wait(["j"], poll_interval=2, first_delay=1))
    assert jobs["j"]["status"] == "SUCCEEDED" and stub.clock.sleeps == [1, 2, 2, 2]


def test_a_clock_of_its_own_overrides_the_apis(stub):
    from tibanna.clock import FakeClock

    own = FakeClock()
    api = submit(stub, j=Script.succeeds(after=0))
    assert JobWatcher(api, clock=own).wait(["j"])["j"]["status"] == "SUCCEEDED"
    api = submit(stub, k=Script.succeeds(after=1))
    with pytest.raises(WaitTimeout):  # its time passes, the stub's does not: the job never ends
        JobWatcher(api, clock=own).wait(["k"], poll_interval=1, timeout=3)
    assert own.sleeps == [0.5, 1, 1, 0.5] and stub.clock.sleeps == []
