"""Fan out one Tibanna job per sample (dynamic task mapping), wait for all, then join their outputs.

The mapped run tasks only submit (`wait_for_completion=False`); one sensor waits for every job
with a single status query per poke, and the join job takes the jobs' outputs, found in their
postrun JSON, as its inputs. Results: `s3://tibanna-example-outputs/fan-out/<sample>.count` and
`s3://tibanna-example-outputs/fan-out/all.counts` (locally under `$TIBANNA_HOME/buckets/`).
"""
from __future__ import annotations

import datetime

from airflow.sdk import DAG, Param, task

from tibanna_provider.hooks.tibanna import TibannaHook
from tibanna_provider.operators.tibanna import TibannaRunWorkflowOperator
from tibanna_provider.sensors.tibanna import TibannaJobSensor

OUTPUTS = "tibanna-example-outputs"
CONFIG = {"log_bucket": "tibanna-example-logs", "cpu": 1, "mem": 0.25, "ebs_size": 10}


def count_job(sample: str, reads: int) -> dict:
    """A job that makes `reads` fake reads for a sample and counts them."""
    return {
        "args": {
            "language": "shell",
            "container_image": "ubuntu:20.04",
            "command": [f"seq 1 {reads} | sed 's/^/read_/' > /data1/out/reads.txt", "sleep 1",
                        f"wc -l < /data1/out/reads.txt | sed 's/^/{sample}\\t/' > /data1/out/count.tsv"],
            "output_S3_bucket": OUTPUTS,
            "output_target": {"file:///data1/out/count.tsv": f"fan-out/{sample}.count"},
        },
        "config": CONFIG,
    }


with DAG(
    dag_id="tibanna_fan_out_and_join",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    params={"samples": Param({"sample-a": 100, "sample-b": 250, "sample-c": 400}, type="object")},
    tags=["tibanna", "example"],
):

    @task
    def describe_jobs(params: dict | None = None) -> list[dict]:
        """One job description per sample."""
        return [count_job(sample, reads) for sample, reads in params["samples"].items()]

    # [START howto_operator_tibanna_fan_out]
    counts = TibannaRunWorkflowOperator.partial(task_id="count", wait_for_completion=False).expand(
        input_json=describe_jobs())
    wait_all = TibannaJobSensor(task_id="wait_for_counts", job_ids=counts.output, poke_interval=1,
                                deferrable=True)
    # [END howto_operator_tibanna_fan_out]

    @task
    def join_description(statuses: dict[str, str]) -> dict:
        """A job whose inputs are the outputs of every count job (from their postrun JSON)."""
        api = TibannaHook().api
        keys = []
        for jobid in statuses:
            output = api.check_output(job_id=jobid)["postrunjson"]["Job"]["Output"]
            keys += [spec["target"] for spec in output["Output files"].values()]
        return {
            "args": {
                "language": "shell",
                "container_image": "ubuntu:20.04",
                "command": "cat /data1/input/fan-out/*.count | sort > /data1/out/all.counts",
                "input_files": {"counts": {"bucket_name": OUTPUTS, "object_key": sorted(keys)}},
                "output_S3_bucket": OUTPUTS,
                "output_target": {"file:///data1/out/all.counts": "fan-out/all.counts"},
            },
            "config": CONFIG,
        }

    # the sensor returns {job id: status} of every count job
    TibannaRunWorkflowOperator(task_id="join", input_json=join_description(wait_all.output), poll_interval=1)
