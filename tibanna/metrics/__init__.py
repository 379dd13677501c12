"""Resource metrics of a job: from the agent's samples (tibanna.samples) or CloudWatch, per-process
top tables, the metrics report.

Importing this package is light: matplotlib and seaborn load only when a page is rendered.
"""
from __future__ import annotations

from tibanna.metrics.plot import JobInfo, build_report_files, job_info, plot_metrics_to_store, report_url
from tibanna.metrics.report import render_html
from tibanna.metrics.resources import MetricSeries, metrics_tsv, read_cloudwatch, series_from_samples, summarize
from tibanna.metrics.top import TopTable, parse_top, top_table

__all__ = [
    "JobInfo", "MetricSeries", "TopTable", "build_report_files", "job_info", "metrics_tsv",
    "parse_top", "plot_metrics_to_store", "read_cloudwatch", "render_html",
    "report_url", "series_from_samples", "summarize", "top_table",
]
