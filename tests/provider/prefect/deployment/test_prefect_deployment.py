"""Every shipped flow in a real Prefect deployment, as users run them: a direct flow run, flows served with
`flow.serve` and started with `prefect deployment run --watch` or the client API, deployments run by a process
worker, a parent flow's retry (one job), and `prefect flow-run cancel` (the job ends ABORTED).

Served: `run_and_wait` (the cancelled run, and as the parent's subflow), the one-job example (by the CLI) and the
fan-out example; deployed (all three are, from their source folders): the one-job example, whose subflow is
`run_and_wait`. The cases run side by side in one test, so the session needs one server; each case has its own
TIBANNA_HOME, given to the flows as their settings block.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from conftest import PREFECT, RUN_SECONDS, Deployment
from jobhelpers import kill_supervisor
from tibanna.core import API

DIRECT = """
import sys
sys.path.insert(0, sys.argv[1])
from tibanna_one_job_flow import one_job
from tibanna_provider.prefect import TibannaSettings
print(one_job(name="direct", poll_interval=0.5, settings=TibannaSettings(tibanna_home=sys.argv[2]))["jobid"])
"""


def job(command: str) -> dict:
    return {"args": {"language": "shell", "container_image": "ubuntu:20.04", "command": command,
                     "output_S3_bucket": "pf-data"}, "config": {"log_bucket": "pf-logs", "cpu": 1, "mem": 0.1}}


def jobs(home: Path) -> list[tuple[str, str]]:
    """(jobid, status) of every job under a TIBANNA_HOME, newest first."""
    return [(row["jobid"], row["status"]) for row in API(home=str(home)).stat()]


def wait_for_status(home: Path, status: str, timeout: float = RUN_SECONDS) -> list[tuple[str, str]]:
    deadline = time.monotonic() + timeout
    while not (found := jobs(home)) or found[0][1] != status:
        assert time.monotonic() < deadline, f"no {status} job under {home}: {found}"
        time.sleep(0.5)
    return found


def test_shipped_flows_run_direct_served_and_deployed(deployment: Deployment, tmp_path: Path):
    homes = {name: tmp_path / name for name in (
        "direct", "served-cli", "served-fan-out", "parent-retry", "cancelled", "deployed-one-job")}

    def settings(name: str) -> dict:
        return {"tibanna_home": str(homes[name])}

    try:
        examples = Path(__file__).resolve().parents[4] / "example_dags"
        direct = deployment.start("direct", sys.executable, "-c", DIRECT, examples, homes["direct"])
        cancelled = deployment.create_run("tibanna-run-and-wait/served", {
            "input_json": job("sleep 300"), "settings": settings("cancelled"), "poll_interval": 0.5})
        runs = {
            "served-fan-out": deployment.create_run("tibanna-fan-out/served", {
                "parts": 2, "settings": settings("served-fan-out"), "poll_interval": 0.5}),
            "parent-retry": deployment.create_run("parent-retries/served", {
                "input_json": job("echo parent"), "settings": settings("parent-retry")}),
            "deployed-one-job": deployment.create_run("tibanna-one-job/deployed", {
                "poll_interval": 0.5, "settings": settings("deployed-one-job")}),
        }

        deployment.registered("tibanna-one-job/served")
        served_cli = deployment.start("served-cli", PREFECT, "deployment", "run", "tibanna-one-job/served", "--watch",
                                      "--params", json.dumps({"name": "cli", "poll_interval": 0.5,
                                                              "settings": settings("served-cli")}))

        # Cancelled while its job runs: the served flow's on_cancellation hook kills the job.
        [(cancelled_job, _)] = wait_for_status(homes["cancelled"], "RUNNING")
        cancel = deployment.run("cancel", PREFECT, "flow-run", "cancel", str(cancelled))
        assert cancel.returncode == 0, cancel.stdout + cancel.stderr
        assert wait_for_status(homes["cancelled"], "ABORTED") == [(cancelled_job, "ABORTED")]
        assert deployment.final(cancelled).state.is_cancelled()

        failures = []
        for name, flow_run_id in runs.items():
            state = deployment.final(flow_run_id).state
            if not state.is_completed():
                failures.append(f"{name}: {state.type.value} {state.message}")
        assert direct.wait(timeout=RUN_SECONDS) == 0, deployment.log("direct")[-3000:]
        assert served_cli.wait(timeout=RUN_SECONDS) == 0, deployment.log("served-cli")[-3000:]
        assert "Flow run finished successfully in 'Completed'" in deployment.log("served-cli")
        assert not failures, "\n".join(failures) + "\n--- serve:\n" + deployment.log("serve")[-4000:] + \
            "\n--- worker:\n" + deployment.log("worker")[-4000:]

        for name in ("direct", "served-cli", "deployed-one-job"):
            assert [status for _, status in jobs(homes[name])] == ["SUCCEEDED"], name
        assert [status for _, status in jobs(homes["served-fan-out"])] == ["SUCCEEDED"] * 3  # two parts, the join
        # The parent failed once after its subflow's job; its retry re-attached: one job, and two runs of the parent.
        assert [status for _, status in jobs(homes["parent-retry"])] == ["SUCCEEDED"]
        with deployment.client() as client:
            assert client.read_flow_run(runs["parent-retry"]).run_count == 2
    finally:
        for home in homes.values():  # the jobs' supervisors
            kill_supervisor(home)
