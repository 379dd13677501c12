"""One Tibanna job from Prefect: submit, wait (the job's log in the flow's log), metrics report, summary.

Runs as it is against the local backend (jobs under TIBANNA_HOME, default ~/.tibanna):
    python example_dags/tibanna_one_job_flow.py
The greeting lands in the local bucket folder TIBANNA_HOME/buckets/tibanna-data/hello/hello.txt.
"""
# No `from __future__ import annotations` in a flow's module: a served flow is pickled with only the
# globals its code uses, and Prefect then cannot resolve a parameter annotation given as a string.
from prefect import flow

from tibanna_provider.prefect import TibannaSettings, kill_flow_run_jobs, run_and_wait


def hello_job(name: str, log_bucket: str, data_bucket: str) -> dict:
    """A shell job that greets `name` (passed through input_env) into an output file."""
    return {"args": {"language": "shell", "container_image": "ubuntu:20.04",
                     "command": 'echo "hello \\$NAME" > /data1/out/hello.txt', "input_env": {"NAME": name},
                     "output_S3_bucket": data_bucket,
                     "output_target": {"file:///data1/out/hello.txt": "hello/hello.txt"}},
            "config": {"log_bucket": log_bucket, "cpu": 1, "mem": 0.5}}


@flow(name="tibanna-one-job", on_cancellation=[kill_flow_run_jobs], on_crashed=[kill_flow_run_jobs])
def one_job(name: str = "world", log_bucket: str = "tibanna-logs", data_bucket: str = "tibanna-data",
            settings: TibannaSettings | None = None, poll_interval: float = 5.0) -> dict:
    """Greet `name` in a Tibanna job; returns the job's postrun summary."""
    return run_and_wait(hello_job(name, log_bucket, data_bucket), settings=settings, poll_interval=poll_interval)


if __name__ == "__main__":
    summary = one_job()
    print(summary["jobid"], summary["output_files"], summary["metrics_report"])
