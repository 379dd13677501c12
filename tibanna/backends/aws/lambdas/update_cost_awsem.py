"""`update_cost_awsem`: the cost updater's Lambda, asked every 12 hours after a job
is submitted until it answers done: once Cost Explorer bills the job's instance, the cost goes into
the job's metrics_report.tsv and metrics.html is re-rendered from it."""
from __future__ import annotations

import datetime as dt
import importlib.util
import json
import logging
from typing import Any

from botocore.exceptions import ClientError

from tibanna import protocol
from tibanna.backends.aws import lambdas
from tibanna.backends.aws.backend import AWSBackend
from tibanna.exceptions import TibannaError
from tibanna.metrics import job_info, plot_metrics_to_store
from tibanna.metrics.report_tsv import update_cost_tsv

log = logging.getLogger(__name__)

# Cost Explorer bills within a day or so; after this long past the job's end, stop asking.
GIVE_UP_AFTER = dt.timedelta(days=3)
# metrics.html's charts need these; the Lambda's package has none of them (its report keeps the tsv).
CHART_LIBRARIES = ("pandas", "matplotlib", "seaborn")


def can_render_charts() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in CHART_LIBRARIES)


def handler(event: dict, context: Any = None) -> dict:
    return update_cost(event, lambdas.backend(event.get("aws_region")))


def _answer(done: bool, message: str) -> dict:
    return {"done": done, "message": message}


def update_cost(event: dict, backend: AWSBackend, now: dt.datetime | None = None) -> dict:
    """`{"done", "message"}` for the input `{sfn_arn, log_bucket, job_id, aws_region}`, with upstream's
    messages; `sfn_arn` is the job's execution ARN (upstream's name for it)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    jobid, log_bucket = event["job_id"], event["log_bucket"]
    try:
        execution = backend.sfn.describe_execution(executionArn=event["sfn_arn"])
    except ClientError as err:
        log.warning("job %s: %s", jobid, err)
        return _answer(True, "Could not get information about the unicorn step function. Exiting.")
    if execution["status"] == protocol.RUNNING:
        return _answer(False, "Job is still running")
    if execution["stopDate"] + GIVE_UP_AFTER < now:
        return _answer(True, "Cost could not be retrieved after 3 days. Stopping.")
    text = backend.store.get_text(log_bucket, protocol.key(jobid, protocol.POSTRUN_JSON))
    postrun = json.loads(text) if text else None
    cost = backend.actual_cost(postrun) if postrun else 0.0
    if cost <= 0:
        return _answer(False, "Cost not yet available.")
    if not update_cost_tsv(backend.store, log_bucket, jobid, cost):  # asked again until plot_metrics makes one
        return _answer(False, f"Cost {cost} is known, but the job has no metrics report yet to hold it.")
    if not can_render_charts():
        log.info("job %s: metrics.html shows the cost once re-plotted (no charting libraries here)", jobid)
    else:
        try:
            plot_metrics_to_store(backend.store, log_bucket, jobid, job_info=job_info(postrun, None),
                                  update_html_only=True, force_upload=True)
        except TibannaError as err:
            log.warning("job %s: metrics.html not re-rendered: %s", jobid, err)
    log.info("job %s: cost %s written to its metrics report", jobid, cost)
    return _answer(True, f"Cost updated: {cost}")
