"""The `.top` snapshots, `.top_latest`, samples.tsv and the postrun Metrics of a running job."""
from __future__ import annotations

import re

import pytest

from agent_helpers import Runs, describe
from tibanna import protocol
from tibanna.agent.sampling import SampleSummary, human_size
from tibanna.samples import Sample
from tibanna.agent.top import HEADER

BUSY = "python -c 'import time; end = time.time() + 1.2; any(iter(lambda: time.time() > end, True))'"


@pytest.fixture(scope="module")
def busy_job(tmp_path_factory: pytest.TempPathFactory) -> tuple[Runs, str]:
    from tibanna.storage import LocalStore

    tmp = tmp_path_factory.mktemp("busy")
    runs = Runs(LocalStore(tmp / "buckets"), tmp)
    jobid, code = runs.run(describe(f"{BUSY}; sleep 0.3"), metrics_interval=0.2, log_upload_interval=0.3)
    assert code == 0
    return runs, jobid


def test_top_has_upstreams_format_and_the_jobs_command(busy_job: tuple[Runs, str]) -> None:
    runs, jobid = busy_job
    top = runs.log(jobid, protocol.TOP)
    snapshots = top.split("Timestamp: ")[1:]
    assert len(snapshots) >= 3
    first = snapshots[0].split("\n")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d-\d\d:\d\d:\d\d", first[0])
    assert re.fullmatch(r"top - \d\d:\d\d:\d\d up .+, +\d+ users?,  load average: [\d.]+, [\d.]+, [\d.]+", first[1])
    assert re.fullmatch(r"Tasks: +\d+ total, +\d+ running, +\d+ sleeping, +\d+ stopped, +\d+ zombie", first[2])
    assert first[3].startswith("%Cpu(s):") and first[3].endswith(" st")
    assert first[4].startswith("MiB Mem :") and first[5].startswith("MiB Swap:")
    assert first[6] == "" and first[7] == HEADER
    assert snapshots[0].endswith("\n\n")
    rows = [line for line in top.splitlines() if line.endswith(BUSY.replace("'", ""))]
    assert len(rows) >= 3 and all(row.index(" python ") == HEADER.index(" COMMAND") for row in rows)
    pid, user, pr, ni, virt, res, shr, state, cpu, mem, time_plus = rows[-1].split()[:11]
    assert int(pid) > 0 and state in "RSD" and re.fullmatch(r"\d+:\d\d\.\d\d", time_plus)
    assert max(float(row.split()[8]) for row in rows) > 20
    latest = runs.log(jobid, protocol.TOP_LATEST)
    assert latest.startswith("Timestamp: ") and latest.count("Timestamp: ") == 1 and latest in top


def test_samples_tsv_rows(busy_job: tuple[Runs, str]) -> None:
    runs, jobid = busy_job
    lines = runs.log(jobid, protocol.METRICS_SAMPLES).splitlines()
    assert lines[0].split("\t") == ["time", "cpu_percent", "mem_used_bytes", "mem_available_bytes",
                                    "disk_used_bytes", "disk_total_bytes", "read_bytes"]
    rows = [[float(v) for v in line.split("\t")] for line in lines[1:]]
    assert len(rows) >= 4 and all(len(row) == 7 for row in rows)
    assert [row[0] for row in rows] == sorted(row[0] for row in rows)
    assert max(row[1] for row in rows) > 5  # a busy loop shows, even on a loaded machine
    assert max(row[2] for row in rows) > 1_000_000
    assert all(row[3] > 0 and row[5] > 0 and row[4] >= 0 for row in rows)


def test_postrun_metrics_summarise_the_samples(busy_job: tuple[Runs, str]) -> None:
    runs, jobid = busy_job
    metrics = runs.postrun(jobid)["Job"]["Metrics"]
    assert metrics["max_cpu_utilization_percent"] > 5
    assert 0 < metrics["max_mem_used_MB"] < metrics["total_mem_MB"]
    assert 0 < metrics["min_mem_available_MB"] <= metrics["total_mem_MB"]


def test_a_trivial_job_has_one_sample_and_no_top(runs: Runs) -> None:
    jobid, _ = runs.run(describe("true"))
    assert len(runs.log(jobid, protocol.METRICS_SAMPLES).splitlines()) == 2
    assert runs.log(jobid, protocol.TOP) is None


def test_summary_of_samples() -> None:
    summary = SampleSummary()
    for t, cpu, mem, avail, disk, read in ((0, 10, 100, 900, 50, 0), (1, 80, 300, 700, 200, 5000),
                                           (2, 20, 200, 800, 100, 6000)):
        summary.add(Sample(t, cpu, mem, avail, disk, 1000, read))
    metrics = summary.as_metrics(total_mem_bytes=1000)
    assert metrics["max_cpu_utilization_percent"] == 80
    assert metrics["max_mem_utilization_percent"] == 30
    assert metrics["max_disk_space_utilization_percent"] == 20
    assert metrics["max_ebs_read_bytes"] == 5000


@pytest.mark.parametrize("size, text", [(0, "0"), (512, "512"), (1024, "1.0K"), (4096, "4.0K"), (10239, "10K"),
                                        (12 * 1024, "12K"), (1536 * 1024, "1.5M"), (3 * 1024 ** 3, "3.0G")])
def test_human_size_is_du_style(size: int, text: str) -> None:
    assert human_size(size) == text


def test_periodic_uploads_of_big_files_are_paced(tmp_path) -> None:
    from tibanna.agent.joblog import JobLog
    from tibanna.agent.monitor import Monitor
    from tibanna.storage import LocalStore

    store = LocalStore(tmp_path / "buckets")
    monitor = Monitor(store, "logs", "job1", tmp_path / "data1", tmp_path / "agent", JobLog(tmp_path / "job1.log"),
                      metrics_interval=1, upload_interval=0.5)
    monitor.top_path.parent.mkdir(parents=True, exist_ok=True)
    monitor.top_path.write_bytes(b"x" * 3 * 2**20)  # 3 MiB: re-sent at most every 1.5 s when paced
    monitor.upload(paced=True)
    assert store.size("logs", "job1.top") == 3 * 2**20
    with open(monitor.top_path, "ab") as handle:
        handle.write(b"more")
    monitor.upload(paced=True)
    assert store.size("logs", "job1.top") == 3 * 2**20  # too soon for a file this big
    monitor.upload()  # the final upload sends whatever changed
    assert store.size("logs", "job1.top") == 3 * 2**20 + 4
