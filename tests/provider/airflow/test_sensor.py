"""TibannaJobSensor in poke, reschedule and deferrable mode, with soft_fail and timeout, on the stub backend."""
from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from airflow.sdk.exceptions import (
    AirflowFailException,
    AirflowRescheduleException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)

from jobhelpers import by_command, shell_job, wait_done
from tibanna.backends.stub import Script
from tibanna.core import API
from tibanna_provider.sensors.tibanna import TibannaJobSensor


@pytest.fixture
def jobs(stub):
    """Ids of a succeeded, a failed and a running job (on the stub)."""
    stub.script = by_command({"true": Script.succeeds(after=1), "exit 3": Script.fails(after=1),
                              "sleep 300": Script.runs()})
    api = API()
    done, failed, running = (api.run_workflow(shell_job(cmd))["jobid"] for cmd in ("true", "exit 3", "sleep 300"))
    assert (wait_done(api, done), wait_done(api, failed)) == ("SUCCEEDED", "FAILED")
    return {"done": done, "failed": failed, "running": running}


def sensor(job_ids, **kwargs) -> TibannaJobSensor:
    return TibannaJobSensor(task_id="wait", job_ids=job_ids, **{"poke_interval": 0.05} | kwargs)


def test_poke_reads_many_jobs_in_one_query(jobs):
    with mock.patch.object(API, "jobs", autospec=True, side_effect=API.jobs) as query:
        result = sensor([jobs["done"], jobs["running"]]).poke({})
    assert not result.is_done
    (call,) = query.call_args_list
    assert call.args[1] == [jobs["done"], jobs["running"]]
    assert sensor(jobs["done"]).execute({}) == {jobs["done"]: "SUCCEEDED"}


def test_a_failed_job_fails_the_sensor_for_good_or_skips_it_with_soft_fail(jobs):
    with pytest.raises(AirflowFailException, match=f"job {jobs['failed']} FAILED with AWSEMJobErrorException"):
        sensor([jobs["done"], jobs["failed"]]).execute({})
    with pytest.raises(AirflowSkipException):
        sensor([jobs["failed"]], soft_fail=True).execute({})


def test_poke_mode_timeout(jobs):
    with pytest.raises(AirflowSensorTimeout):
        sensor(jobs["running"], timeout=0.2).execute({})
    with pytest.raises(AirflowSkipException):
        sensor(jobs["running"], timeout=0.2, soft_fail=True).execute({})


def test_reschedule_mode_frees_the_slot(jobs):
    ti = mock.Mock()
    ti.get_first_reschedule_date.return_value = None
    with pytest.raises(AirflowRescheduleException):
        sensor(jobs["running"], mode="reschedule", poke_interval=60).execute({"ti": ti})


def test_deferrable_mode_defers_all_jobs_with_the_sensor_timeout(jobs):
    wait = sensor([jobs["done"], jobs["running"]], deferrable=True, timeout=3600)
    with pytest.raises(TaskDeferred) as deferred:
        wait.execute({})
    assert deferred.value.trigger.job_ids == [jobs["done"], jobs["running"]]
    assert deferred.value.trigger.owner is None  # the sensor only watches: its trigger kills nothing
    assert deferred.value.trigger.not_before == API().clock.now() + 15  # no event within seconds of deferring
    assert deferred.value.timeout == timedelta(hours=1)
    event = {"status": "success", "job_ids": [jobs["done"]], "statuses": {jobs["done"]: "SUCCEEDED"}}
    assert wait.execute_complete({}, event) == {jobs["done"]: "SUCCEEDED"}
    assert sensor(jobs["done"], deferrable=True).execute({}) == {jobs["done"]: "SUCCEEDED"}  # no deferral


def test_deferrable_mode_failure_and_soft_fail(jobs):
    error = {"event": {"status": "error", "job_ids": ["x"], "message": "Tibanna job x FAILED"}}
    with pytest.raises(AirflowFailException, match="job x FAILED"):
        sensor("x", deferrable=True).resume_execution("execute_complete", error, {})
    with pytest.raises(AirflowSkipException):
        sensor("x", deferrable=True, soft_fail=True).resume_execution("execute_complete", error, {})
    with pytest.raises(AirflowSkipException):  # failed before deferring
        sensor(jobs["failed"], deferrable=True, soft_fail=True).execute({})
