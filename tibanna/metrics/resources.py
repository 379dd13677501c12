"""Machine resource use over a job: samples or CloudWatch -> per-minute rows and upstream's summary.

Both backends end in the same `MetricSeries`: one row per minute since the job's start, each
value the statistic upstream asks CloudWatch for over that minute.
On local the rows come from the agent's samples (tibanna/samples.py); on AWS from CloudWatch
(namespace CWAgent, dimension InstanceId). The summary (`summarize`) is upstream's
`TibannaResource.as_dict()`.

Charts use the finest data there is (`chart_points`): the samples themselves when there are
samples, else the per-minute rows, binned by the same statistics when a series is too long to draw.
"""
from __future__ import annotations

import datetime as _dt
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tibanna.cost import NA
from tibanna.samples import Sample, number_or_none

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 60
# A chart is about 1100 pixels wide: more points than this are binned.
MAX_CHART_POINTS = 600
# Round bin widths for charts, in seconds (beyond the last: whole days).
_BIN_WIDTHS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
               21600, 43200, 86400)
MB = 1024.0 ** 2
GB = 1024.0 ** 3
CLOUDWATCH_NAMESPACE = "CWAgent"

# metrics.tsv's columns, in upstream's order.
METRICS_TSV_COLUMNS = ("max_mem_used_MB", "min_mem_available_MB", "max_disk_space_used_GB",
                       "max_mem_utilization_percent", "max_disk_space_utilization_percent",
                       "max_cpu_utilization_percent")
# Not a metrics.tsv column; it feeds the summary's max_ebs_read_bytes.
EBS_READ = "ebs_read_bytes"

SUMMARY_KEYS = ("max_mem_used_MB", "min_mem_available_MB", "total_mem_MB",
                "max_mem_utilization_percent", "max_cpu_utilization_percent",
                "max_disk_space_utilization_percent", "max_disk_space_used_GB",
                "max_ebs_read_bytes", "cost_estimate", "cost_estimate_type")


def _ratio(part: float | None, whole: float | None) -> float | None:
    return part / whole * 100 if part is not None and whole else None


def _mem_percent(s: Sample) -> float | None:
    if s.mem_used_bytes is None or s.mem_available_bytes is None:
        return None
    return _ratio(s.mem_used_bytes, s.mem_used_bytes + s.mem_available_bytes)


@dataclass(frozen=True)
class _Metric:
    """How one row value is made: the CloudWatch metric and statistic, and the same from samples
    (`from_sample` None: made by its own rule)."""

    cloudwatch_name: str
    statistic: str
    unit: str
    scale: float
    from_sample: Callable[[Sample], float | None] | None


# One table drives both sources, so local and AWS rows mean the same thing.
METRICS: dict[str, _Metric] = {
    "max_mem_used_MB": _Metric("mem_used", "Maximum", "Bytes", MB, lambda s: s.mem_used_bytes),
    "min_mem_available_MB": _Metric("mem_available", "Minimum", "Bytes", MB, lambda s: s.mem_available_bytes),
    "max_disk_space_used_GB": _Metric("disk_used", "Maximum", "Bytes", GB, lambda s: s.disk_used_bytes),
    "max_mem_utilization_percent": _Metric("mem_used_percent", "Maximum", "Percent", 1.0, _mem_percent),
    "max_disk_space_utilization_percent": _Metric(
        "disk_used_percent", "Maximum", "Percent", 1.0, lambda s: _ratio(s.disk_used_bytes, s.disk_total_bytes)),
    "max_cpu_utilization_percent": _Metric("cpu_usage_active", "Maximum", "Percent", 1.0, lambda s: s.cpu_percent),
    EBS_READ: _Metric("diskio_read_bytes", "Average", "Bytes", 1.0, None),  # see _reads_per_minute
}

_STATISTICS: dict[str, Callable[[list[float]], float]] = {
    "Maximum": max,
    "Minimum": min,
    "Average": lambda values: sum(values) / len(values),
}


def _utc(when: _dt.datetime) -> _dt.datetime:
    return when.replace(tzinfo=_dt.timezone.utc) if when.tzinfo is None else when.astimezone(_dt.timezone.utc)


