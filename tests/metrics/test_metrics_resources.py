"""Samples and CloudWatch into per-minute rows, metrics.tsv, upstream's summary and chart points."""
from __future__ import annotations

import datetime as dt
import itertools

import boto3
import pytest
from metrics_builders import START
from moto import mock_aws

from tibanna.metrics.resources import (
    GB,
    MAX_CHART_POINTS,
    MB,
    METRICS_TSV_COLUMNS,
    SUMMARY_KEYS,
    MetricSeries,
    bin_width,
    chart_points,
    metrics_tsv,
    metrics_tsv_points,
    read_cloudwatch,
    read_metrics_tsv,
    sample_points,
    series_from_samples,
    summarize,
)
from tibanna.samples import Sample

T0 = START.timestamp()


def test_series_takes_upstreams_statistics_per_minute():
    samples = [
        Sample(T0 + 0, 10.0, 100 * MB, 900 * MB, 1 * GB, 10 * GB, 100.0),
        Sample(T0 + 30, 80.0, 300 * MB, 700 * MB, 2 * GB, 10 * GB, 300.0),
        Sample(T0 + 70, 20.0, 200 * MB, 800 * MB, 3 * GB, 10 * GB, 700.0),
    ]
    series = series_from_samples(samples, START)
    c = series.columns
    assert series.length == 2
    assert c["max_mem_used_MB"] == [300.0, 200.0]
    assert c["min_mem_available_MB"] == [700.0, 800.0]
    assert c["max_cpu_utilization_percent"] == [80.0, 20.0]
    assert c["max_disk_space_used_GB"] == [2.0, 3.0]
    assert c["max_disk_space_utilization_percent"] == [20.0, 30.0]
    assert c["max_mem_utilization_percent"] == [30.0, 20.0]
    assert c["ebs_read_bytes"] == [200.0, 400.0]  # bytes read per minute, from the counter


def test_series_keeps_the_window_and_marks_gaps():
    samples = [Sample(T0 - 30, cpu_percent=99.0), Sample(T0 + 10, cpu_percent=5.0),
               Sample(T0 + 190, cpu_percent=7.0), Sample(T0 + 400, cpu_percent=50.0)]
    series = series_from_samples(samples, START, START + dt.timedelta(minutes=5))
    assert series.columns["max_cpu_utilization_percent"] == [5.0, None, None, 7.0]


def test_metrics_tsv_format():
    series = series_from_samples([Sample(T0, 50.0, 512 * MB, 1536 * MB, 0.5 * GB, 10 * GB),
                                  Sample(T0 + 130, 25.0)], START)
    assert metrics_tsv(series) == (
        "interval\tmax_mem_used_MB\tmin_mem_available_MB\tmax_disk_space_used_GB\t"
        "max_mem_utilization_percent\tmax_disk_space_utilization_percent\tmax_cpu_utilization_percent\n"
        "1\t512.0\t1536.0\t0.5\t25.0\t5.0\t50.0\n"
        "2\t-\t-\t-\t-\t-\t-\n"
        "3\t-\t-\t-\t-\t-\t25.0\n")
    back = read_metrics_tsv(metrics_tsv(series))
    assert back["interval"] == [1.0, 2.0, 3.0]
    assert back["max_cpu_utilization_percent"] == [50.0, None, 25.0]
    assert list(back) == ["interval", *METRICS_TSV_COLUMNS]


def test_summary_is_upstreams_as_dict(samples):
    summary = summarize(series_from_samples(samples, START), 0.25, "immediate estimate")
    assert tuple(summary) == SUMMARY_KEYS
    assert summary["max_mem_used_MB"] == pytest.approx(max(s.mem_used_bytes for s in samples) / MB)
    assert summary["min_mem_available_MB"] == pytest.approx(min(s.mem_available_bytes for s in samples) / MB)
    assert summary["total_mem_MB"] == summary["max_mem_used_MB"] + summary["min_mem_available_MB"]
    assert summary["max_mem_utilization_percent"] == pytest.approx(
        summary["max_mem_used_MB"] / summary["total_mem_MB"] * 100)
    assert summary["max_cpu_utilization_percent"] == pytest.approx(max(s.cpu_percent for s in samples))
    assert summary["max_disk_space_used_GB"] == pytest.approx(max(s.disk_used_bytes for s in samples) / GB)
    assert summary["max_disk_space_utilization_percent"] == pytest.approx(
        max(s.disk_used_bytes / s.disk_total_bytes * 100 for s in samples))
    assert summary["max_ebs_read_bytes"] > 0
    assert (summary["cost_estimate"], summary["cost_estimate_type"]) == (0.25, "immediate estimate")


def test_summary_without_data_is_empty_strings():
    summary = summarize(MetricSeries(START))
    assert all(summary[k] == "" for k in SUMMARY_KEYS[:8])
    assert (summary["cost_estimate"], summary["cost_estimate_type"]) == (0.0, "NA")


class CountingClient:
    """A boto3 client wrapper that records get_metric_statistics calls."""

    def __init__(self, client):
        self.client, self.calls = client, []

    def get_metric_statistics(self, **kwargs):
        self.calls.append(kwargs)
        return self.client.get_metric_statistics(**kwargs)


