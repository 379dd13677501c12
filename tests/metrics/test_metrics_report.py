"""metrics_report.tsv and the self-contained metrics.html."""
from __future__ import annotations

import base64
import datetime as dt
import io
import re
import struct
import subprocess
import sys

from metrics_builders import START, top_snapshot
from PIL import Image

from tibanna.metrics.plot import JobInfo, build_report_files
from tibanna.metrics.report import read_report_tsv, render_html
from tibanna.metrics.resources import MetricSeries, series_from_samples, summarize

END = START + dt.timedelta(minutes=10)
JOB = JobInfo("t3.medium", START, END, complete=True)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def embedded_pngs(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def assert_real_png(data: bytes) -> None:
    assert data[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert width >= 400 and height >= 200 and len(data) > 5000
    image = Image.open(io.BytesIO(data)).convert("L")
    low, high = image.getextrema()
    assert high - low > 100  # something is drawn, not a blank canvas


def assert_self_contained(page: str) -> None:
    assert not re.search(r"https?://", page)
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert page.startswith("<!DOCTYPE html>")


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
