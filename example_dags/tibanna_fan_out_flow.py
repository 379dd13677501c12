"""Fan-out and join: 20 Tibanna jobs with `.map`, then one job that joins their outputs.

Part job i writes i*i to its own output; the join job takes every part as its input and
concatenates them, in order, into fan-out/joined.txt. Against the local backend, with jobs
declaring 1 CPU, the parts run as many at a time as the machine has cores:
    python example_dags/tibanna_fan_out_flow.py
"""
# No `from __future__ import annotations` in a flow's module: a served flow is pickled with only the
# globals its code uses, and Prefect then cannot resolve a parameter annotation given as a string.
from prefect import flow, unmapped

from tibanna_provider.prefect import TibannaSettings, kill_flow_run_jobs, run_and_wait, run_workflow, wait_for_job

PART = "file:///data1/out/part.txt"


def part_job(number: int, log_bucket: str, data_bucket: str) -> dict:
    """A tiny job whose output fan-out/part-<number>.txt holds number squared."""
    return {"args": {"language": "shell", "container_image": "ubuntu:20.04",
                     "command": f"echo {number * number} > /data1/out/part.txt",
                     "output_S3_bucket": data_bucket, "output_target": {PART: f"fan-out/part-{number:02d}.txt"}},
            "config": {"log_bucket": log_bucket, "cpu": 1, "mem": 0.5}}


def join_job(part_keys: list[str], log_bucket: str, data_bucket: str) -> dict:
    """A job that reads every part from the data bucket and concatenates them in order."""
    return {"args": {"language": "shell", "container_image": "ubuntu:20.04",
                     "command": "cat /data1/input/fan-out/part-*.txt > /data1/out/joined.txt",
                     "input_files": {"parts": {"bucket_name": data_bucket, "object_key": part_keys}},
                     "output_S3_bucket": data_bucket,
                     "output_target": {"file:///data1/out/joined.txt": "fan-out/joined.txt"}},
            "config": {"log_bucket": log_bucket, "cpu": 1, "mem": 0.5}}


@flow(name="tibanna-fan-out", on_cancellation=[kill_flow_run_jobs], on_crashed=[kill_flow_run_jobs])
def fan_out(parts: int = 20, log_bucket: str = "tibanna-logs", data_bucket: str = "tibanna-data",
            settings: TibannaSettings | None = None, poll_interval: float = 5.0) -> dict:
    """Run `parts` jobs side by side, then the join job on their outputs; returns the join's summary."""
    job_ids = run_workflow.map([part_job(i, log_bucket, data_bucket) for i in range(parts)],
                               settings=unmapped(settings))
    postruns = wait_for_job.map(job_ids, settings=unmapped(settings), poll_interval=poll_interval)
    part_keys = [postrun["Job"]["Output"]["Output files"][PART]["target"] for postrun in postruns.result()]
    join = join_job(part_keys, log_bucket, data_bucket)
    return run_and_wait(join, settings=settings, poll_interval=poll_interval)


if __name__ == "__main__":
    summary = fan_out()
    print(summary["jobid"], summary["output_files"])
