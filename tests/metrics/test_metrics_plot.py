"""plot_metrics_to_store against a LocalStore: files, lock, force_upload and update_html_only."""
from __future__ import annotations

import datetime as dt

import pytest
from metrics_builders import START
from pagecheck import embedded_pngs

from tibanna.exceptions import MetricRetrievalException
from tibanna.metrics.plot import JobInfo, job_info, plot_metrics_to_store, report_url
from tibanna.metrics.report_tsv import read_report_tsv
from tibanna.protocol import metrics_key
from tibanna.samples import SAMPLES_HEADER
from tibanna.storage import LocalStore

LB = "logs"
JOBID = "j0bId1234567"
END = START + dt.timedelta(minutes=10)
DONE = JobInfo("t3.medium", START, END, complete=True)
RUNNING = JobInfo("t3.medium", START)
FILES = ("metrics.tsv", "metrics_report.tsv", "top_cpu.tsv", "top_mem.tsv", "metrics.html")


@pytest.fixture
def store(tmp_path, samples, top_text) -> LocalStore:
    """A log bucket holding what the agent leaves: samples.tsv and the .top file."""
    store = LocalStore(tmp_path)
    rows = ["\t".join(str(v) for v in (s.time, s.cpu_percent, s.mem_used_bytes, s.mem_available_bytes,
                                       s.disk_used_bytes, s.disk_total_bytes, s.read_bytes)) for s in samples]
    store.put_text(LB, metrics_key(JOBID, "samples.tsv"), SAMPLES_HEADER + "".join(f"{row}\n" for row in rows))
    store.put_text(LB, f"{JOBID}.top", top_text)
    return store


def read(store: LocalStore, name: str) -> str | None:
    return store.get_text(LB, metrics_key(JOBID, name))


def test_complete_job_gets_every_file_and_a_lock(store):
    url = plot_metrics_to_store(store, LB, JOBID, job_info=DONE, estimate_cost=lambda: (0.5, "immediate estimate"))
    assert url == store.path(LB, metrics_key(JOBID, "metrics.html")).resolve().as_uri() == report_url(store, LB, JOBID)
    for name in FILES:
        assert read(store, name), name
    assert read(store, "lock") == ""
    assert '"bwa mem -t 2 ref.fa reads.fq"' in read(store, "top_cpu.tsv").splitlines()[0]
    assert len(read(store, "metrics.tsv").splitlines()) == 1 + 10
    report = read_report_tsv(read(store, "metrics_report.tsv"))
    assert (report["Estimated_Cost"], report["Estimated_Cost_Type"]) == ("0.5", "immediate estimate")
    assert report["End_Time"] == "2024-03-01 12:10:00"


def test_lock_keeps_the_report_unless_forced(store):
    plot_metrics_to_store(store, LB, JOBID, job_info=DONE)
    store.put_text(LB, metrics_key(JOBID, "metrics.tsv"), "sentinel")
    plot_metrics_to_store(store, LB, JOBID, job_info=DONE)
    assert read(store, "metrics.tsv") == "sentinel"
    plot_metrics_to_store(store, LB, JOBID, job_info=DONE, force_upload=True)
    assert read(store, "metrics.tsv").startswith("interval\t")


def test_running_job_is_replotted_and_not_locked(store):
    now = START + dt.timedelta(minutes=5)
    plot_metrics_to_store(store, LB, JOBID, job_info=RUNNING, now=now)
    assert read(store, "lock") is None
    assert read_report_tsv(read(store, "metrics_report.tsv"))["End_Time"] == "2024-03-01 12:05:00"
    assert len(read(store, "metrics.tsv").splitlines()) == 1 + 5  # samples after `now` are left out
    plot_metrics_to_store(store, LB, JOBID, job_info=RUNNING, endtime="20240301-12:08:00-UTC")
    assert read_report_tsv(read(store, "metrics_report.tsv"))["End_Time"] == "2024-03-01 12:08:00"


