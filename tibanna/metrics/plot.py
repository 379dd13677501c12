"""plot_metrics against an object store: the files, the lock and `update_html_only` upstream's plot_metrics keeps.

Everything lands under `<jobid>.metrics/` in the job's log bucket: the four tsv files, then
metrics.html, then (once the job is complete) an empty `lock`, which makes later calls leave the
report alone unless `force_upload` is given.
"""
from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tibanna import protocol
from tibanna.exceptions import MetricRetrievalException, TibannaError
from tibanna.cost import NA
from tibanna.metrics import report, report_tsv
from tibanna.metrics.resources import MetricSeries, metrics_tsv, series_from_samples, summarize
from tibanna.metrics.top import parse_top, top_table
from tibanna.samples import Sample, read_samples_tsv
from tibanna.storage import LocalStore, ObjectStore

log = logging.getLogger(__name__)

LOCK = "lock"


@dataclass(frozen=True)
class JobInfo:
    """What the report needs to know about a job: its machine and its time window."""

    instance_type: str
    start: _dt.datetime
    end: _dt.datetime | None = None
    complete: bool = False


def _stamp(value: Any) -> _dt.datetime | None:
    try:
        return protocol.parse_stamp(value)
    except (TypeError, ValueError):
        return None


def job_info(postrun: Mapping[str, Any] | None, runjson: Mapping[str, Any] | None) -> JobInfo:
    """Job info from the postrun JSON (complete iff its end_time parses), else from the run JSON."""
    for source, is_postrun in ((postrun, True), (runjson, False)):
        if not source:
            continue
        job, config = source.get("Job") or {}, source.get("config") or {}
        start = _stamp(job.get("start_time")) or _stamp(config.get("start_time"))
        if start is None:
            continue
        instance_type = (job.get("instance_type") if is_postrun else None) or config.get("instance_type") or ""
        if isinstance(instance_type, list):
            instance_type = ",".join(instance_type)
        end = _stamp(job.get("end_time")) if is_postrun else None
        return JobInfo(instance_type, start, end, complete=end is not None)
    raise MetricRetrievalException(
        "Neither postrun json nor run json can be retrieved.Check job_id or step function?")


def report_url(store: ObjectStore, log_bucket: str, jobid: str) -> str:
    """Where a person opens the report: a file URL on local, upstream's S3 URL otherwise."""
    key = protocol.metrics_key(jobid, report.HTML)
    if isinstance(store, LocalStore):
        return store.path(log_bucket, key).resolve().as_uri()
    return f"https://{log_bucket}.s3.amazonaws.com/{key}"


def _window_end(endtime: _dt.datetime | str | None, job: JobInfo, now: _dt.datetime | None) -> _dt.datetime:
    if isinstance(endtime, str) and endtime:
        parsed = _stamp(endtime)
        endtime = parsed or _dt.datetime.fromisoformat(endtime)
    if isinstance(endtime, _dt.datetime):
        return endtime if endtime.tzinfo else endtime.replace(tzinfo=_dt.timezone.utc)
    return job.end or now or _dt.datetime.now(_dt.timezone.utc)


def build_report_files(series: MetricSeries, top_text: str, job: JobInfo, end: _dt.datetime, *,
                       estimate: tuple[float, str] = (0.0, NA), cost: str | float | None = None,
                       jobid: str = "", samples: Sequence[Sample] = ()) -> dict[str, str]:
    """The five metrics files' contents, by file name. The tsvs are per minute, as upstream's;
    the page's charts are drawn from `samples` (those behind `series`) when there are any."""
    snapshots = parse_top(top_text or "")
    table = top_table(snapshots)
    files = {
        report.METRICS_TSV: metrics_tsv(series),
        report_tsv.REPORT_TSV: report_tsv.metrics_report_tsv(
            summarize(series, *estimate), instance_type=job.instance_type,
            start=job.start, end=end.replace(microsecond=0), cost=cost),
        report.TOP_CPU_TSV: table.to_tsv("cpu"),
        report.TOP_MEM_TSV: table.to_tsv("mem"),
    }
    files[report.HTML] = report.render_html(files, jobid=jobid, samples=samples, snapshots=snapshots)
    return files


