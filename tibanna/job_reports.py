"""A job's metrics report and cost, from its log-bucket objects and its backend (`API.plot_metrics`,
`cost`, `cost_estimate`).

The cost is the backend's actual figure (AWS: Cost Explorer; local: the local price table). An
estimate is that figure once it is known, unless forced, else upstream's formula over the
backend's prices (`tibanna.cost`). Both can be written into metrics_report.tsv.
"""
from __future__ import annotations

import json
import logging
import os

from tibanna import jobspec, protocol, settings
from tibanna.backends.base import Backend, JobRecord
from tibanna.job_files import read_postrun

log = logging.getLogger(__name__)


def metrics_report(backend: Backend, record: JobRecord, *, force_upload: bool, update_html_only: bool,
                   endtime: str, instance_id: str) -> str:
    """Write the job's report into `<jobid>.metrics/` and return its URL (see `API.plot_metrics`)."""
    from tibanna import metrics

    postrun = read_postrun(backend, record)
    runjson = backend.store.get_text(record.log_bucket, protocol.key(record.jobid, protocol.RUN_JSON))
    info = metrics.job_info(postrun, json.loads(runjson) if runjson else None)
    series = None
    if not update_html_only:
        series = backend.metric_series(record, postrun, info.start, endtime or info.end, instance_id)
    return metrics.plot_metrics_to_store(
        backend.store, record.log_bucket, record.jobid, job_info=info, samples=series,
        force_upload=force_upload, update_html_only=update_html_only, endtime=endtime or None,
        estimate_cost=lambda: estimate(backend, record, force=True))


def actual_cost(backend: Backend, record: JobRecord, update_tsv: bool = False) -> float | None:
    """What the job cost; None before it ends (it has no postrun JSON yet)."""
    from tibanna.metrics.report_tsv import update_cost_tsv

    postrun = read_postrun(backend, record)
    if postrun is None:
        log.info("the job has no postrun JSON yet; no cost")
        return None
    cost = backend.actual_cost(postrun)
    if update_tsv:
        update_cost_tsv(backend.store, record.log_bucket, record.jobid, cost)
    return cost


def estimate(backend: Backend, record: JobRecord, *, force: bool = False,
             update_tsv: bool = False) -> tuple[float, str]:
    """`(cost, type)`: the actual cost once known (unless `force`), else upstream's estimate."""
    from tibanna.cost import ACTUAL, NA, estimate_job_cost
    from tibanna.metrics.report_tsv import update_cost_estimate_tsv

    postrun = read_postrun(backend, record)
    if postrun is None:
        return 0.0, NA
    found = (0.0, NA)
    if not force:
        actual = backend.actual_cost(postrun)
        if actual > 0:
            found = (actual, ACTUAL)
    if found[1] == NA:
        found = estimate_job_cost(postrun, backend.price_source(), region=backend.region)
    if update_tsv:
        update_cost_estimate_tsv(backend.store, record.log_bucket, record.jobid, *found)
    return found


def estimate_before_run(backend: Backend, input_json: dict | str | os.PathLike,
                        hours: float) -> tuple[float, str]:
    """What a described job would cost if it ran `hours`, before it runs."""
    from tibanna.cost import cost_estimate_for_description

    return cost_estimate_for_description(jobspec.parse(input_json, **settings.description_defaults()),
                                         hours, backend.price_source(), region=backend.region)
