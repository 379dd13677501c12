"""DAGs only the tests run: a retried task re-attaching to its job, and a retry after a failed job."""
from __future__ import annotations

import datetime

from airflow.sdk import DAG, Param

from tibanna_provider.operators.tibanna import TibannaRunWorkflowOperator

START = datetime.datetime(2024, 1, 1)
CONFIG = {"log_bucket": "log-bucket", "cpu": 1, "mem": 0.1, "ebs_size": 10}


def shell(command: str, key: str) -> dict:
    return {"args": {"language": "shell", "container_image": "ubuntu:20.04", "command": command,
                     "output_S3_bucket": "out-bucket", "output_target": {"file:///data1/out/done.txt": key}},
            "config": CONFIG}


with DAG(dag_id="tibanna_test_reattach", schedule=None, start_date=START, catchup=False):
    # try 1 gives up waiting after 2 s (the job is left running); later tries re-attach to it
    TibannaRunWorkflowOperator(
        task_id="slow", input_json=shell("sleep 4; echo done > /data1/out/done.txt", "reattach/done.txt"),
        retries=3, retry_delay=datetime.timedelta(0), max_wait=datetime.timedelta(seconds=2), poll_interval=0.2)

with DAG(dag_id="tibanna_test_retry_after_failure", schedule=None, start_date=START, catchup=False,
         params={"marker": Param("", type="string")}):
    # the job fails the first time (it leaves a marker on the host) and succeeds the second time
    TibannaRunWorkflowOperator(
        task_id="flaky",
        input_json=shell("if [ -e {{ params.marker }} ]; then echo done > /data1/out/done.txt; "
                         "else touch {{ params.marker }}; exit 1; fi", "retry/done.txt"),
        retries=1, retry_delay=datetime.timedelta(0), poll_interval=0.2)
