"""Prefect tasks for Tibanna jobs: submit, wait, rerun, kill, stat, metrics and cost.

Every task works in sync flows; its twin with an `a` prefix (`arun_workflow`, `await_for_job`,
...) is the same task for async flows, to `await`. Without `settings`, `API()`'s defaults from
the environment apply (`TIBANNA_BACKEND`, `TIBANNA_HOME`, ...).

Submission is idempotent: `run_workflow` derives the job id from the root flow run (the
outermost one, whose id a retry keeps) and what it submits, so a retry of the task, of its flow
or of any flow above it re-attaches to the job it started, unless that job ended FAILED,
TIMED_OUT or ABORTED; then the retry starts a fresh job, `<key>-2`, `<key>-3`... linked to the
one it replaces with `rerun_of`.

Waits pause on the API's clock (`API.clock`): real time, or in tests a stub backend's fake clock
(`tibanna.backends.stub`), so a flow that waits for hours of jobs runs at once.

Each job is also noted on its flow run and the runs above it, so that `kill_flow_run_jobs` can end
the jobs of a cancelled or crashed flow run (`flow_runs`).
"""
from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import Any, Callable, Coroutine, ParamSpec, TypeVar

from prefect import Task, task
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger
from prefect.utilities.asyncutils import run_sync_in_worker_thread

from tibanna.core import API
from tibanna_provider.prefect.flow_runs import job_key, note_job
from tibanna_provider.prefect.settings import TibannaSettings
from tibanna_provider.watch import DEFAULT_POLL_INTERVAL, LOG_TAIL, Job, JobFailed, JobWatcher

P = ParamSpec("P")
R = TypeVar("R")

Logger = logging.Logger | logging.LoggerAdapter


