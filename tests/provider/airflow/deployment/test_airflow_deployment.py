"""Tibanna's operators in a real Airflow deployment (see conftest.py), as users run them.

Every DAG run is triggered at once at the start (they run side by side, as in production);
each test then follows its own runs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

QUICK_RUNS = 3

# One xdist worker runs the whole suite against one deployment (`make test` uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("airflow-deployment")


@pytest.fixture(scope="session")
def runs(deployment, tmp_path_factory) -> dict[str, Any]:
    """The DAG runs of this suite, all triggered before any test looks at one."""
    release = tmp_path_factory.mktemp("release") / "release"
    started: dict[str, Any] = {"release": release}
    started["clear"] = deployment.trigger("tibanna_clear_me", {"release": str(release)})
    started["kill"] = deployment.trigger("tibanna_kill_me")
    started["quick"] = [deployment.trigger("tibanna_quick_mapped") for _ in range(QUICK_RUNS)]
    started["examples"] = {dag_id: deployment.trigger(dag_id) for dag_id in
                           ("tibanna_run_and_plot_metrics", "tibanna_fan_out_and_join", "tibanna_rerun_on_failure")}
    return started


def held_task(deployment, dag_id: str, run_id: str) -> dict:
    (ti,) = deployment.task_instances(dag_id, run_id)
    return ti


def test_mark_failed_kills_the_job_of_a_deferred_task(deployment, tibanna, runs):
    # Marked failed at once after the deferral: the triggerer may not have taken the trigger yet.
    dag_id, run_id = "tibanna_kill_me", runs["kill"]
    deployment.wait_for(lambda: held_task(deployment, dag_id, run_id)["state"] == "deferred", "the task defers")
    jobid = deployment.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/held/xcomEntries/job_id")["value"]
    assert tibanna.job(jobid)["status"] == "RUNNING"
    deployment.act("PATCH", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/held", json={"new_state": "failed"})
    deployment.wait_for(lambda: tibanna.job(jobid)["status"] != "RUNNING", "the kill ends the job", timeout=60)
    assert tibanna.job(jobid)["status"] == "ABORTED"


def test_a_cleared_deferred_task_reattaches_to_its_job_and_succeeds(deployment, tibanna, runs):
    dag_id, run_id = "tibanna_clear_me", runs["clear"]
    deployment.wait_for(lambda: held_task(deployment, dag_id, run_id)["state"] == "deferred", "the task defers")
    deployment.act("POST", f"/dags/{dag_id}/clearTaskInstances", json={
        "dry_run": False, "dag_run_id": run_id, "task_ids": ["held"], "only_failed": False})
    deployment.wait_for(lambda: held_task(deployment, dag_id, run_id)["try_number"] == 2
                        and held_task(deployment, dag_id, run_id)["state"] == "deferred", "the new try defers")
    jobs = [job for job in tibanna.jobs([row["jobid"] for row in tibanna.stat(n=1000)])
            if job["jobid"].startswith("tibanna_clear_me.")]
    assert [job["status"] for job in jobs] == ["RUNNING"]  # the old try's kill left it to the new try
    Path(runs["release"]).touch()
    assert deployment.wait_run(dag_id, run_id) == "success"
    assert tibanna.job(jobs[0]["jobid"])["status"] == "SUCCEEDED"


def test_quick_mapped_deferrable_jobs_fail_no_run_and_start_no_duplicate(deployment, tibanna, runs):
    states = [deployment.wait_run("tibanna_quick_mapped", run_id, timeout=240) for run_id in runs["quick"]]
    tries = {run_id: sorted((ti["map_index"], ti["state"], ti["try_number"])
                            for ti in deployment.task_instances("tibanna_quick_mapped", run_id))
             for run_id in runs["quick"]}
    assert states == ["success"] * QUICK_RUNS, (tries, deployment.logs_tail())
    for run_id in runs["quick"]:
        assert tries[run_id] == [(n, "success", 1) for n in range(10)]
    jobs = [row for row in tibanna.stat(n=1000) if row["jobid"].startswith("tibanna_quick_mapped.")]
    assert len(jobs) == 10 * QUICK_RUNS and {row["status"] for row in jobs} == {"SUCCEEDED"}
    assert not [row["jobid"] for row in jobs if row["jobid"].endswith("-2")]


def test_the_example_dags_succeed(deployment, runs):
    states = {dag_id: deployment.wait_run(dag_id, run_id) for dag_id, run_id in runs["examples"].items()}
    assert states == dict.fromkeys(runs["examples"], "success")


def test_a_rendered_link_opens_through_the_api_server(deployment, tibanna, runs):
    dag_id, run_id = "tibanna_run_and_plot_metrics", runs["examples"]["tibanna_run_and_plot_metrics"]
    assert deployment.wait_run(dag_id, run_id) == "success"
    links = deployment.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/summarize/links")["extra_links"]
    log_url = links["Tibanna job log"]
    assert log_url.startswith(deployment.base_url + "/tibanna/")  # same origin: the UI shows it
    assert links["Tibanna execution"] in ("", None)  # local: no console to link to
    jobid = deployment.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/summarize/xcomEntries/job_id")[
        "value"]
    opened = deployment.client.get(log_url)
    assert opened.status_code == 200 and opened.headers["content-type"].startswith("text/plain")
    assert opened.text == tibanna.log(job_id=jobid) and "job succeeded" in opened.text
    assert "sandbox" in opened.headers["content-security-policy"]
    postrun = deployment.client.get(links["Tibanna postrun JSON"])
    assert postrun.json()["Job"]["JOBID"] == jobid
    report_links = deployment.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/plot_metrics/links")[
        "extra_links"]
    report = deployment.client.get(report_links["Tibanna metrics report"])
    assert report.status_code == 200 and "<html" in report.text.lower()
    assert httpx.get(log_url, timeout=30).status_code in (401, 403)  # no session, no log
