"""Operators: run, re-attach, retry after failure, defer and on_kill on the stub backend; run, kill, rerun,
metrics and cost with real jobs on the local backend; the admin verbs."""
from __future__ import annotations

import functools
from datetime import timedelta

import pytest
from airflow.sdk.exceptions import AirflowSkipException, TaskDeferred

from airflow_helpers import context
from jobhelpers import shell_job, wait_done
from tibanna import protocol
from tibanna.backends.stub import Script
from tibanna.core import API
from tibanna_provider.hooks.tibanna import TibannaJobFailed
from tibanna_provider.operators.tibanna import (
    TibannaCleanupOperator,
    TibannaCostOperator,
    TibannaDeployUnicornOperator,
    TibannaKillOperator,
    TibannaPlotMetricsOperator,
    TibannaRerunOperator,
    TibannaRunWorkflowOperator,
    task_job_id,
)
from tibanna_provider.triggers.tibanna import TibannaJobTrigger

FAST = {"poll_interval": 0.05}


stub_op = functools.partial(TibannaRunWorkflowOperator, task_id="task")  # waits on a stub's fake clock


def run_op(input_json: dict, **kwargs) -> TibannaRunWorkflowOperator:
    """An operator for real jobs, polling often."""
    return stub_op(input_json=input_json, **FAST | kwargs)


@pytest.mark.parametrize("dag_id, task_id, run_id, map_index", [
    ("dag", "task", "manual__2024-01-01T00:00:00+00:00", -1),
    ("_odd dag:id", "group.task", "scheduled__2024-01-01T00:00:00+00:00", 7),
    ("d" * 250, "t" * 250, "r" * 250, 100000),
])
def test_task_job_ids_are_valid_readable_and_distinct(dag_id, task_id, run_id, map_index):
    jobid = task_job_id(dag_id, task_id, run_id, map_index)
    assert protocol.JOBID_PATTERN.fullmatch(f"{jobid}-99999")
    assert jobid == task_job_id(dag_id, task_id, run_id, map_index)  # stable across tries and processes
    assert jobid.startswith(dag_id.strip("_").replace(" ", "_").replace(":", "_")[:20])
    others = {task_job_id(dag_id, task_id, run_id + "x", map_index),
              task_job_id(dag_id, task_id, run_id, -1 - map_index),
              task_job_id(dag_id + "x", task_id, run_id, map_index),
              task_job_id(dag_id, task_id + "x", run_id, map_index)}
    assert jobid not in others and len(others) == 4
    assert task_job_id("a:b", "t", "r") != task_job_id("a_b", "t", "r")  # sanitising never merges ids


def test_run_returns_the_job_id_pushes_it_and_its_links(home):
    ctx = context()
    op = run_op(shell_job("echo hi > /data1/out/hi.txt", outputs={"file:///data1/out/hi.txt": "op/hi.txt"}))
    jobid = op.execute(ctx)
    assert jobid == task_job_id("dag", "task", ctx["ti"].run_id)
    assert (home / "buckets" / "out-bucket" / "op" / "hi.txt").read_text() == "hi\n"
    pushed = ctx["ti"].pushed
    assert pushed["job_id"] == jobid
    assert pushed["tibanna_job"] == {"job_id": jobid, "conn_id": "tibanna_default"}
    run = "manual__2024-01-01T00%3A00%3A00%2B00%3A00"
    assert pushed["_link_TibannaJobLogLink"] == f"/tibanna/dags/dag/runs/{run}/tasks/task/log"  # same origin
    assert pushed["_link_TibannaPostrunLink"] == f"/tibanna/dags/dag/runs/{run}/tasks/task/postrun"
    assert pushed["_link_TibannaExecutionLink"] == ""


def test_a_second_try_reattaches_to_the_running_job(stub):
    stub.script = Script.succeeds(after=60)
    job = shell_job("sleep 60")
    first = stub_op(input_json=job, wait_for_completion=False).execute(context())
    assert API().check_status(job_id=first) == "RUNNING"
    again = stub_op(input_json=job).execute(context())  # the retry waits for the job the first try started
    assert again == first and API().check_status(job_id=first) == "SUCCEEDED"
    assert [row["jobid"] for row in API().stat()] == [first]
    assert stub_op(input_json=job).execute(context()) == first  # and a SUCCEEDED job is not run again
    assert [row["jobid"] for row in API().stat()] == [first]


def test_a_try_after_a_failed_job_starts_a_fresh_one_named_after_it(stub):
    stub.script = Script.fails(after=30, log="no reference genome\n")
    job = shell_job("echo 'no reference genome' >&2; exit 3")
    with pytest.raises(TibannaJobFailed) as failure:
        stub_op(input_json=job).execute(context())
    base = task_job_id("dag", "task", context()["ti"].run_id)
    assert str(failure.value).startswith(f"job {base} FAILED with AWSEMJobErrorException")
    assert "no reference genome" in str(failure.value)
    ctx = context()
    with pytest.raises(TibannaJobFailed):
        stub_op(input_json=job).execute(ctx)
    assert ctx["ti"].pushed["job_id"] == f"{base}-2"
    assert ctx["ti"].pushed["previous_job_id"] == base
    assert {row["jobid"]: row["status"] for row in API().stat()} == {base: "FAILED", f"{base}-2": "FAILED"}
    assert API().backend.get(job_id=f"{base}-2").rerun_of == base


