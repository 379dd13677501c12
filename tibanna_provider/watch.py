"""Watching Tibanna jobs from an orchestrator, written once for Airflow and Prefect.

    from tibanna.core import API
    from tibanna_provider.watch import JobWatcher

    api = API.from_settings("local")
    job = api.submit_or_attach(description, key="my-dag.my-task-1a2b3c")   # re-attach or submit
    jobs = JobWatcher(api, logger).wait([job["jobid"]], poll_interval=30)  # forwards the log meanwhile

A `JobWatcher` takes one look at some jobs (`look`), or looks again and again until they end
(`wait`, and `await_wait` for event loops). Each look forwards the jobs' new log lines to a
logger and raises `JobFailed` as soon as one job ended otherwise than SUCCEEDED. Polls back
off from `first_delay` to `poll_interval`, so quick jobs are seen quickly and long ones cost
little. Time comes from a `tibanna.clock.Clock`, by default the API's (`API.clock`: real time,
or a stub backend's fake clock, so tests play a chronology instead of sleeping).
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from tibanna.core import API, RUNNING, SUCCEEDED
from tibanna.exceptions import TibannaError

if TYPE_CHECKING:
    from tibanna.clock import Clock

Logger = logging.Logger | logging.LoggerAdapter | Any
Job = dict[str, Any]

DEFAULT_POLL_INTERVAL = 30.0  # seconds between looks, once backed off
FIRST_DELAY = 0.5  # seconds before the second look; doubles up to the poll interval
LOG_TAIL = 20  # lines of a failed job's log in its error

log = logging.getLogger(__name__)


class JobFailed(TibannaError):
    """Jobs ended FAILED, TIMED_OUT or ABORTED.

    `errors` holds each failed job's own exception (`AWSEMJobErrorException`, ...: see
    `API.job_failure`), `jobs` the failed jobs; the message joins the errors' messages.
    """

    def __init__(self, jobs: list[Job], errors: list[TibannaError]) -> None:
        super().__init__("\n\n".join(str(err) for err in errors))
        self.jobs = jobs
        self.errors = errors


class WaitTimeout(TimeoutError):
    """The jobs were still RUNNING when the wait's time was up (they are left running)."""


class UnknownJob(TibannaError):
    """A watched job id is not in the index."""


class JobWatcher:
    """Looks at jobs through the public API: status, error, log.

    :param api: where the jobs are.
    :param logger: where forwarded log lines go (`[<jobid>] <line>`).
    :param log_tail: lines of a failed job's log in its error.
    :param clock: what `wait` reads the time from and pauses with (default: the API's clock).
    """

    def __init__(self, api: API, logger: Logger = log, *, log_tail: int = LOG_TAIL,
                 clock: Clock | None = None) -> None:
        self.api = api
        self.logger = logger
        self.log_tail = log_tail
        self.clock = clock or api.clock

    def look(self, job_ids: Iterable[str], offsets: dict[str, int] | None = None,
             jobs: Mapping[str, Job] | None = None) -> dict[str, Job] | None:
        """One look: forward new log lines, raise `JobFailed` if any job failed.

        :param offsets: how much of each log was forwarded so far, updated in place; None forwards
            nothing. Whole lines only while a job runs; the rest once it ended.
        :param jobs: the jobs as already read (a shared poller's `API.jobs`); else read now.
        :return: the jobs (`API.job` dicts by id) once every one SUCCEEDED, else None.
        """
        job_ids = list(job_ids)
        found = dict(jobs) if jobs is not None else {job["jobid"]: job for job in self.api.jobs(job_ids)}
        missing = [jobid for jobid in job_ids if jobid not in found]
        if missing:
            raise UnknownJob(f"job_id: no job {', '.join(missing)}")
        if offsets is not None:
            for jobid in job_ids:
                offsets[jobid] = self.forward_log(found[jobid], offsets.get(jobid, 0))
        failed = [found[jobid] for jobid in job_ids if found[jobid]["status"] not in (RUNNING, SUCCEEDED)]
        if failed:
            raise JobFailed(failed, [self.api.job_failure(job, self.log_tail) for job in failed])
        if all(found[jobid]["status"] == SUCCEEDED for jobid in job_ids):
            return {jobid: found[jobid] for jobid in job_ids}
        return None

    def forward_log(self, job: Job, offset: int) -> int:
        """Log the job's log past `offset` (whole lines while it runs); returns the new offset."""
        text = self.api.log(job_id=job["jobid"], logbucket=job["log_bucket"], quiet=True)
        end = len(text) if job["status"] != RUNNING else text.rfind("\n", offset) + 1
        for line in text[offset:end].splitlines():
            self.logger.info("[%s] %s", job["jobid"], line)
        return max(end, offset)

    def wait(self, job_ids: Iterable[str], *, poll_interval: float = DEFAULT_POLL_INTERVAL,
             timeout: float | None = None, offsets: dict[str, int] | None = None,
             first_delay: float = FIRST_DELAY) -> dict[str, Job]:
        """`look` until every job SUCCEEDED; raises `JobFailed`, or `WaitTimeout` after `timeout` seconds
        (the last look is at the deadline)."""
        job_ids = list(job_ids)
        deadline = None if timeout is None else self.clock.now() + timeout
        for delay in _delays(first_delay, poll_interval):
            done = self.look(job_ids, offsets)
            if done is not None:
                return done
            self.clock.sleep(self._until(deadline, delay, job_ids))

    async def await_wait(self, job_ids: Iterable[str], *, poll_interval: float = DEFAULT_POLL_INTERVAL,
                         timeout: float | None = None, offsets: dict[str, int] | None = None,
                         first_delay: float = FIRST_DELAY) -> dict[str, Job]:
        """`wait` for an event loop: each look runs in a thread, the pauses do not block the loop."""
        job_ids = list(job_ids)
        deadline = None if timeout is None else self.clock.now() + timeout
        for delay in _delays(first_delay, poll_interval):
            done = await asyncio.to_thread(self.look, job_ids, offsets)
            if done is not None:
                return done
            await self.clock.asleep(self._until(deadline, delay, job_ids))

    def _until(self, deadline: float | None, delay: float, job_ids: list[str]) -> float:
        """The pause before the next look: `delay`, cut at the deadline; past it, raise WaitTimeout."""
        if deadline is None:
            return delay
        left = deadline - self.clock.now()
        if left <= 0:
            raise WaitTimeout(f"Tibanna job(s) {', '.join(job_ids)} still RUNNING after the wait's time; "
                              "left running")
        return min(delay, left)


def _delays(first: float, most: float) -> Iterable[float]:
    """first, 2*first, 4*first, ... up to `most`, then `most` for ever."""
    delay = min(first, most)
    while True:
        yield delay
        delay = min(delay * 2, most)
