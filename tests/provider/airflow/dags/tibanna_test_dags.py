"""DAGs only the tests run, on the stub backend (their jobs do what the test's script says): a retried
task re-attaching to its job, and a retry after a failed job."""
from __future__ import annotations

import datetime

from airflow.sdk import DAG

from tibanna_provider.operators.tibanna import TibannaRunWorkflowOperator

START = datetime.datetime(2024, 1, 1)
JOB = {"args": {"language": "shell", "container_image": "ubuntu:20.04", "command": "run-the-step",
                "output_S3_bucket": "out-bucket"},
       "config": {"log_bucket": "log-bucket", "cpu": 1, "mem": 0.1, "ebs_size": 10}}

with DAG(dag_id="tibanna_test_reattach", schedule=None, start_date=START, catchup=False):
    # try 1 gives up waiting after 2 s (the job is left running); later tries re-attach to it
    TibannaRunWorkflowOperator(task_id="slow", input_json=JOB, retries=3, retry_delay=datetime.timedelta(0),
                               max_wait=datetime.timedelta(seconds=2))

with DAG(dag_id="tibanna_test_retry_after_failure", schedule=None, start_date=START, catchup=False):
    # a failed job fails the try; the retry starts a fresh job
    TibannaRunWorkflowOperator(task_id="flaky", input_json=JOB, retries=1, retry_delay=datetime.timedelta(0))
