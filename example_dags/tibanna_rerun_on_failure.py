"""Rerun a failed Tibanna job once its cause is fixed, from the description Tibanna kept.

`count_reads` fails when its input has not arrived (here: it never has, on a fresh
TIBANNA_HOME). `stage_reads` runs only then, puts the input in place, and `rerun` runs the failed
job again (found through the XCom key `job_id`, pushed as soon as a job starts), with a config
override as `tibanna rerun` takes. The count lands in `s3://tibanna-example-outputs/rerun/count.txt`.

The other pattern, for failures that a plain retry cures: `TibannaRunWorkflowOperator(retries=2)`;
each retry after a FAILED job starts a fresh job named after the failed one (`<job id>-2`, ...).
"""
from __future__ import annotations

import datetime

from airflow.sdk import DAG, task

from tibanna_provider.hooks.tibanna import TibannaHook
from tibanna_provider.operators.tibanna import TibannaRerunOperator, TibannaRunWorkflowOperator

INPUTS = "tibanna-example-inputs"
READS_KEY = "rerun/reads.txt"

COUNT_JOB = {
    "args": {
        "language": "shell",
        "container_image": "ubuntu:20.04",
        "command": "wc -l < /data1/input/reads.txt > /data1/out/count.txt",
        "input_files": {"reads": {"bucket_name": INPUTS, "object_key": READS_KEY, "rename": "reads.txt"}},
        "output_S3_bucket": "tibanna-example-outputs",
        "output_target": {"file:///data1/out/count.txt": "rerun/count.txt"},
    },
    "config": {"log_bucket": "tibanna-example-logs", "cpu": 1, "mem": 0.25, "ebs_size": 10},
}

with DAG(
    dag_id="tibanna_rerun_on_failure",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    tags=["tibanna", "example"],
):
    count_reads = TibannaRunWorkflowOperator(task_id="count_reads", input_json=COUNT_JOB, poll_interval=1)

    @task(trigger_rule="all_failed")
    def stage_reads() -> None:
        """Fix the failure's cause: put the missing input into its bucket."""
        TibannaHook().api.backend.store.put_text(INPUTS, READS_KEY, "".join(f"read_{i}\n" for i in range(42)))

    # [START howto_operator_tibanna_rerun]
    rerun = TibannaRerunOperator(
        task_id="rerun",
        job_id="{{ ti.xcom_pull(task_ids='count_reads', key='job_id') }}",
        override_config={"ebs_size": 20},
        poll_interval=1,
    )
    # [END howto_operator_tibanna_rerun]

    count_reads >> stage_reads() >> rerun
