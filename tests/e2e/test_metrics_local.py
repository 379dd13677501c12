"""plot_metrics, cost and cost_estimate on a real local job that holds ~200 MB and burns CPU.

One job runs for the whole module (a few seconds); the tests read what it left. The test that
re-plots and re-renders the report comes after those that only read it.
"""
from __future__ import annotations

import itertools
import json
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from jobhelpers import shell_job, wait_done
from metrics.pagecheck import (
    CHROMIUM,
    assert_real_png,
    assert_self_contained,
    chromium,
    console_errors,
    embedded_pngs,
)
from tibanna import protocol
from tibanna.core import API
from tibanna.metrics.report_tsv import read_report_tsv
from tibanna.metrics.resources import MB, read_metrics_tsv
from tibanna.samples import read_samples_tsv

MEMORY_MIB = 200
BURN_CPU_SECONDS = 1.5
# One line, so top shows the command as written here. It holds the memory while it burns a fixed
# CPU time, which stays the same however busy the machine is.
PROGRAM = (f"import time; data = bytearray({MEMORY_MIB} * 2**20); t = time.process_time(); "
           f"any(iter(lambda: time.process_time() - t > {BURN_CPU_SECONDS}, True))")
INSTANCE_TYPE = "t3.small"
PRICE_PER_HOUR = 3.6  # so a job costs a dollar per thousand seconds
FILES = ("metrics.tsv", "metrics_report.tsv", "top_cpu.tsv", "top_mem.tsv", "metrics.html")


def description() -> dict:
    job = shell_job(f"python3 -c '{PROGRAM}'")
    job["config"].update(instance_type=INSTANCE_TYPE, metrics_interval=0.2)
    return job


def write_prices(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "prices.json").write_text(json.dumps({"instance_types": {INSTANCE_TYPE: PRICE_PER_HOUR}}))


@dataclass
class Job:
    """The module's job and where its files are."""

    api: API
    home: Path
    jobid: str
    url: str

    def metrics_file(self, name: str) -> Path:
        return self.home / "buckets" / "log-bucket" / f"{self.jobid}.metrics" / name

    def read(self, name: str) -> str:
        return self.metrics_file(name).read_text()

    def postrun(self) -> dict:
        return json.loads(self.api.log(job_id=self.jobid, postrunjson=True))

    def hours(self) -> float:
        job = self.postrun()["Job"]
        elapsed = protocol.parse_stamp(job["end_time"]) - protocol.parse_stamp(job["start_time"])
        return elapsed.total_seconds() / 3600


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Job]:
    """The job, run and plotted once, with a local price table in its TIBANNA_HOME."""
    home = tmp_path_factory.mktemp("metrics-e2e") / "tibanna-home"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TIBANNA_HOME", str(home))
        write_prices(home)
        api = API()
        jobid = api.run_workflow(description(), open_browser=False)["jobid"]
        assert wait_done(api, jobid, timeout=60) == "SUCCEEDED", api.log(job_id=jobid)
        yield Job(api, home, jobid, api.plot_metrics(jobid, open_browser=False))
        pid_file = home / "supervisor.pid"
        if pid_file.exists():  # it would leave after a quiet spell; end it now, as the `home` fixture does
            try:
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass


def test_plot_metrics_returns_the_report_and_locks_it(job: Job) -> None:
    assert job.url == job.metrics_file("metrics.html").resolve().as_uri()
    for name in FILES:
        assert job.read(name), name
    assert job.metrics_file("lock").exists()


def test_memory_and_cpu_in_the_tsvs(job: Job) -> None:
    one_core = 100 / (os.cpu_count() or 1)  # CPU is a percent of all the machine's CPUs
    report = read_report_tsv(job.read("metrics_report.tsv"))
    assert MEMORY_MIB <= float(report["Maximum_Memory_Used_Mb"]) <= MEMORY_MIB + 60
    # At least a quarter of a core at its peak, even on a busy machine (the CPU time is checked below).
    assert 0.25 * one_core <= float(report["Maximum_CPU_Utilization"]) <= 100.5
    assert report["Instance_Type"] == INSTANCE_TYPE
    minutes = read_metrics_tsv(job.read("metrics.tsv"))
    assert minutes["interval"][0] == 1.0
    assert max(v for v in minutes["max_mem_used_MB"] if v) == float(report["Maximum_Memory_Used_Mb"])
    assert max(v for v in minutes["max_cpu_utilization_percent"] if v) == float(report["Maximum_CPU_Utilization"])


