"""TibannaJobSensor: wait for one or many jobs (the WaitForJob of the design card)."""
from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import Any, Iterable, Sequence

from airflow.sdk import BaseSensorOperator, Context, PokeReturnValue, conf
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from tibanna_provider.hooks.tibanna import TibannaHook
from tibanna_provider.triggers.tibanna import DEFAULT_POLL_INTERVAL, FIRST_EVENT_DELAY, TibannaJobTrigger
from tibanna_provider.watch import JobFailed


class TibannaJobSensor(BaseSensorOperator):
    """Succeeds when every job SUCCEEDED, fails as soon as one ends otherwise.

    Returns `{job_id: status}` to XCom. All jobs are read in one status query per poke. The
    failure names each failed job's error and shows the tail of its log; it is final (no retry:
    the job stays failed), and with `soft_fail` the sensor is skipped instead, in every mode. The
    sensor's `timeout` (default: Airflow's `[sensors] default_timeout`, 7 days) applies in poke,
    reschedule and deferrable mode alike.

    :param job_ids: one job id or a list (templated; e.g. the output of a mapped run task).
    :param tibanna_conn_id: the `tibanna` connection (the environment's defaults when it does not exist).
    :param deferrable: wait in the triggerer (shares one status query with every other deferred wait).
    :param forward_log: copy the jobs' new log lines into the task log (poke and deferrable mode; a
        rescheduled sensor starts afresh each time and would repeat them, so it does not).
    """

    template_fields: Sequence[str] = ("job_ids", "tibanna_conn_id")
    ui_color = "#ffe4b5"

    def __init__(self, *, job_ids: str | Iterable[str], tibanna_conn_id: str = TibannaHook.default_conn_name,
                 deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
                 forward_log: bool = True, poke_interval: timedelta | float = DEFAULT_POLL_INTERVAL,
                 **kwargs: Any) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.job_ids = job_ids
        self.tibanna_conn_id = tibanna_conn_id
        self.deferrable = deferrable
        self.forward_log = forward_log
        self._log_offsets: dict[str, int] = {}

    @cached_property
    def hook(self) -> TibannaHook:
        return TibannaHook(self.tibanna_conn_id)

    def _job_ids(self) -> list[str]:
        return [self.job_ids] if isinstance(self.job_ids, str) else list(self.job_ids)

    def poke(self, context: Context) -> PokeReturnValue:
        offsets = self._log_offsets if self.forward_log and not self.reschedule else None
        try:
            done = self.hook.watcher(self.log).look(self._job_ids(), offsets)
        except JobFailed as err:
            raise AirflowFailException(str(err)) from None
        statuses = None if done is None else {jobid: job["status"] for jobid, job in done.items()}
        return PokeReturnValue(is_done=done is not None, xcom_value=statuses)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        try:
            first = self.poke(context)
        except AirflowFailException as err:  # as the base sensor treats a failed poke
            if self.soft_fail or self.never_fail:
                raise AirflowSkipException(f"Skipping: {err}") from err
            raise
        if first.is_done:
            return first.xcom_value
        self.defer(trigger=TibannaJobTrigger(self._job_ids(), self.tibanna_conn_id, self.poke_interval,
                                             self.forward_log, self._log_offsets,
                                             not_before=self.hook.api.clock.now() + FIRST_EVENT_DELAY),
                   method_name="execute_complete", timeout=timedelta(seconds=self.timeout))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, str]:
        """After a deferred wait: the statuses, or the failure."""
        if event.get("status") != "success":
            raise AirflowFailException(event.get("message") or f"unexpected trigger event {event!r}")
        return event["statuses"]
