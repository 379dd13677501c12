"""Run one Tibanna job, wait for it in the triggerer, then make its metrics report and cost estimate.

Runs on the local backend as it is (TIBANNA_HOME from the environment, or ~/.tibanna); with a
`tibanna_default` connection whose extras say `{"backend": "aws", ...}` it runs on AWS unchanged.
The summary lands in `s3://tibanna-example-outputs/<sample>/summary.txt` (locally:
`$TIBANNA_HOME/buckets/tibanna-example-outputs/<sample>/summary.txt`).
"""
from __future__ import annotations

import datetime

from airflow.sdk import DAG, Param

from tibanna_provider.operators.tibanna import (
    TibannaCostOperator,
    TibannaPlotMetricsOperator,
    TibannaRunWorkflowOperator,
)

SUMMARY_JOB = {
    "args": {
        "language": "shell",
        "container_image": "ubuntu:20.04",
        "command": [
            # commands get one round of bash double-quote processing, as upstream: "\\$1" reaches awk as $1
            "seq 1 1000 | awk '{ s += \\$1 } END { print \"sum\", s }' > /data1/out/summary.txt",
            "sleep 1",
            "echo sample {{ params.sample }} >> /data1/out/summary.txt",
        ],
        "output_S3_bucket": "tibanna-example-outputs",
        "output_target": {"file:///data1/out/summary.txt": "{{ params.sample }}/summary.txt"},
    },
    "config": {"log_bucket": "tibanna-example-logs", "cpu": 1, "mem": 0.5, "ebs_size": 10},
}

with DAG(
    dag_id="tibanna_run_and_plot_metrics",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    params={"sample": Param("sample-1", type="string")},
    tags=["tibanna", "example"],
):
    # [START howto_operator_tibanna_run_workflow]
    summarize = TibannaRunWorkflowOperator(
        task_id="summarize",
        input_json=SUMMARY_JOB,
        deferrable=True,  # wait in the triggerer; the job's log is copied into this task's log
        poll_interval=1,  # a demo job takes seconds; the default (30 s) suits jobs of hours
    )
    # [END howto_operator_tibanna_run_workflow]
    metrics = TibannaPlotMetricsOperator(task_id="plot_metrics", job_id=summarize.output)
    cost = TibannaCostOperator(task_id="cost_estimate", job_id=summarize.output, estimate=True)

    summarize >> [metrics, cost]
