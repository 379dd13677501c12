"""TibannaHook: a Tibanna `API` built from an Airflow connection, and the job-watching steps
(status, log forwarding, failure message) that the operators, the sensor and the trigger share.

The `tibanna` connection's extras choose where jobs run: `backend` (local | aws), `sfn` (the
default step function), `region`, `aws_conn_id`, `profile` (aws) and `tibanna_home` (local).
Without the connection, `API()`'s defaults from the environment apply (TIBANNA_BACKEND,
TIBANNA_HOME, ...).
"""
from __future__ import annotations

import dataclasses
import logging
import time
from functools import cached_property
from typing import Any, Iterable, Mapping

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowException, AirflowNotFoundException

from tibanna import protocol
from tibanna.core import API
from tibanna.storage import LocalStore
from tibanna_provider import CONNECTION_EXTRAS

LOG_TAIL_LINES = 20  # how much of a failed job's log goes into the task's error


class TibannaJobFailed(AirflowException):
    """A job ended FAILED, TIMED_OUT or ABORTED; the message names its error and shows its log's tail."""


@dataclasses.dataclass(frozen=True)
class TibannaSettings:
    """Where jobs run, as a `tibanna` connection says; hashable, so waits can share a poller per settings."""

    backend: str | None = None
    sfn: str | None = None
    region: str | None = None
    aws_conn_id: str | None = None
    profile: str | None = None
    tibanna_home: str | None = None

    @classmethod
    def from_extras(cls, extras: Mapping[str, Any]) -> TibannaSettings:
        """From a connection's extras; the UI may store them as `extra__tibanna__<name>`."""
        found = {name: extras.get(name) or extras.get(f"extra__tibanna__{name}") for name in CONNECTION_EXTRAS}
        return cls(**{name: str(value) for name, value in found.items() if value})

    def api(self) -> API:
        """An API for these settings; anything not set comes from the environment, as `API()` does."""
        backend = API(self.backend).backend_name
        if backend == "local":
            return API(backend, **({"home": self.tibanna_home} if self.tibanna_home else {}))
        options = _aws_connection_options(self.aws_conn_id) if self.aws_conn_id else {}
        options |= {name: value for name, value in (("region", self.region), ("profile", self.profile)) if value}
        return API(backend, **options)


def _aws_connection_options(aws_conn_id: str) -> dict[str, str]:
    """The aws backend's options from an Airflow `aws` connection: its region, profile and endpoint.

    The backend takes credentials from a profile or the environment only, so a connection that
    holds access keys is refused rather than silently ignored.
    """
    conn = BaseHook.get_connection(aws_conn_id)
    if conn.login or conn.password:
        raise AirflowException(f"aws_conn_id {aws_conn_id!r} holds access keys; Tibanna's aws backend takes "
                               "credentials from a profile or the environment: set `profile_name` instead")
    extras = conn.extra_dejson
    found = {"region": extras.get("region_name"), "profile": extras.get("profile_name"),
             "endpoint_url": extras.get("endpoint_url")}
    return {name: value for name, value in found.items() if value}


