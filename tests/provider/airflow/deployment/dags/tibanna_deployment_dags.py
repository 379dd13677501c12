"""DAGs the real-deployment tests trigger: many quick deferrable jobs, and a job held until released."""
from __future__ import annotations

import datetime

from airflow.sdk import DAG, Param

from tibanna_provider.operators.tibanna import TibannaRunWorkflowOperator


def shell(command: str) -> dict:
    return {"args": {"language": "shell", "container_image": "ubuntu:20.04", "command": command,
                     "output_S3_bucket": "deployment-outputs"},
            "config": {"log_bucket": "deployment-logs", "cpu": 0.5, "mem": 0.1, "ebs_size": 10}}


with DAG(dag_id="tibanna_quick_mapped", schedule=None, start_date=datetime.datetime(2024, 1, 1), catchup=False,
         max_active_runs=3):
    # Ten jobs of a few seconds each: some end while the task still watches in the worker,
    # the others are deferred and end within seconds of the deferral.
    TibannaRunWorkflowOperator.partial(task_id="quick", deferrable=True, poll_interval=1, retries=0).expand(
        input_json=[shell(f"echo quick {n}; sleep {n % 4}") for n in range(10)])

for dag_id in ("tibanna_clear_me", "tibanna_kill_me"):
    with DAG(dag_id=dag_id, schedule=None, start_date=datetime.datetime(2024, 1, 1), catchup=False,
             params={"release": Param("/nonexistent", type="string")}):
        # The job runs until the test creates the `release` file; the task defers at once.
        TibannaRunWorkflowOperator(
            task_id="held", deferrable=True, poll_interval=1, defer_after=1, retries=0,
            input_json=shell("echo held; until [ -e {{ params.release }} ]; do sleep 0.2; done; echo released"))
