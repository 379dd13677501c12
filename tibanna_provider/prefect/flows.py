"""`run_and_wait`: one Tibanna job from submission to its postrun summary, as a Prefect flow."""
# No `from __future__ import annotations` in a flow's module: a served flow is pickled with only the
# globals its code uses, and Prefect then cannot resolve a parameter annotation given as a string.
from typing import Any

from prefect import Task, flow
from prefect.client.schemas.objects import TaskRun
from prefect.states import State

from tibanna.exceptions import TibannaError
from tibanna_provider.prefect.settings import TibannaSettings
from tibanna_provider.prefect.flow_runs import kill_flow_run_jobs
from tibanna_provider.prefect.tasks import plot_metrics, run_workflow, wait_for_job


def _not_a_job_error(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry trouble on the way (a lost connection, a busy index), never a failed job or a refused description."""
    return not isinstance(state.result(raise_on_failure=False), TibannaError)


# Task retries re-attach to the job already submitted (flow_runs.job_key), so retrying is always safe.
RETRIES: dict[str, Any] = {"retries": 2, "retry_delay_seconds": 10, "retry_condition_fn": _not_a_job_error}


def postrun_summary(postrun: dict, metrics_report: str) -> dict:
    """The parts of a postrun JSON a pipeline reads next: times, instance, outputs, peak usage."""
    job = postrun.get("Job", {})
    output = job.get("Output", {})
    return {"jobid": job.get("JOBID"), "status": "SUCCEEDED", "start_time": job.get("start_time"),
            "end_time": job.get("end_time"), "instance_type": job.get("instance_type"),
            "output_bucket": output.get("output_bucket_directory"), "output_files": output.get("Output files", {}),
            "metrics": job.get("Metrics", {}), "metrics_report": metrics_report}


@flow(name="tibanna-run-and-wait", on_cancellation=[kill_flow_run_jobs], on_crashed=[kill_flow_run_jobs])
def run_and_wait(input_json: dict | str, settings: TibannaSettings | None = None,
                 poll_interval: float = 30.0, key: str | None = None) -> dict:
    """Submit a job, wait for it (its log in this flow's log), build its metrics report; return its summary.

    Its tasks retry trouble on the way and re-attach to the job they submitted. A retry of the
    whole flow (`run_and_wait.with_options(retries=1)`) or of a flow above it re-attaches too,
    unless the job failed: then it starts the job afresh. A failed job fails the flow with the
    job's error name; cancelling the flow run (or its crash) kills the job. `key` is
    `run_workflow`'s: a name of yours for the job.

    Example:
        ```python
        from tibanna_provider.prefect import run_and_wait

        JOB = {"args": {"language": "shell", "command": "echo hello > /data1/out/hello.txt",
                        "container_image": "ubuntu:20.04", "output_S3_bucket": "my-data",
                        "output_target": {"file:///data1/out/hello.txt": "hello.txt"}},
               "config": {"log_bucket": "my-logs", "cpu": 1, "mem": 1}}

        summary = run_and_wait(JOB, poll_interval=5)
        print(summary["output_files"], summary["metrics_report"])
        ```
    """
    job_id = run_workflow.with_options(**RETRIES)(input_json, settings=settings, key=key)
    postrun = wait_for_job.with_options(**RETRIES)(job_id, settings=settings, poll_interval=poll_interval)
    report = plot_metrics.with_options(**RETRIES)(job_id, settings=settings)
    return postrun_summary(postrun, report)