@dataclass
class MetricSeries:
    """Per-minute rows from `start`: `columns[name][i]` is minute i's value (None when unknown)."""

    start: _dt.datetime
    columns: dict[str, list[float | None]] = field(default_factory=lambda: {name: [] for name in METRICS})

    @property
    def length(self) -> int:
        return max((len(v) for v in self.columns.values()), default=0)

    @classmethod
    def from_points(cls, start: _dt.datetime, points: dict[str, Iterable[tuple[_dt.datetime | float, float]]]
                    ) -> MetricSeries:
        """Place (time, value) points (datetimes or epoch seconds) on the minute grid, combining
        points of the same minute by each metric's statistic; points before `start` are dropped."""
        start = _utc(start)
        origin = start.timestamp()
        slots: dict[str, dict[int, list[float]]] = {name: {} for name in METRICS}
        for name, pts in points.items():
            for when, value in pts:
                seconds = (_utc(when).timestamp() if isinstance(when, _dt.datetime) else float(when)) - origin
                if value is not None and seconds >= 0:
                    slots[name].setdefault(int(seconds // INTERVAL_SECONDS), []).append(value)
        length = max((max(s) + 1 for s in slots.values() if s), default=0)
        columns = {}
        for name, by_slot in slots.items():
            combine = _STATISTICS[METRICS[name].statistic]
            columns[name] = [combine(by_slot[i]) if i in by_slot else None for i in range(length)]
        return cls(start, columns)


Points = dict[str, list[tuple[float, float]]]
"""(epoch seconds, value) per metrics.tsv column, in the column's unit."""


def sample_points(samples: Sequence[Sample]) -> Points:
    """The samples' values per metrics.tsv column (MB, GB, percent); missing values left out."""
    points: Points = {}
    for name, metric in METRICS.items():
        if metric.from_sample is not None:  # every metrics.tsv column
            values = ((s.time, metric.from_sample(s)) for s in samples)
            points[name] = [(t, v / metric.scale) for t, v in values if v is not None]
    return points


def series_from_samples(samples: Sequence[Sample], start: _dt.datetime | None = None,
                        end: _dt.datetime | None = None) -> MetricSeries:
    """Per-minute rows from the agent's samples within [start, end) (start: the first sample)."""
    if start is None:
        start = _dt.datetime.fromtimestamp(samples[0].time if samples else 0, _dt.timezone.utc)
    stop = _utc(end).timestamp() if end is not None else math.inf
    kept = [s for s in samples if s.time < stop]
    points: dict[str, Iterable[tuple[float, float]]] = {**sample_points(kept)}
    points[EBS_READ] = _reads_per_minute(kept, _utc(start).timestamp())
    return MetricSeries.from_points(start, points)


def _reads_per_minute(samples: Sequence[Sample], origin: float) -> list[tuple[float, float]]:
    """Bytes read in each minute, from the samples' counter: CloudWatch's diskio_read_bytes counts
    bytes per collection interval, so this is what its per-minute average means on AWS."""
    per_minute: dict[int, float] = {}
    previous: float | None = None
    for s in samples:
        if s.read_bytes is None:
            continue
        if previous is not None:
            slot = int((s.time - origin) // INTERVAL_SECONDS)
            per_minute[slot] = per_minute.get(slot, 0.0) + max(s.read_bytes - previous, 0.0)
        previous = s.read_bytes
    return [(origin + slot * INTERVAL_SECONDS, value) for slot, value in per_minute.items()]


def read_cloudwatch(client: Any, instance_id: str, start: _dt.datetime, end: _dt.datetime) -> MetricSeries:
    """Per-minute rows from CloudWatch for one instance (a boto3 `cloudwatch` client).

    Namespace CWAgent, dimension InstanceId, each metric with upstream's statistic and unit; the
    window is read in 1-day chunks because one call returns at most 1440 points.
    """
    start, end = _utc(start), _utc(end)
    chunks = []
    chunk_start = start
    while chunk_start < end:
        chunk_end = min(chunk_start + _dt.timedelta(days=1), end)
        chunks.append((chunk_start, chunk_end))
        chunk_start = chunk_end
    points: dict[str, list[tuple[_dt.datetime, float]]] = {}
    for name, metric in METRICS.items():
        points[name] = []
        for chunk_start, chunk_end in chunks:
            response = client.get_metric_statistics(
                Namespace=CLOUDWATCH_NAMESPACE,
                MetricName=metric.cloudwatch_name,
                Dimensions=[{"Name": "InstanceId", "Value": instance_id}],
                Period=INTERVAL_SECONDS,
                Statistics=[metric.statistic],
                StartTime=chunk_start,
                EndTime=chunk_end,
                Unit=metric.unit,
            )
            points[name].extend((p["Timestamp"], p[metric.statistic] / metric.scale)
                                for p in response.get("Datapoints", []))
    return MetricSeries.from_points(start, points)


def _choose(values: Iterable[float | None], pick: Callable[[list[float]], float]) -> float | str:
    """Upstream's choose_max/choose_min: ignore missing and zero values; '' when nothing is left."""
    kept = [v for v in values if v]
    return pick(kept) if kept else ""


def summarize(series: MetricSeries, cost_estimate: float = 0.0, cost_estimate_type: str = NA) -> dict:
    """Upstream's summary dict (the postrun JSON's `Job.Metrics`): maxima and minima over the job."""
    c = series.columns
    max_used = _choose(c["max_mem_used_MB"], max)
    min_available = _choose(c["min_mem_available_MB"], min)
    if max_used != "" and min_available != "":
        total: float | str = max_used + min_available
        utilization: float | str = max_used / total * 100
    else:
        total = utilization = ""
    return {
        "max_mem_used_MB": max_used,
        "min_mem_available_MB": min_available,
        "total_mem_MB": total,
        "max_mem_utilization_percent": utilization,
        "max_cpu_utilization_percent": _choose(c["max_cpu_utilization_percent"], max),
        "max_disk_space_utilization_percent": _choose(c["max_disk_space_utilization_percent"], max),
        "max_disk_space_used_GB": _choose(c["max_disk_space_used_GB"], max),
        "max_ebs_read_bytes": _choose(c[EBS_READ], max),
        "cost_estimate": cost_estimate,
        "cost_estimate_type": cost_estimate_type,
    }


def metrics_tsv(series: MetricSeries) -> str:
    """metrics.tsv: `interval` (1-based minute) then upstream's six columns; `-` where unknown."""
    lines = ["\t".join(("interval",) + METRICS_TSV_COLUMNS)]
    for i in range(series.length):
        values = []
        for name in METRICS_TSV_COLUMNS:
            column = series.columns[name]
            value = column[i] if i < len(column) else None
            values.append("-" if value is None else str(value))
        lines.append("\t".join([str(i + 1)] + values))
    return "\n".join(lines) + "\n"


def metrics_tsv_points(columns: dict[str, list[float | None]], start: _dt.datetime) -> Points:
    """metrics.tsv's rows (`read_metrics_tsv`) as points: row `interval` i is minute i-1 of the job."""
    origin = _utc(start).timestamp()
    minutes = columns.get("interval") or []
    return {name: [(origin + (i - 1) * INTERVAL_SECONDS, v)
                   for i, v in zip(minutes, columns.get(name) or [], strict=False)
                   if i is not None and v is not None]
            for name in METRICS_TSV_COLUMNS}


def bin_width(seconds: float) -> float:
    """The smallest round width (0.1 s up to a day, then whole days) of at least `seconds`."""
    for width in _BIN_WIDTHS:
        if width >= seconds:
            return float(width)
    return math.ceil(seconds / 86400) * 86400.0


def chart_points(points: Points, start: _dt.datetime, end: _dt.datetime,
                 max_points: int = MAX_CHART_POINTS) -> Points:
    """Points (in time order) within [start, end] as (seconds since start, value), ready to draw.

    A column with at most `max_points` points keeps every one (a job of seconds shows each
    sample); a longer one is binned to a round width of at least (end - start) / max_points,
    each bin taking the column's statistic (maximum of used and utilisation, minimum of
    available), so peaks survive and a chart of minutes agrees with metrics.tsv.
    """
    origin, stop = _utc(start).timestamp(), _utc(end).timestamp()
    charted: Points = {}
    for name, pts in points.items():
        kept = [(t - origin, v) for t, v in pts if origin <= t <= stop]
        if len(kept) > max_points:
            width = bin_width((stop - origin) / max_points)
            bins: dict[int, list[float]] = {}
            for x, v in kept:
                bins.setdefault(int(x // width), []).append(v)
            combine = _STATISTICS[METRICS[name].statistic]
            kept = [(k * width, combine(values)) for k, values in sorted(bins.items())]
        charted[name] = kept
    return charted


def read_metrics_tsv(text: str) -> dict[str, list[float | None]]:
    """metrics.tsv back into columns (`interval` included); `-` becomes None."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return {"interval": [], **{name: [] for name in METRICS_TSV_COLUMNS}}
    header = lines[0].split("\t")
    columns: dict[str, list[float | None]] = {name: [] for name in header}
    for line in lines[1:]:
        fields = line.split("\t")
        for i, name in enumerate(header):
            columns[name].append(number_or_none(fields[i]) if i < len(fields) else None)
    return columns
