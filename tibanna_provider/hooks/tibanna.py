"""TibannaHook: a Tibanna `API` built from an Airflow connection, and the job watcher that the
operators, the sensor and the trigger share (`tibanna_provider.watch`).

The `tibanna` connection's extras choose where jobs run: `backend` (local | aws), `sfn` (the
default step function), `region`, `aws_conn_id`, `profile` (aws) and `tibanna_home` (local).
Without the connection, `API()`'s defaults from the environment apply (TIBANNA_BACKEND,
TIBANNA_HOME, ...).
"""
from __future__ import annotations

import dataclasses
import logging
from functools import cached_property
from typing import Any, Mapping

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowException, AirflowNotFoundException

from tibanna.core import API
from tibanna_provider import CONNECTION_EXTRAS
from tibanna_provider.watch import JobWatcher

# Task instance states after which a task does not run again: a user's "mark failed/succeeded".
ENDED_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})


def task_runs_again(owner: Mapping[str, Any]) -> bool:
    """Whether the task instance `owner` ({dag_id, task_id, run_id, map_index}) is to run again.

    Asked when a task or its trigger is killed by a user: a cleared task instance runs again and
    its next try re-attaches to the job (so the job is left running: killing it would race the
    new try, which could attach to the job being killed and fail with ABORTED); one marked
    failed or succeeded does not (so its job is killed). When the state cannot be read, the
    answer is no: a user's kill ends the job.
    """
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    map_index = owner.get("map_index", -1)
    try:
        states = RuntimeTaskInstance.get_task_states(dag_id=owner["dag_id"], task_ids=[owner["task_id"]],
                                                     run_ids=[owner["run_id"]], map_index=map_index)
    except Exception:  # no API to ask (a test run, a broken connection): treat as a kill
        logging.getLogger(__name__).warning("cannot read the state of task %s; treating this as a kill", owner,
                                            exc_info=True)
        return False
    name = owner["task_id"] if map_index is None or map_index < 0 else f"{owner['task_id']}_{map_index}"
    state = states.get(owner["run_id"], {}).get(name, "failed")
    return state not in ENDED_STATES


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
        options = _aws_connection_options(self.aws_conn_id) if self.aws_conn_id else {}
        options |= {name: value for name, value in (("region", self.region), ("profile", self.profile)) if value}
        return API.from_settings(self.backend, home=self.tibanna_home, sfn=self.sfn, **options)


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

    def watcher(self, logger: logging.Logger | Any) -> JobWatcher:
        """A job watcher on this connection's API that forwards job logs to `logger`."""
        return JobWatcher(self.api, logger)
