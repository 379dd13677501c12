"""`dag.test()` runs of every example DAG, with real jobs on the local backend, and of the retry DAGs, on
the stub backend.

Each example has its own TIBANNA_HOME (`home`) and checks the jobs' outputs in its local buckets.
"""
from __future__ import annotations

from pathlib import Path

from airflow_helpers import REPO, run_dag, task_instance, xcom
from tibanna.backends.stub import Script
from tibanna.core import API

EXAMPLES = REPO / "example_dags"
TEST_DAGS = Path(__file__).resolve().parent / "dags" / "tibanna_test_dags.py"


def statuses() -> dict[str, str]:
    return {row["jobid"]: row["status"] for row in API().stat()}


def test_every_example_dag_parses():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(EXAMPLES))
    assert not bag.import_errors
    assert {"tibanna_run_and_plot_metrics", "tibanna_fan_out_and_join", "tibanna_rerun_on_failure"} <= set(bag.dags)


def test_run_wait_deferred_and_plot_metrics(home):
    run = run_dag(EXAMPLES / "tibanna_run_and_plot_metrics.py", "tibanna_run_and_plot_metrics")
    assert run.state == "success"
    jobid = xcom(run, "summarize")
    assert statuses() == {jobid: "SUCCEEDED"}
    summary = home / "buckets" / "tibanna-example-outputs" / "sample-1" / "summary.txt"
    assert summary.read_text() == "sum 500500\nsample sample-1\n"
    report = xcom(run, "plot_metrics")
    assert report.endswith(f"{jobid}.metrics/metrics.html")
    assert (home / "buckets" / "tibanna-example-logs" / f"{jobid}.metrics" / "metrics.html").exists()
    assert xcom(run, "plot_metrics", key="_link_TibannaMetricsReportLink").endswith("/tasks/plot_metrics/metrics")
    assert xcom(run, "summarize", key="_link_TibannaJobLogLink").endswith("/tasks/summarize/log")
    assert xcom(run, "cost_estimate")["cost"] >= 0


def test_fan_out_with_mapped_tasks_and_a_join(home):
    run = run_dag(EXAMPLES / "tibanna_fan_out_and_join.py", "tibanna_fan_out_and_join")
    assert run.state == "success"
    jobs = statuses()
    assert len(jobs) == 4 and set(jobs.values()) == {"SUCCEEDED"}
    assert set(xcom(run, "wait_for_counts")) == {xcom(run, "count", map_index=i) for i in range(3)}
    outputs = home / "buckets" / "tibanna-example-outputs" / "fan-out"
    assert (outputs / "sample-b.count").read_text() == "sample-b\t250\n"
    assert (outputs / "all.counts").read_text() == "sample-a\t100\nsample-b\t250\nsample-c\t400\n"


def test_rerun_on_failure(home):
    run = run_dag(EXAMPLES / "tibanna_rerun_on_failure.py", "tibanna_rerun_on_failure")
    assert run.state == "success"
    failed, rerun = xcom(run, "count_reads", key="job_id"), xcom(run, "rerun")
    assert task_instance(run, "count_reads").state == "failed"
    assert statuses() == {failed: "FAILED", rerun: "SUCCEEDED"}
    assert API().backend.get(job_id=rerun).rerun_of == failed
    assert (home / "buckets" / "tibanna-example-outputs" / "rerun" / "count.txt").read_text().strip() == "42"


def test_a_retried_task_reattaches_to_its_running_job(stub):
    stub.script = Script.succeeds(after=4)
    run = run_dag(TEST_DAGS, "tibanna_test_reattach")
    assert run.state == "success"
    assert task_instance(run, "slow").try_number >= 2  # try 1 gave up waiting; the next found the job running
    jobid = xcom(run, "slow")
    assert statuses() == {jobid: "SUCCEEDED"}  # exactly one job ran


def test_a_retry_after_a_failed_job_starts_a_fresh_one(stub):
    stub.script = lambda job: Script.succeeds() if job["jobid"].endswith("-2") else Script.fails()
    run = run_dag(TEST_DAGS, "tibanna_test_retry_after_failure")
    assert run.state == "success"
    jobid, previous = xcom(run, "flaky"), xcom(run, "flaky", key="previous_job_id")
    assert jobid == f"{previous}-2"
    assert statuses() == {previous: "FAILED", jobid: "SUCCEEDED"}
    assert API().backend.get(job_id=jobid).rerun_of == previous