class TibannaHook(BaseHook):
    """Interact with Tibanna: `hook.api` is a `tibanna.core.API` for the connection's backend.

    :param tibanna_conn_id: a `tibanna` connection; when it does not exist, the environment decides.
    :param settings: already resolved settings (the trigger resolves them without blocking its loop).
    """

    conn_name_attr = "tibanna_conn_id"
    default_conn_name = "tibanna_default"
    conn_type = "tibanna"
    hook_name = "Tibanna"

    def __init__(self, tibanna_conn_id: str = default_conn_name, settings: TibannaSettings | None = None) -> None:
        super().__init__()
        self.tibanna_conn_id = tibanna_conn_id
        if settings is not None:
            self.settings = settings

    @cached_property
    def settings(self) -> TibannaSettings:
        """The connection's settings, or the environment's defaults when there is no such connection."""
        try:
            conn = self.get_connection(self.tibanna_conn_id)
        except AirflowNotFoundException:
            self.log.info("no connection %r; Tibanna's defaults from the environment apply", self.tibanna_conn_id)
            return TibannaSettings()
        return TibannaSettings.from_extras(conn.extra_dejson)

    @classmethod
    async def async_settings(cls, tibanna_conn_id: str) -> TibannaSettings:
        """`settings` for code running on an event loop (the triggerer)."""
        try:
            conn = await cls.aget_connection(tibanna_conn_id)
        except AirflowNotFoundException:
            return TibannaSettings()
        return TibannaSettings.from_extras(await conn.aextra_dejson())

    @cached_property
    def api(self) -> API:
        """The Tibanna API for this connection."""
        return self.settings.api()

    def get_conn(self) -> API:
        return self.api

    # Submitting ---------------------------------------------------------------------------------
    def submit(self, input_json: dict | str, sfn: str | None = None, jobid: str | None = None,
               rerun_of: str | None = None) -> dict:
        """Submit one job (idempotent per job id: a known id returns its first submission, starts nothing);
        `rerun_of` links it to the job it replaces."""
        return self.api.run_workflow(input_json, sfn=sfn or self.settings.sfn, jobid=jobid, verbose=False,
                                     open_browser=False, rerun_of=rerun_of)

    def submission(self, job_id: str) -> dict[str, Any]:
        """A known job's submission dict (as run_workflow returned it)."""
        record = self.api.backend.get(job_id=job_id)
        if record is None:
            raise AirflowException(f"no Tibanna job {job_id}")
        return record.description

    def links(self, submission: Mapping[str, Any]) -> dict[str, str]:
        """Where a person looks at a job: its log, its metrics report and, on AWS, its execution."""
        from tibanna.metrics import report_url

        jobid, bucket = submission["jobid"], submission["config"]["log_bucket"]
        store = self.api.backend.store
        log_key = protocol.key(jobid, protocol.LOG)
        if isinstance(store, LocalStore):
            log_url = store.path(bucket, log_key).resolve().as_uri()
        else:
            log_url = (f"https://s3.console.aws.amazon.com/s3/object/{bucket}?region={self.api.backend.region}"
                       f"&prefix={log_key}")
        execution = submission.get("_tibanna", {}).get("url", "")
        return {"log": log_url, "metrics": report_url(store, bucket, jobid),
                "execution": execution if execution.startswith("https://") else ""}

    # Watching -----------------------------------------------------------------------------------
    def statuses(self, job_ids: Iterable[str]) -> dict[str, str]:
        """The status of each known job, in one query."""
        return {row["jobid"]: row["status"] for row in self.api.stat(job_ids=list(job_ids))}

    def forward_log(self, job_id: str, offset: int, logger: logging.Logger | Any, final: bool = False) -> int:
        """Log the job's log lines past `offset` (whole lines only, unless `final`); returns the new offset."""
        text = self.api.log(job_id=job_id, quiet=True)
        end = len(text) if final else text.rfind("\n", offset) + 1
        for line in text[offset:end].splitlines():
            logger.info("[%s] %s", job_id, line)
        return max(end, offset)

    def failure_message(self, job_id: str) -> str:
        """`job X FAILED: <error name>: <cause>` and the last lines of its log."""
        record = self.api.backend.get(job_id=job_id)
        tail = self.api.log(job_id=job_id, quiet=True).splitlines()[-LOG_TAIL_LINES:]
        head = f"Tibanna job {job_id} {record.status}: {record.error or 'no error name'}: {record.cause or '-'}"
        return "\n".join([head, f"--- last {len(tail)} lines of its log ---", *tail]) if tail else head

    def check(self, job_ids: list[str], log_offsets: dict[str, int] | None, logger: logging.Logger | Any,
              statuses: Mapping[str, str] | None = None) -> dict[str, str] | None:
        """One look at the jobs: forward new log lines, raise `TibannaJobFailed` when any job failed.

        :param log_offsets: how much of each log was forwarded (updated in place); None forwards nothing.
        :param statuses: statuses already read (by a shared poller); else they are read now.
        :return: the statuses once every job SUCCEEDED, else None.
        """
        statuses = dict(statuses) if statuses is not None else self.statuses(job_ids)
        missing = [jobid for jobid in job_ids if jobid not in statuses]
        if missing:
            raise AirflowException(f"no Tibanna job {', '.join(missing)} (backend {self.api.backend.name})")
        if log_offsets is not None:
            for jobid in job_ids:
                final = statuses[jobid] != protocol.RUNNING
                log_offsets[jobid] = self.forward_log(jobid, log_offsets.get(jobid, 0), logger, final)
        failed = [jobid for jobid in job_ids if statuses[jobid] not in (protocol.RUNNING, protocol.SUCCEEDED)]
        if failed:
            raise TibannaJobFailed("\n\n".join(self.failure_message(jobid) for jobid in failed))
        if all(statuses[jobid] == protocol.SUCCEEDED for jobid in job_ids):
            return {jobid: statuses[jobid] for jobid in job_ids}
        return None

    def wait(self, job_ids: list[str], *, poll_interval: float, timeout: float, logger: logging.Logger | Any,
             log_offsets: dict[str, int] | None) -> dict[str, str]:
        """`check` every `poll_interval` seconds until every job SUCCEEDED (or one failed, or `timeout`)."""
        deadline = time.monotonic() + timeout
        while (done := self.check(job_ids, log_offsets, logger)) is None:
            if time.monotonic() >= deadline:
                raise AirflowException(f"Tibanna job(s) {', '.join(job_ids)} still RUNNING after {timeout:.0f} s; "
                                       "left running")
            time.sleep(min(poll_interval, max(0.0, deadline - time.monotonic())))
        return done
