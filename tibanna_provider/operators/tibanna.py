"""Operators for Tibanna jobs: run (and wait), rerun, kill, plot metrics, cost, and the admin verbs.

Every operator takes `tibanna_conn_id` (default `tibanna_default`; without that connection, the
environment decides where jobs run, as `API()` does).

Re-attaching: `TibannaRunWorkflowOperator` names its job after the task instance, so a retried,
restarted or cleared task finds the job an earlier try started instead of starting a second one
(`API.submit_or_attach`). The id is `<dag_id>.<task_id>[.<map_index>]-<hash>`: sanitised and
shortened to fit job ids (128 characters of `[A-Za-z0-9_.-]`), with a hash of dag id, task id,
run id and map index so ids never collide. While that job runs, or once it SUCCEEDED, every try
re-attaches to it. When it FAILED (or was ABORTED or TIMED_OUT), the next try starts `<id>-2`
(then `-3`, ...): a fresh job linked to the one it replaces.

Quick jobs and deferral: a deferrable task first watches its job in the worker for
`defer_after` seconds (default 10), so a job that ends quickly never defers. A job still running
then is handed to the triggerer, whose first event is held until `first_event_delay` seconds
after the deferral (default 15): Airflow fails a deferred task whose trigger fires before the
scheduler has seen the deferring worker exit (apache/airflow#66374, #72716, #71580).
"""
from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from functools import cached_property
from typing import Any, Sequence

from airflow.sdk import BaseOperator, Context, conf
from airflow.sdk.exceptions import AirflowException, AirflowSkipException

from tibanna_provider.hooks.tibanna import TibannaHook, TibannaJobFailed, task_runs_again
from tibanna_provider.links.tibanna import (
    TibannaExecutionLink,
    TibannaJobLogLink,
    TibannaMetricsReportLink,
    TibannaPostrunLink,
    persist_job_links,
)
from tibanna_provider.triggers.tibanna import DEFAULT_POLL_INTERVAL, FIRST_EVENT_DELAY, TibannaJobTrigger
from tibanna_provider.watch import JobFailed, WaitTimeout

DEFAULT_MAX_WAIT = timedelta(days=7)  # genomics jobs run for hours or days; execution_timeout can cut shorter
MAX_JOBID_LENGTH = 128
_HASH_LENGTH = 12
_ATTEMPT_ROOM = 6  # for "-<n>" after the task's job id
_NOT_IN_JOBID = re.compile(r"[^A-Za-z0-9_.-]+")
DEFER_AFTER = 10.0  # seconds a deferrable task watches its job in the worker before deferring


def task_job_id(dag_id: str, task_id: str, run_id: str, map_index: int = -1) -> str:
    """The job id of a task instance: readable, unique per (dag, task, run, map index)."""
    digest = hashlib.sha256(json.dumps([dag_id, task_id, run_id, map_index]).encode()).hexdigest()[:_HASH_LENGTH]
    readable = _NOT_IN_JOBID.sub("_", f"{dag_id}.{task_id}" + (f".{map_index}" if map_index >= 0 else ""))
    readable = readable.lstrip("_.-")[:MAX_JOBID_LENGTH - _HASH_LENGTH - 1 - _ATTEMPT_ROOM]
    return f"{readable}-{digest}" if readable else digest


def _as_timedelta(value: timedelta | float) -> timedelta:
    return value if isinstance(value, timedelta) else timedelta(seconds=value)