def test_deferrable_run_defers_with_a_trigger_and_completes_from_its_event(stub):
    stub.script = Script.succeeds(after=120)
    op = stub_op(input_json=shell_job("sleep 120"), deferrable=True, max_wait=timedelta(hours=2), defer_after=10)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context())
    trigger = deferred.value.trigger
    assert isinstance(trigger, TibannaJobTrigger)
    assert trigger.owner == {"dag_id": "dag", "task_id": "task", "run_id": context()["ti"].run_id, "map_index": -1}
    assert trigger.not_before == stub.clock.now() + 15  # no event within seconds of the deferral
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout == timedelta(hours=2) - timedelta(seconds=10)  # watched 10 s in the worker
    jobid = trigger.job_ids[0]
    assert API().check_status(job_id=jobid) == "RUNNING"
    assert op.execute_complete({}, {"status": "success", "job_ids": [jobid], "statuses": {}}) == jobid
    with pytest.raises(TibannaJobFailed, match="boom"):
        op.execute_complete({}, {"status": "error", "job_ids": [jobid], "message": "boom"})
    assert wait_done(API(), jobid, timeout=300) == "SUCCEEDED"
    assert stub_op(input_json=shell_job("sleep 120"), deferrable=True).execute(context()) == jobid  # no deferral


def test_a_deferrable_task_whose_job_ends_quickly_never_defers(stub):
    stub.script = Script.succeeds(after=5)
    op = stub_op(input_json=shell_job("sleep 5"), deferrable=True)  # defer_after (10 s) outlasts the job
    jobid = op.execute(context())
    assert API().check_status(job_id=jobid) == "SUCCEEDED"


def test_a_task_killed_while_it_waits_ends_its_job(stub):
    stub.script = Script.runs()
    op = stub_op(input_json=shell_job("sleep 300"))
    stub.clock.at(stub.clock.now() + 60, op.on_kill)  # a minute into the wait, the task is killed
    with pytest.raises(TibannaJobFailed, match="ABORTED"):
        op.execute(context())
    assert API().check_status(job_id=op.watched_job_id) == "ABORTED"
    assert API().stat(status="RUNNING") == []


def test_kill_operator(home):
    jobid = API().run_workflow(shell_job("sleep 300"))["jobid"]
    assert TibannaKillOperator(task_id="kill", job_id=jobid).execute(context()) == "ABORTED"


def test_rerun_operator_runs_the_kept_description_with_overrides(home):
    api = API()
    job = shell_job("cat /data1/input/in.txt > /data1/out/copy.txt", app_name="copier",
                    inputs={"in": {"bucket_name": "in-bucket", "object_key": "in.txt"}},
                    outputs={"file:///data1/out/copy.txt": "rerun/copy.txt"})
    failed = api.run_workflow(job)["jobid"]
    assert wait_done(api, failed) == "FAILED"
    api.backend.store.put_text("in-bucket", "in.txt", "now here\n")
    ctx = context()
    jobid = TibannaRerunOperator(task_id="rerun", job_id=failed, override_config={"ebs_size": 20},
                                 **FAST).execute(ctx)
    assert api.check_status(job_id=jobid) == "SUCCEEDED"
    assert api.backend.get(job_id=jobid).rerun_of == failed
    assert api.backend.get(job_id=jobid).description["config"]["ebs_size"] == 20
    assert (home / "buckets" / "out-bucket" / "rerun" / "copy.txt").read_text() == "now here\n"
    with pytest.raises(AirflowSkipException):
        TibannaRerunOperator(task_id="rerun", job_id=failed, app_name_filter="other").execute(context())


def test_deploy_and_cleanup_operators(home):
    sfn = TibannaDeployUnicornOperator(task_id="deploy", usergroup="lab", buckets="log-bucket,out-bucket",
                                       suffix="dev").execute(context())
    assert sfn == "tibanna_unicorn_lab_dev"
    assert sfn in [s["name"] for s in API().list_sfns()]
    assert API().backend.default_sfn() == "tibanna_unicorn"  # no_setenv by default
    removed = TibannaCleanupOperator(task_id="cleanup", user_group_name="lab").execute(context())
    assert sfn in removed
    assert sfn not in [s["name"] for s in API().list_sfns()]


needs_metrics_api = pytest.mark.skipif(not hasattr(API, "plot_metrics") or not hasattr(API, "cost_estimate"),
                                       reason="API.plot_metrics / cost / cost_estimate not in tibanna.core yet")


@needs_metrics_api
def test_plot_metrics_and_cost_operators(home):
    api = API()
    jobid = api.run_workflow(shell_job("sleep 1"))["jobid"]
    assert wait_done(api, jobid) == "SUCCEEDED"
    ctx = context()
    report = TibannaPlotMetricsOperator(task_id="metrics", job_id=jobid).execute(ctx)
    assert ctx["ti"].pushed["_link_TibannaMetricsReportLink"].endswith("/tasks/task/metrics")
    assert jobid in report
    estimate = TibannaCostOperator(task_id="cost", job_id=jobid, estimate=True).execute(context())
    assert set(estimate) == {"cost", "type"} and estimate["cost"] >= 0