def test_samples_add_up_to_the_cpu_time_burnt(job: Job) -> None:
    """Each sample's CPU is the tree's share of all CPUs since the one before, so summed over time
    it gives back the CPU seconds the job used; memory is the whole tree's."""
    samples = read_samples_tsv(job.read("samples.tsv"))
    assert len(samples) >= 5
    cpus = os.cpu_count() or 1
    cpu_seconds = sum(b.cpu_percent / 100 * cpus * (b.time - a.time) for a, b in itertools.pairwise(samples))
    assert 0.6 * BURN_CPU_SECONDS <= cpu_seconds <= 1.5 * BURN_CPU_SECONDS
    assert max(s.mem_used_bytes for s in samples) >= MEMORY_MIB * MB
    assert all(s.mem_available_bytes > 0 and s.disk_total_bytes > 0 for s in samples)


def test_top_tables_find_the_jobs_own_command(job: Job) -> None:
    command = f'"python3 -c {PROGRAM}"'
    for name in ("top_cpu.tsv", "top_mem.tsv"):
        lines = job.read(name).splitlines()
        header = lines[0].split("\t")
        assert header[0] == "interval" and command in header, header
        assert max(float(line.split("\t")[header.index(command)]) for line in lines[1:]) > 0


def test_every_chart_is_a_real_image(job: Job) -> None:
    page = job.read("metrics.html")
    pngs = embedded_pngs(page)
    assert len(pngs) == 5 == page.count("<img")
    for png in pngs:
        assert_real_png(png)
    assert_self_contained(page)
    assert "% of all CPUs" in page and INSTANCE_TYPE in page


def test_cost_and_estimate_are_price_times_hours(job: Job) -> None:
    expected = PRICE_PER_HOUR * job.hours()
    assert expected > 0
    assert job.api.cost(job.jobid) == pytest.approx(expected)
    assert job.api.cost_estimate(job.jobid) == (pytest.approx(expected), "actual cost")
    assert job.api.cost_estimate(job.jobid, force=True) == (pytest.approx(expected), "immediate estimate")
    report = read_report_tsv(job.read("metrics_report.tsv"))  # the plot asked for the estimate
    assert float(report["Estimated_Cost"]) == pytest.approx(expected)


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed")
def test_chromium_renders_the_report_without_console_errors(job: Job, tmp_path: Path) -> None:
    run = chromium(job.metrics_file("metrics.html"), tmp_path / "profile", "--dump-dom")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Tibanna Metrics" in run.stdout and run.stdout.count("<img") == 5
    assert console_errors(run.stderr) == []


def test_lock_force_upload_and_update_html_only(job: Job) -> None:
    page = job.read("metrics.html")
    assert job.api.plot_metrics(job.jobid, open_browser=False) == job.url
    assert job.read("metrics.html") == page  # locked: left alone

    job.metrics_file("metrics.tsv").write_text("sentinel")
    job.api.plot_metrics(job.jobid, open_browser=False, force_upload=True)
    assert job.read("metrics.tsv").startswith("interval\t")
    replotted = job.read("metrics.html")

    cost = job.api.cost(job.jobid, update_tsv=True)
    tsvs = {name: job.read(name) for name in FILES[:4]}
    job.api.plot_metrics(job.jobid, open_browser=False, update_html_only=True)
    assert job.read("metrics.html") == replotted  # still locked
    job.api.plot_metrics(job.jobid, open_browser=False, update_html_only=True, force_upload=True)
    page = job.read("metrics.html")
    cost_row = f"<td>Cost (USD)</td><td class=num>${cost:.5f}</td>"
    assert cost_row in page and cost_row not in replotted
    assert {name: job.read(name) for name in FILES[:4]} == tsvs
    assert embedded_pngs(page) == embedded_pngs(replotted)  # the same charts, from the stored files alone


def test_a_one_second_job_is_sampled_from_its_start(api: API, home: Path) -> None:
    """With the default interval (1 s on local) the first samples come at 0.25 s and 0.75 s."""
    jobid = api.run_workflow(shell_job("sleep 1"), open_browser=False)["jobid"]
    assert wait_done(api, jobid) == "SUCCEEDED"
    text = (home / "buckets" / "log-bucket" / f"{jobid}.metrics" / "samples.tsv").read_text()
    during = read_samples_tsv(text)[:-1]  # the last is taken after the command ended
    assert len(during) >= 2 and all(s.mem_used_bytes > 0 for s in during)


def test_estimate_before_a_run_is_price_times_hours(api: API, home: Path) -> None:
    write_prices(home)
    assert api.cost_estimate(input_json=description(), hours=2) == (pytest.approx(2 * PRICE_PER_HOUR),
                                                                     "immediate estimate")