@mock_aws
def test_read_cloudwatch_in_day_chunks_with_upstreams_statistics():
    cw = boto3.client("cloudwatch", region_name="us-east-1")
    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(days=2, hours=12)
    dims = [{"Name": "InstanceId", "Value": "i-0123456789"}]
    data = [  # (metric, unit, minute, value)
        ("mem_used", "Bytes", 0, 512 * MB), ("mem_used", "Bytes", 0, 1024 * MB),
        ("mem_available", "Bytes", 0, 3000 * MB), ("mem_available", "Bytes", 0, 2000 * MB),
        ("cpu_usage_active", "Percent", 0, 75.0), ("disk_used", "Bytes", 0, 2 * GB),
        ("disk_used_percent", "Percent", 0, 10.0), ("mem_used_percent", "Percent", 0, 25.0),
        ("diskio_read_bytes", "Bytes", 0, 100.0), ("diskio_read_bytes", "Bytes", 0, 300.0),
        ("cpu_usage_active", "Percent", 2 * 1440 + 5, 40.0),  # on the third day
    ]
    for name, unit, minute, value in data:
        cw.put_metric_data(Namespace="CWAgent", MetricData=[{
            "MetricName": name, "Dimensions": dims, "Unit": unit, "Value": value,
            "Timestamp": start + dt.timedelta(minutes=minute, seconds=10)}])
    cw.put_metric_data(Namespace="CWAgent", MetricData=[{  # another instance: not ours
        "MetricName": "cpu_usage_active", "Unit": "Percent", "Value": 99.0, "Timestamp": start,
        "Dimensions": [{"Name": "InstanceId", "Value": "i-other"}]}])
    client = CountingClient(cw)
    series = read_cloudwatch(client, "i-0123456789", start, start + dt.timedelta(days=2, hours=6))

    assert len(client.calls) == 7 * 3  # seven metrics, three 1-day chunks
    first = client.calls[0]
    assert first["Namespace"] == "CWAgent" and first["Period"] == 60
    assert first["Dimensions"] == dims
    assert {(c["MetricName"], c["Statistics"][0], c["Unit"]) for c in client.calls} == {
        ("mem_used", "Maximum", "Bytes"), ("mem_available", "Minimum", "Bytes"),
        ("disk_used", "Maximum", "Bytes"), ("mem_used_percent", "Maximum", "Percent"),
        ("disk_used_percent", "Maximum", "Percent"), ("cpu_usage_active", "Maximum", "Percent"),
        ("diskio_read_bytes", "Average", "Bytes")}
    assert all(c["EndTime"] - c["StartTime"] <= dt.timedelta(days=1) for c in client.calls)

    c = series.columns
    assert c["max_mem_used_MB"][0] == 1024.0
    assert c["min_mem_available_MB"][0] == 2000.0
    assert c["max_disk_space_used_GB"][0] == 2.0
    assert c["ebs_read_bytes"][0] == 200.0
    assert c["max_cpu_utilization_percent"][0] == 75.0
    assert c["max_cpu_utilization_percent"][2 * 1440 + 5] == 40.0
    summary = summarize(series)
    assert summary["total_mem_MB"] == 3024.0
    assert summary["max_cpu_utilization_percent"] == 75.0


# Chart data ----------------------------------------------------------------------------------
def test_bin_widths_are_round():
    assert [bin_width(s) for s in (0.01, 0.2, 0.3, 7, 59, 61, 432, 5000, 90000)] == \
        [0.1, 0.2, 0.5, 10, 60, 120, 600, 7200, 172800]


def test_chart_points_keep_every_sample_of_a_short_job():
    samples = [Sample(T0 + 0.5 + 0.2 * k, 40.0 + k, 200 * MB, 1000 * MB, GB, 10 * GB, 0) for k in range(50)]
    points = chart_points(sample_points(samples), START, START + dt.timedelta(seconds=11))
    assert [x for x, _ in points["max_cpu_utilization_percent"]] == pytest.approx([0.5 + 0.2 * k for k in range(50)])
    assert [v for _, v in points["max_cpu_utilization_percent"]] == [40.0 + k for k in range(50)]
    assert [v for _, v in points["max_mem_used_MB"]] == [200.0] * 50
    assert points["max_disk_space_utilization_percent"][0][1] == 10.0


def test_chart_points_bin_a_long_job_by_each_columns_statistic():
    days = 3
    samples = [Sample(T0 + 10 * k, 50.0, 1000 * MB, 3000 * MB, GB, 10 * GB, 0) for k in range(days * 8640)]
    samples[5000] = Sample(samples[5000].time, 97.0, 2500 * MB, 1500 * MB, GB, 10 * GB, 0)  # one 10-second spike
    points = chart_points(sample_points(samples), START, START + dt.timedelta(days=days))
    for column in METRICS_TSV_COLUMNS:
        xs = [x for x, _ in points[column]]
        assert len(xs) <= MAX_CHART_POINTS and {b - a for a, b in itertools.pairwise(xs)} == {600.0}  # 10-minute bins
    assert max(v for _, v in points["max_mem_used_MB"]) == 2500.0  # maxima and minima keep the spike
    assert min(v for _, v in points["min_mem_available_MB"]) == 1500.0
    assert max(v for _, v in points["max_cpu_utilization_percent"]) == 97.0


def test_chart_points_keep_the_window():
    samples = [Sample(T0 + s, cpu_percent=float(s)) for s in (-5, 0, 30, 60, 61)]
    points = chart_points(sample_points(samples), START, START + dt.timedelta(seconds=60))
    assert points["max_cpu_utilization_percent"] == [(0.0, 0.0), (30.0, 30.0), (60.0, 60.0)]


def test_metrics_tsv_rows_as_points():
    series = series_from_samples([Sample(T0, 50.0), Sample(T0 + 130, 25.0)], START)
    points = metrics_tsv_points(read_metrics_tsv(metrics_tsv(series)), START)
    assert points["max_cpu_utilization_percent"] == [(T0, 50.0), (T0 + 120, 25.0)]
    assert points["max_mem_used_MB"] == []