def _stored_samples(store: ObjectStore, log_bucket: str, jobid: str) -> list[Sample]:
    """The agent's samples of the job (none on a job whose metrics came from CloudWatch only)."""
    return read_samples_tsv(store.get_text(log_bucket, protocol.key(jobid, protocol.METRICS_SAMPLES)))


def _stored_top(store: ObjectStore, log_bucket: str, jobid: str) -> str:
    return store.get_text(log_bucket, protocol.key(jobid, protocol.TOP)) or ""


def _rerendered(store: ObjectStore, log_bucket: str, jobid: str) -> dict[str, str]:
    """`update_html_only`: metrics.html again from the stored files alone (the tsvs, samples, .top)."""
    files = {name: store.get_text(log_bucket, protocol.metrics_key(jobid, name)) for name in report.TSV_FILES}
    if files[report_tsv.REPORT_TSV] is None:
        raise MetricRetrievalException(f"no {report_tsv.REPORT_TSV} for job {jobid} to re-render the report from")
    return {report.HTML: report.render_html(files, jobid=jobid, samples=_stored_samples(store, log_bucket, jobid),
                                            snapshots=parse_top(_stored_top(store, log_bucket, jobid)))}


def plot_metrics_to_store(
    store: ObjectStore,
    log_bucket: str,
    jobid: str,
    *,
    job_info: JobInfo,
    samples: Sequence[Sample] | MetricSeries | None = None,
    top_text: str | None = None,
    force_upload: bool = False,
    update_html_only: bool = False,
    endtime: _dt.datetime | str | None = None,
    estimate_cost: Callable[[], tuple[float, str]] | None = None,
    now: _dt.datetime | None = None,
) -> str:
    """Write the job's metrics report into its log bucket and return where to open it.

    `samples`: the agent's samples (default: read `<jobid>.metrics/samples.tsv`; the charts
    show them at their own resolution) or a `MetricSeries` already made (from CloudWatch on AWS;
    charts per minute). `top_text`: default `<jobid>.top`.
    The cost estimate already in metrics_report.tsv is kept when it is above zero; otherwise
    `estimate_cost()` is asked. A `Cost` row already there is kept.
    """
    url = report_url(store, log_bucket, jobid)
    html_key, lock_key = protocol.metrics_key(jobid, report.HTML), protocol.metrics_key(jobid, LOCK)
    if not force_upload and store.exists(log_bucket, html_key) and store.exists(log_bucket, lock_key):
        log.info("metrics are locked (job complete); not re-plotting. metrics url= %s", url)
        return url
    try:
        if update_html_only:
            files = _rerendered(store, log_bucket, jobid)
        else:
            end = _window_end(endtime, job_info, now)
            fine_samples: Sequence[Sample] = ()  # for the charts; none from CloudWatch
            if isinstance(samples, MetricSeries):
                series = samples
            else:
                fine_samples = _stored_samples(store, log_bucket, jobid) if samples is None else samples
                series = series_from_samples(fine_samples, job_info.start, end)
            if top_text is None:
                top_text = _stored_top(store, log_bucket, jobid)
            previous = report_tsv.read_report_tsv(
                store.get_text(log_bucket, protocol.metrics_key(jobid, report_tsv.REPORT_TSV)))
            estimate = report_tsv.stored_estimate(previous)
            if estimate[0] <= 0:
                estimate = estimate_cost() if estimate_cost else (0.0, NA)
            files = build_report_files(series, top_text, job_info, end, estimate=estimate,
                                       cost=previous.get("Cost"), jobid=jobid, samples=fine_samples)
    except TibannaError:
        raise
    except Exception as err:
        raise MetricRetrievalException(f"metrics for job {jobid} could not be made: {err}") from err
    # The page goes in after its data, and the lock last, so a lock always means a whole report.
    for name in (*report.TSV_FILES, report.HTML):
        if name in files:
            store.put_text(log_bucket, protocol.metrics_key(jobid, name), files[name])
    if job_info.complete and not update_html_only:
        store.put_bytes(log_bucket, lock_key, b"")
    log.info("metrics url= %s", url)
    return url
