"""metrics_report.tsv and the self-contained metrics.html, its charts at the samples' resolution."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
from metrics_builders import START, make_samples, top_snapshot
from pagecheck import assert_real_png, assert_self_contained, embedded_pngs

from tibanna.metrics.plot import JobInfo, build_report_files
from tibanna.metrics.report import _time_unit, chart_data, render_html
from tibanna.metrics.report_tsv import read_report_tsv
from tibanna.metrics.resources import MAX_CHART_POINTS, MetricSeries, series_from_samples, summarize
from tibanna.metrics.top import parse_top

END = START + dt.timedelta(minutes=10)
JOB = JobInfo("t3.medium", START, END, complete=True)


def test_metrics_report_tsv_format(samples):
    series = series_from_samples(samples, START)
    files = build_report_files(series, "", JOB, END, estimate=(0.0123, "immediate estimate"), cost="0.02")
    summary = summarize(series)
    assert files["metrics_report.tsv"] == (
        "Metric\tValue\n"
        f"Maximum_Memory_Used_Mb\t{summary['max_mem_used_MB']}\n"
        f"Minimum_Memory_Available_Mb\t{summary['min_mem_available_MB']}\n"
        f"Maximum_Disk_Used_Gb\t{summary['max_disk_space_used_GB']}\n"
        f"Maximum_Memory_Utilization\t{summary['max_mem_utilization_percent']}\n"
        f"Maximum_CPU_Utilization\t{summary['max_cpu_utilization_percent']}\n"
        f"Maximum_Disk_Utilization\t{summary['max_disk_space_utilization_percent']}\n"
        "Start_Time\t2024-03-01 12:00:00\n"
        "End_Time\t2024-03-01 12:10:00\n"
        "Instance_Type\tt3.medium\n"
        "Estimated_Cost\t0.0123\n"
        "Estimated_Cost_Type\timmediate estimate\n"
        "Cost\t0.02\n")
    assert read_report_tsv(files["metrics_report.tsv"])["Instance_Type"] == "t3.medium"


def test_html_from_synthetic_samples_embeds_five_real_charts(samples, top_text):
    files = build_report_files(series_from_samples(samples, START), top_text, JOB, END,
                               estimate=(0.0123, "immediate estimate"), jobid="job123")
    page = files["metrics.html"]
    pngs = embedded_pngs(page)
    assert len(pngs) == 5 == page.count("<img")
    for png in pngs:
        assert_real_png(png)
    assert_self_contained(page)
    for text in ("Tibanna Metrics", "job123", "t3.medium", "General Information", "Metrics",
                 "Cost (estimated) (USD)", "$0.01230 (immediate estimate)", "0:10:00",
                 "Resource utilization", "Memory", "Disk usage (/data1)", "CPU usage per process",
                 "Memory usage per process", "bwa mem -t 2 ref.fa reads.fq"):
        assert text in page


def test_html_without_data_says_so_and_stays_valid():
    page = render_html({"metrics_report.tsv": build_report_files(MetricSeries(START), "", JOB, END)
                        ["metrics_report.tsv"]})
    assert "<img" not in page
    assert "No resource samples were recorded" in page and "No process of the job was seen by top" in page
    assert_self_contained(page)


def test_long_runs_are_plotted_in_hours_and_commands_are_escaped(samples):
    text = "".join(top_snapshot(START + dt.timedelta(minutes=m), [(50.0, 1.0, "sh -c 'a < b && c > d'")])
                   for m in (0, 400))
    long_job = JobInfo("t3.medium", START, START + dt.timedelta(hours=7), complete=True)
    files = build_report_files(series_from_samples(samples, START), text, long_job, long_job.end)
    page = files["metrics.html"]
    assert "sh -c &#x27;a &lt; b &amp;&amp; c &gt; d&#x27;" in page
    assert "a < b" not in page
    for png in embedded_pngs(page):
        assert_real_png(png)


def test_importing_cost_and_metrics_leaves_matplotlib_unloaded():
    code = ("import sys, tibanna.cost, tibanna.metrics; "
            "print(sorted(m for m in ('matplotlib', 'seaborn', 'pandas', 'boto3') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# Charts at the samples' resolution ----------------------------------------------------------
def report_files(job: JobInfo, samples: list, top_text: str) -> dict[str, str]:
    return build_report_files(series_from_samples(samples, job.start, job.end), top_text, job, job.end,
                              samples=samples)


def top_every(seconds: float, span: float) -> str:
    """One snapshot every `seconds` over `span` seconds from START."""
    return "".join(top_snapshot(START + dt.timedelta(seconds=k * seconds), [(80.0, 2.0, "tool run")])
                   for k in range(int(span / seconds)))


@pytest.mark.parametrize("span, label", [(10, "(s)"), (120, "(s)"), (600, "(min)"), (3 * 3600, "(min)"),
                                         (3 * 86400, "(h)")])
def test_time_axis_unit_fits_the_span(span, label):
    assert _time_unit(span)[1].endswith(label)


def test_a_ten_second_job_is_charted_sample_by_sample():
    job = JobInfo("local", START, START + dt.timedelta(seconds=10), complete=True)
    samples = make_samples(minutes=10 / 60, every=0.2)
    top_text = top_every(1, 10)
    files = report_files(job, samples, top_text)
    assert len(files["metrics.tsv"].splitlines()) == 1 + 1  # the tsv keeps upstream's minutes
    points, table, span = chart_data(files, samples, parse_top(top_text))
    assert span == 11  # the end stamp's second is in
    assert chart_data({}, samples)[2] == pytest.approx(9.8)  # no report: the samples' extent
    assert len(samples) == 50 == len(points["max_cpu_utilization_percent"]) == len(points["max_mem_used_MB"])
    assert table.interval == 1.0 and sum(table.seen) == 10
    page = files["metrics.html"]
    for png in embedded_pngs(page):
        assert_real_png(png)
    assert "% of all CPUs" in page and "cpu_usage_active" in page


def test_a_three_day_job_is_binned_to_fit_the_chart():
    job = JobInfo("t3.large", START, START + dt.timedelta(days=3), complete=True)
    samples = make_samples(minutes=3 * 1440, every=30)
    top_text = top_every(600, 3 * 86400)
    files = report_files(job, samples, top_text)
    points, table, span = chart_data(files, samples, parse_top(top_text))
    assert len(samples) == 8640 and all(0 < len(p) <= MAX_CHART_POINTS for p in points.values())
    assert len(table.cpu) <= MAX_CHART_POINTS + 1 and sum(table.seen) == 432
    assert _time_unit(span)[1] == "Elapsed time (h)"
    pngs = embedded_pngs(files["metrics.html"])
    assert len(pngs) == 5
    for png in pngs:
        assert_real_png(png)


def test_without_samples_or_top_the_charts_use_the_tsvs(samples, top_text):
    files = report_files(JOB, samples, top_text)
    points, table, _ = chart_data(files)
    assert [x for x, _ in points["max_cpu_utilization_percent"]] == [60.0 * i for i in range(10)]
    assert table.commands == ["bwa mem -t 2 ref.fa reads.fq", "samtools sort -o out.bam -"]
    assert sum(table.seen) == 10
    fine, _, _ = chart_data(files, samples, parse_top(top_text))
    assert len(fine["max_cpu_utilization_percent"]) == len(samples) == 120
