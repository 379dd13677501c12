"""The plugin's listener: a deferred task a user marks failed or succeeded ends its jobs.

The task instances are the metadata DB's rows (as the api-server hands them to listeners), with
the trigger row the task deferred on; the events go through Airflow's listener manager, so the
plugin's registration is tested too. The jobs are the stub backend's. The real api-server path
is in tests/provider/airflow/deployment.
"""
from __future__ import annotations

import pytest

from jobhelpers import shell_job
from tibanna.backends.stub import Script
from tibanna.core import API
from tibanna_provider.operators.tibanna import TibannaRunWorkflowOperator
from tibanna_provider.triggers.tibanna import TibannaJobTrigger

OWNER = {"dag_id": "d", "task_id": "held", "run_id": "r", "map_index": -1}


def deferred_row(trigger: TibannaJobTrigger | None, state: str):
    """A task instance row in `state` that deferred on `trigger` (None: it never deferred)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import Trigger

    ti = TaskInstance(TibannaRunWorkflowOperator(task_id="held", input_json={}), dag_version_id=None, run_id="r")
    ti.state = state
    if trigger is not None:
        ti.trigger = Trigger.from_object(trigger)
        ti.trigger_id = 1
    return ti


def listeners():
    from airflow.listeners.listener import get_listener_manager

    return get_listener_manager().hook


@pytest.fixture
def job(stub) -> str:
    stub.script = Script.runs()
    return API().run_workflow(shell_job("sleep 300"))["jobid"]


@pytest.mark.parametrize("state", ["failed", "success"])
def test_a_deferred_task_marked_failed_or_succeeded_kills_its_job(job, state):
    ti = deferred_row(TibannaJobTrigger([job], owner=OWNER), state)
    if state == "failed":
        listeners().on_task_instance_failed(previous_state=None, task_instance=ti, error="marked failed")
    else:
        listeners().on_task_instance_success(previous_state=None, task_instance=ti)
    assert API().check_status(job_id=job) == "ABORTED"
    listeners().on_task_instance_failed(previous_state=None, task_instance=ti, error="again")  # ended: left as is
    assert API().check_status(job_id=job) == "ABORTED"


def test_the_job_runs_on_for_a_retry_a_sensor_or_a_task_that_never_deferred(job):
    for ti in (deferred_row(TibannaJobTrigger([job], owner=OWNER), "up_for_retry"),  # the next try re-attaches
               deferred_row(TibannaJobTrigger([job]), "failed"),  # a sensor's wait: not its job
               deferred_row(None, "failed")):  # it never deferred: the operator's on_kill is the one
        listeners().on_task_instance_failed(previous_state="running", task_instance=ti, error="x")
    assert API().check_status(job_id=job) == "RUNNING"