def test_update_html_only_rerenders_from_the_stored_tsvs(store):
    plot_metrics_to_store(store, LB, JOBID, job_info=DONE)
    report = read(store, "metrics_report.tsv") + "Cost\t0.0421\n"
    store.put_text(LB, metrics_key(JOBID, "metrics_report.tsv"), report)
    tsvs_before = {name: read(store, name) for name in FILES[:4]}

    plot_metrics_to_store(store, LB, JOBID, job_info=DONE, update_html_only=True)  # locked: nothing changes
    assert "$0.04210" not in read(store, "metrics.html")

    plot_metrics_to_store(store, LB, JOBID, job_info=DONE, update_html_only=True, force_upload=True)
    page = read(store, "metrics.html")
    assert "$0.04210" in page and page.count("<img") == 5
    assert {name: read(store, name) for name in FILES[:4]} == tsvs_before


def test_update_html_only_draws_the_charts_of_a_full_plot_from_the_stored_files(store):
    plot_metrics_to_store(store, LB, JOBID, job_info=RUNNING, now=END)
    page = read(store, "metrics.html")
    plot_metrics_to_store(store, LB, JOBID, job_info=RUNNING, update_html_only=True)
    assert embedded_pngs(read(store, "metrics.html")) == embedded_pngs(page)
    store.put_text(LB, metrics_key(JOBID, "samples.tsv"), "")  # without samples: metrics.tsv's minutes
    plot_metrics_to_store(store, LB, JOBID, job_info=RUNNING, update_html_only=True)
    coarse = embedded_pngs(read(store, "metrics.html"))
    assert coarse[:3] != embedded_pngs(page)[:3] and len(coarse) == 5


def test_update_html_only_needs_a_report(store):
    with pytest.raises(MetricRetrievalException, match="metrics_report.tsv"):
        plot_metrics_to_store(store, LB, JOBID, job_info=DONE, update_html_only=True)


def test_a_replot_keeps_the_estimate_and_cost_already_there(store):
    plot_metrics_to_store(store, LB, JOBID, job_info=RUNNING, now=END,
                          estimate_cost=lambda: (0.3, "immediate estimate"))
    store.put_text(LB, metrics_key(JOBID, "metrics_report.tsv"),
                   read(store, "metrics_report.tsv") + "Cost\t0.29\n")
    asked = []
    plot_metrics_to_store(store, LB, JOBID, job_info=DONE, estimate_cost=lambda: asked.append(1) or (9.9, "x"))
    report = read_report_tsv(read(store, "metrics_report.tsv"))
    assert not asked
    assert (report["Estimated_Cost"], report["Cost"]) == ("0.3", "0.29")


def test_failures_are_metric_retrieval_errors(store):
    store.put_text(LB, metrics_key(JOBID, "samples.tsv"), "no time column\n1\n")
    with pytest.raises(MetricRetrievalException, match="could not be made"):
        plot_metrics_to_store(store, LB, JOBID, job_info=DONE)
    assert read(store, "metrics.html") is None


def test_job_info_from_postrun_then_run_json():
    postrun = {"Job": {"start_time": "20240301-12:00:00-UTC", "end_time": "20240301-12:10:00-UTC",
                       "instance_type": "t3.small"}, "config": {"instance_type": "t3.large"}}
    assert job_info(postrun, None) == JobInfo("t3.small", START, END, complete=True)
    unfinished = {"Job": {"start_time": "20240301-12:00:00-UTC", "end_time": ""}, "config": {}}
    assert job_info(unfinished, None).complete is False
    runjson = {"Job": {"start_time": "20240301-12:00:00-UTC"}, "config": {"instance_type": ["t3.small", "t3.medium"]}}
    assert job_info(None, runjson) == JobInfo("t3.small,t3.medium", START, None, complete=False)
    with pytest.raises(MetricRetrievalException, match="Neither postrun json nor run json"):
        job_info(None, None)


def test_other_stores_get_upstreams_s3_url():
    url = report_url(object(), LB, JOBID)  # type: ignore[arg-type]  # any store but a LocalStore
    assert url == f"https://{LB}.s3.amazonaws.com/{JOBID}.metrics/metrics.html"