def _logger() -> Logger:
    """The run's logger inside a task run (its lines reach the Prefect UI), else this module's."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


def _api(settings: TibannaSettings | None) -> API:
    return (settings or TibannaSettings()).get_api()


def _async_twin(sync_task: Task[P, R]) -> Task[P, Coroutine[Any, Any, R]]:
    """`sync_task` for async flows: the same call, run in a worker thread so the event loop goes on."""
    fn: Callable[P, R] = sync_task.fn

    @functools.wraps(fn)
    async def twin(*args: P.args, **kwargs: P.kwargs) -> R:
        return await run_sync_in_worker_thread(fn, *args, **kwargs)

    twin.__name__ = twin.__qualname__ = f"a{fn.__name__}"
    twin.__doc__ = f"`{fn.__name__}` for async flows: `await {twin.__name__}(...)` takes the same arguments."
    return task(twin)


# Submission -------------------------------------------------------------------------------------
def _given(input_json: dict | str) -> tuple[Any, str | None]:
    """What a description is, for its job key (a file: its JSON), and the jobid it names, if any."""
    if isinstance(input_json, dict):
        return input_json, input_json.get("jobid")
    try:
        data = json.loads(Path(input_json).read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return str(input_json), None  # submitting refuses it, naming the problem
    return data, data.get("jobid") if isinstance(data, dict) else None


@task
def run_workflow(input_json: dict | str, settings: TibannaSettings | None = None, jobid: str | None = None,
                 key: str | None = None) -> str:
    """Submit a job (a description dict or a JSON file) and return its job id.

    A retry, of this task or of a flow above it, re-attaches to the job an earlier try submitted
    (see `job_key`); so does the same description submitted twice under one root flow run, as
    Prefect's default cache key (inputs and run) would have it. A `key` of yours names the job
    instead, in any flow run: the job `key`, or after it failed, `key-2` and so on. A `jobid`
    given here or in the description is used as it is: the same id always means the same job,
    whatever ended it.

    Example:
        Submit a job and wait for it:
        ```python
        from prefect import flow
        from tibanna_provider.prefect import run_workflow, wait_for_job

        JOB = {"args": {"language": "shell", "command": "echo hello", "container_image": "ubuntu:20.04",
                        "output_S3_bucket": "my-data"},
               "config": {"log_bucket": "my-logs", "cpu": 1, "mem": 1}}

        @flow
        def hello() -> dict:
            job_id = run_workflow(JOB)
            return wait_for_job(job_id)

        postrun = hello()
        ```
    """
    settings = settings or TibannaSettings()
    api = settings.get_api()
    description, named = _given(input_json)
    jobid = jobid or named
    key = None if jobid else key or job_key(description, settings.step_function)
    attached = None
    if key:
        job = api.submit_or_attach(input_json, key)
        jobid, attached = job["jobid"], job["status"] if job["attached"] else None
    else:
        jobid = api.run_workflow(input_json, sfn=settings.step_function, jobid=jobid, open_browser=False,
                                 verbose=False)["jobid"]
    note_job(jobid, settings)
    links = api.links(jobid)
    where = links["execution"] or links["log"]  # the console on AWS (log URLs there are pre-signed: not logged)
    if attached:
        _logger().info("re-attaching to job %s (%s), which an earlier try submitted; %s", jobid, attached, where)
    else:
        _logger().info("submitted job %s; %s", jobid, where)
    return jobid


# Waiting ----------------------------------------------------------------------------------------
def _watcher(settings: TibannaSettings | None, log_tail: int) -> JobWatcher:
    """A watcher of the settings' jobs that forwards their logs to this run's log."""
    return JobWatcher(_api(settings), _logger(), log_tail=log_tail)


def _postrun(watcher: JobWatcher, job: Job) -> dict:
    """The postrun JSON of a job that SUCCEEDED."""
    return json.loads(watcher.api.log(job_id=job["jobid"], logbucket=job["log_bucket"], postrunjson=True, quiet=True))


@task
def wait_for_job(job_id: str, settings: TibannaSettings | None = None,
                 poll_interval: float = DEFAULT_POLL_INTERVAL, log_tail: int = LOG_TAIL) -> dict:
    """Wait until a job ends, its log forwarded to this run's log; return its postrun JSON.

    Polls quickly at first, then every `poll_interval` seconds. A job that did not succeed
    raises its own error class (`AWSEMJobErrorException`, `EC2UnintendedTerminationException`,
    ...) with its cause and the last `log_tail` lines of its log. For a deadline, give the task
    Prefect's `timeout_seconds`; the job itself keeps running.

    Example:
        In an async flow, with the twins:
        ```python
        import asyncio
        from prefect import flow
        from tibanna_provider.prefect import arun_workflow, await_for_job

        JOB = {"args": {"language": "shell", "command": "echo hello", "container_image": "ubuntu:20.04",
                        "output_S3_bucket": "my-data"},
               "config": {"log_bucket": "my-logs", "cpu": 1, "mem": 1}}

        @flow
        async def hello() -> dict:
            job_id = await arun_workflow(JOB)
            return await await_for_job(job_id, poll_interval=10)

        postrun = asyncio.run(hello())
        ```
    """
    watcher = _watcher(settings, log_tail)
    try:
        jobs = watcher.wait([job_id], poll_interval=poll_interval, offsets={})
    except JobFailed as failed:
        raise failed.errors[0] from None
    return _postrun(watcher, jobs[job_id])


@task
async def await_for_job(job_id: str, settings: TibannaSettings | None = None,
                        poll_interval: float = DEFAULT_POLL_INTERVAL, log_tail: int = LOG_TAIL) -> dict:
    """`wait_for_job` for async flows: it polls without holding a thread."""
    watcher = _watcher(settings, log_tail)
    try:
        jobs = await watcher.await_wait([job_id], poll_interval=poll_interval, offsets={})
    except JobFailed as failed:
        raise failed.errors[0] from None
    return await run_sync_in_worker_thread(_postrun, watcher, jobs[job_id])


# Control and reports ----------------------------------------------------------------------------
@task
def rerun(job_id: str, settings: TibannaSettings | None = None, **options: Any) -> str | None:
    """Run a job again from its kept description; returns the new job id.

    `options` are `API().rerun`'s: `instance_type`, `ebs_size`, `override_config`, `use_spot`,
    ...; with `app_name_filter`, a job of another app is not rerun and None is returned. Unlike
    `run_workflow`, each try starts a new job (the core's rerun takes no job id), so give this
    task no retries.

    Example:
        Rerun a job with a bigger disk:
        ```python
        from prefect import flow
        from tibanna_provider.prefect import rerun, stat

        @flow
        def rerun_failed() -> list[str | None]:
            return [rerun(row["jobid"], ebs_size=50) for row in stat(status="FAILED", n=5)]

        new_job_ids = rerun_failed()
        ```
    """
    settings = settings or TibannaSettings()
    result = settings.get_api().rerun(job_id=job_id, sfn=settings.step_function, verbose=False, **options)
    return result["jobid"] if result else None


@task
def kill(job_id: str, settings: TibannaSettings | None = None, soft: bool = False) -> None:
    """End a running job: ABORTED, or with `soft`, FAILED with JobAbortedException; a finished job is left as is.

    Example:
        ```python
        from prefect import flow
        from tibanna_provider.prefect import kill, run_workflow

        JOB = {"args": {"language": "shell", "command": "sleep 600", "container_image": "ubuntu:20.04",
                        "output_S3_bucket": "my-data"},
               "config": {"log_bucket": "my-logs", "cpu": 1, "mem": 1}}

        @flow
        def start_and_stop() -> None:
            kill(run_workflow(JOB))

        start_and_stop()
        ```
    """
    _api(settings).kill(job_id=job_id, soft=soft)


@task
def stat(job_ids: list[str] | None = None, settings: TibannaSettings | None = None, status: str | None = None,
         n: int | None = None, long: bool = False) -> list[dict]:
    """Jobs as upstream's `stat` rows (jobid, status, name, start_time, stop_time; `long` adds the instance's).

    With `job_ids`, those jobs; else the newest `n` of the step function, optionally only those
    with `status`.

    Example:
        ```python
        from prefect import flow
        from tibanna_provider.prefect import stat

        @flow
        def running_jobs() -> list[str]:
            return [row["jobid"] for row in stat(status="RUNNING")]

        running_jobs()
        ```
    """
    settings = settings or TibannaSettings()
    return settings.get_api().stat(sfn=None if job_ids else settings.step_function, status=status, n=n,
                                   job_ids=job_ids, long=long)


@task
def plot_metrics(job_id: str, settings: TibannaSettings | None = None) -> str:
    """Build the job's resource metrics report (metrics.html and its TSVs in the log bucket); returns its location.

    Example:
        ```python
        from prefect import flow
        from tibanna_provider.prefect import plot_metrics, run_workflow, wait_for_job

        JOB = {"args": {"language": "shell", "command": "echo hello", "container_image": "ubuntu:20.04",
                        "output_S3_bucket": "my-data"},
               "config": {"log_bucket": "my-logs", "cpu": 1, "mem": 1}}

        @flow
        def with_report() -> str:
            job_id = run_workflow(JOB)
            wait_for_job(job_id)
            return plot_metrics(job_id)

        report = with_report()
        ```
    """
    return _api(settings).plot_metrics(job_id, open_browser=False)


@task
def cost(job_id: str, settings: TibannaSettings | None = None) -> float | None:
    """What a job cost, in USD; None while it runs.

    Example:
        ```python
        from prefect import flow
        from tibanna_provider.prefect import cost, stat

        @flow
        def spent_lately() -> float:
            return sum(cost(row["jobid"]) or 0 for row in stat(status="SUCCEEDED", n=10))

        spent_lately()
        ```
    """
    return _api(settings).cost(job_id)


@task
def cost_estimate(job_id: str | None = None, input_json: dict | str | None = None, hours: float | None = None,
                  settings: TibannaSettings | None = None) -> tuple[float, str]:
    """A cost estimate in USD and its kind: of a job, or before submitting, of a description run for `hours`.

    Example:
        ```python
        from prefect import flow
        from tibanna_provider.prefect import cost_estimate

        JOB = {"args": {"language": "shell", "command": "echo hello", "container_image": "ubuntu:20.04",
                        "output_S3_bucket": "my-data"},
               "config": {"log_bucket": "my-logs", "instance_type": "t3.medium"}}

        @flow
        def budget() -> float:
            usd, kind = cost_estimate(input_json=JOB, hours=2)
            return usd

        budget()
        ```
    """
    return _api(settings).cost_estimate(job_id=job_id, input_json=input_json, hours=hours)


arun_workflow = _async_twin(run_workflow)
arerun = _async_twin(rerun)
akill = _async_twin(kill)
astat = _async_twin(stat)
aplot_metrics = _async_twin(plot_metrics)
acost = _async_twin(cost)
acost_estimate = _async_twin(cost_estimate)