class TibannaBaseOperator(BaseOperator):
    """An operator that talks to Tibanna through `self.hook`."""

    template_fields: Sequence[str] = ("tibanna_conn_id",)
    ui_color = "#ffe4b5"

    def __init__(self, *, tibanna_conn_id: str = TibannaHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tibanna_conn_id = tibanna_conn_id

    @cached_property
    def hook(self) -> TibannaHook:
        return TibannaHook(self.tibanna_conn_id)


class TibannaJobOperator(TibannaBaseOperator):
    """Starts (or finds) one job, returns its id to XCom, and waits for it to end.

    :param wait_for_completion: wait until the job ends (fail the task if it does not succeed).
    :param deferrable: wait in the triggerer instead of a worker slot (after `defer_after` seconds).
    :param poll_interval: seconds between status checks.
    :param max_wait: the longest wait (timedelta or seconds); the job is left running after it, and a
        retry of a `TibannaRunWorkflowOperator` re-attaches to it.
    :param forward_log: copy the job's log into the task log while waiting.
    :param defer_after: deferrable only: seconds to watch the job in the worker before deferring, so
        a quick job ends the task without a deferral.
    :param first_event_delay: deferrable only: the trigger reports no end before this many seconds
        after the deferral (see the module docstring).
    """

    operator_extra_links = (TibannaJobLogLink(), TibannaPostrunLink(), TibannaMetricsReportLink(),
                            TibannaExecutionLink())

    def __init__(self, *, wait_for_completion: bool = True,
                 deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
                 poll_interval: float = DEFAULT_POLL_INTERVAL, max_wait: timedelta | float = DEFAULT_MAX_WAIT,
                 forward_log: bool = True, defer_after: float = DEFER_AFTER,
                 first_event_delay: float = FIRST_EVENT_DELAY, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.max_wait = _as_timedelta(max_wait)
        self.forward_log = forward_log
        self.defer_after = defer_after
        self.first_event_delay = first_event_delay
        self.watched_job_id: str | None = None
        self._owner: dict[str, Any] | None = None

    def start_job(self, context: Context) -> dict:
        """Start or find the job; returns it (an `API.job` dict)."""
        raise NotImplementedError

    def execute(self, context: Context) -> str:
        ti = context["ti"]
        self._owner = {"dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": ti.run_id, "map_index": ti.map_index}
        job = self.start_job(context)
        self.watched_job_id = job["jobid"]
        ti.xcom_push(key="job_id", value=self.watched_job_id)
        persist_job_links(context, self.hook.api, self.watched_job_id, self.tibanna_conn_id)
        if not self.wait_for_completion:
            return self.watched_job_id
        offsets: dict[str, int] | None = {} if self.forward_log else None
        clock = self.hook.api.clock
        started = clock.now()
        watch = self.defer_after if self.deferrable else self.max_wait.total_seconds()
        try:
            self.hook.watcher(self.log).wait([self.watched_job_id], poll_interval=self.poll_interval,
                                             timeout=min(watch, self.max_wait.total_seconds()), offsets=offsets)
            return self.watched_job_id
        except JobFailed as err:
            raise TibannaJobFailed(str(err)) from None
        except WaitTimeout as err:
            left = self.max_wait.total_seconds() - (clock.now() - started)
            if not self.deferrable or left <= 0:
                raise AirflowException(str(err)) from None
        self.defer(trigger=TibannaJobTrigger([self.watched_job_id], self.tibanna_conn_id, self.poll_interval,
                                             self.forward_log, offsets, owner=self._owner,
                                             not_before=clock.now() + self.first_event_delay),
                   method_name="execute_complete", timeout=timedelta(seconds=left))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> str:
        """After a deferred wait: the job id, or the job's failure."""
        if event.get("status") != "success":
            raise TibannaJobFailed(event.get("message") or f"unexpected trigger event {event!r}")
        return event["job_ids"][0]

    def on_kill(self) -> None:
        """The task was killed while it waited in the worker (deferred: see `tibanna_provider.plugins.listener`).

        Marked failed or succeeded: the job is killed too. Cleared: the job is left running,
        because the task's next try owns it and re-attaches to it (see `task_runs_again`).
        """
        if self.watched_job_id and not (self._owner and task_runs_again(self._owner)):
            self.hook.api.kill(job_id=self.watched_job_id)


class TibannaRunWorkflowOperator(TibannaJobOperator):
    """Run one Tibanna job: upstream's input JSON (templated) on the connection's backend.

    Returns the job id (XCom `return_value`; also pushed early under the key `job_id`, so a
    downstream task can find a failed job). A retried or restarted task re-attaches to the job an
    earlier try started; after a failed job, it starts a fresh one (see the module docstring).

    :param input_json: the job description (dict, JSON text or a file path); its `jobid` is ignored.
    :param sfn: the step function (default: the connection's `sfn`, else the backend's default).
    :param jobid: the base job id instead of one derived from the task instance.
    """

    template_fields: Sequence[str] = ("tibanna_conn_id", "input_json", "sfn", "jobid")
    template_fields_renderers = {"input_json": "json"}

    def __init__(self, *, input_json: dict | str, sfn: str | None = None, jobid: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.input_json = input_json
        self.sfn = sfn
        self.jobid = jobid

    def start_job(self, context: Context) -> dict:
        ti = context["ti"]
        key = self.jobid or task_job_id(ti.dag_id, ti.task_id, ti.run_id, ti.map_index)
        job = self.hook.api.submit_or_attach(self.input_json, key, sfn=self.sfn)
        if job["attached"]:
            self.log.info("re-attaching to job %s (%s), started by an earlier try", job["jobid"], job["status"])
        else:
            self.log.info("submitted job %s (execution %s)", job["jobid"], job["exec_arn"])
        if job["rerun_of"]:
            ti.xcom_push(key="previous_job_id", value=job["rerun_of"])
        return job


class TibannaRerunOperator(TibannaJobOperator):
    """Run a job again from its kept description, with config overrides (upstream's `rerun`).

    Returns the new job's id; skips when `app_name_filter` does not match the job's app.

    :param job_id: the job to run again (templated), e.g. a failed job's id from XCom key `job_id`.
    :param override_config: config fields to change, e.g. `{"instance_type": "c5.4xlarge", "ebs_size": 100}`.
    :param app_name_filter: rerun only a job of this app.
    :param sfn: the step function (default: the job's own).
    """

    template_fields: Sequence[str] = ("tibanna_conn_id", "job_id", "override_config", "sfn")
    template_fields_renderers = {"override_config": "json"}

    def __init__(self, *, job_id: str, override_config: dict | None = None, app_name_filter: str | None = None,
                 sfn: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.override_config = override_config
        self.app_name_filter = app_name_filter
        self.sfn = sfn

    def start_job(self, context: Context) -> dict:
        submission = self.hook.api.rerun(job_id=self.job_id, sfn=self.sfn,
                                         override_config=self.override_config, app_name_filter=self.app_name_filter,
                                         verbose=False)
        if submission is None:
            raise AirflowSkipException(f"job {self.job_id} is not of app {self.app_name_filter}")
        self.log.info("job %s reruns job %s", submission["jobid"], self.job_id)
        return self.hook.api.job(submission["jobid"])


class TibannaKillOperator(TibannaBaseOperator):
    """End a running job (`soft`: it ends FAILED with JobAbortedException, as upstream)."""

    template_fields: Sequence[str] = ("tibanna_conn_id", "job_id")

    def __init__(self, *, job_id: str, soft: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.soft = soft

    def execute(self, context: Context) -> str:
        self.hook.api.kill(job_id=self.job_id, soft=self.soft)
        return self.hook.api.check_status(job_id=self.job_id)


class TibannaPlotMetricsOperator(TibannaBaseOperator):
    """Make a job's metrics report; returns where it is (and links to it)."""

    template_fields: Sequence[str] = ("tibanna_conn_id", "job_id")
    operator_extra_links = (TibannaMetricsReportLink(),)

    def __init__(self, *, job_id: str, force_upload: bool = False, update_html_only: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.force_upload = force_upload
        self.update_html_only = update_html_only

    def execute(self, context: Context) -> str:
        report = self.hook.api.plot_metrics(self.job_id, force_upload=self.force_upload,
                                            update_html_only=self.update_html_only, open_browser=False)
        persist_job_links(context, self.hook.api, self.job_id, self.tibanna_conn_id, (TibannaMetricsReportLink,))
        self.log.info("metrics report of job %s: %s", self.job_id, report)
        return report


class TibannaCostOperator(TibannaBaseOperator):
    """A job's cost: `{"cost": <USD, or None before the job ends>, "type": "actual cost" | <kind of estimate>}`.

    :param estimate: ask for `cost_estimate` (available at once) instead of the billed cost.
    :param update_tsv: write the figure into the job's metrics report too.
    """

    template_fields: Sequence[str] = ("tibanna_conn_id", "job_id")

    def __init__(self, *, job_id: str, estimate: bool = False, update_tsv: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.estimate = estimate
        self.update_tsv = update_tsv

    def execute(self, context: Context) -> dict[str, Any]:
        if self.estimate:
            cost, kind = self.hook.api.cost_estimate(self.job_id, update_tsv=self.update_tsv)
        else:  # None until the job has ended
            cost, kind = self.hook.api.cost(self.job_id, update_tsv=self.update_tsv), "actual cost"
        self.log.info("job %s: %s %s USD", self.job_id, kind, cost)
        return {"cost": cost, "type": kind}


class TibannaDeployUnicornOperator(TibannaBaseOperator):
    """Create or update a step function (unicorn) and its usergroup; returns the step function's name.

    `no_setenv` defaults to True here: a task should not change the default step function of the
    machine it runs on.
    """

    template_fields: Sequence[str] = ("tibanna_conn_id", "buckets", "suffix", "usergroup")

    def __init__(self, *, buckets: str | list[str] = "", suffix: str | None = None, usergroup: str = "",
                 no_setup: bool = False, no_setenv: bool = True, do_not_delete_public_access_block: bool = False,
                 deploy_costupdater: bool = False, subnets: list[str] | None = None,
                 security_groups: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.buckets = buckets
        self.suffix = suffix
        self.usergroup = usergroup
        self.no_setup = no_setup
        self.no_setenv = no_setenv
        self.do_not_delete_public_access_block = do_not_delete_public_access_block
        self.deploy_costupdater = deploy_costupdater
        self.subnets = subnets
        self.security_groups = security_groups

    def execute(self, context: Context) -> str:
        return self.hook.api.deploy_unicorn(
            suffix=self.suffix, no_setup=self.no_setup, buckets=self.buckets, no_setenv=self.no_setenv,
            usergroup=self.usergroup, do_not_delete_public_access_block=self.do_not_delete_public_access_block,
            deploy_costupdater=self.deploy_costupdater, subnets=self.subnets, security_groups=self.security_groups)


class TibannaCleanupOperator(TibannaBaseOperator):
    """Remove a usergroup's step functions (and the group; with `purge_history`, its finished jobs)."""

    template_fields: Sequence[str] = ("tibanna_conn_id", "user_group_name", "suffix")

    def __init__(self, *, user_group_name: str, suffix: str | None = None, purge_history: bool = False,
                 do_not_remove_iam_group: bool = False, ignore_errors: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.user_group_name = user_group_name
        self.suffix = suffix
        self.purge_history = purge_history
        self.do_not_remove_iam_group = do_not_remove_iam_group
        self.ignore_errors = ignore_errors

    def execute(self, context: Context) -> list[str]:
        removed = self.hook.api.cleanup(user_group_name=self.user_group_name, suffix=self.suffix,
                                        ignore_errors=self.ignore_errors,
                                        do_not_remove_iam_group=self.do_not_remove_iam_group,
                                        purge_history=self.purge_history)
        self.log.info("removed: %s", ", ".join(removed) or "nothing")
        return removed
