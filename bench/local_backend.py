"""Local backend benchmarks (issue: core). Prints each figure beside its baseline and target.

(a) one trivial job (`true`) from run_workflow to SUCCEEDED visible, against `true` as a subprocess;
(b) 1,000 trivial jobs (cpu 1, mem 0.5) through run_batch_workflows: submissions/s, finished jobs/s;
(c) peak memory (PSS) of all the project's processes with 1,000 jobs queued;
(d) stat over 10,000 jobs in the index.
Run: .venv/bin/python bench/local_backend.py
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psutil

HOME = Path(tempfile.mkdtemp(prefix="tibanna-bench-"))
os.environ["TIBANNA_HOME"] = str(HOME)
os.environ.pop("TIBANNA_DEFAULT_STEP_FUNCTION_NAME", None)

from tibanna.core import API  # noqa: E402


def trivial(command: str = "true") -> dict:
    return {"args": {"language": "shell", "container_image": "ubuntu:20.04", "command": command,
                     "output_S3_bucket": "bench-out"},
            "config": {"log_bucket": "bench-logs", "cpu": 1, "mem": 0.5}}


def wait_all(api: API, jobids: list[str], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    pending = set(jobids)
    while pending and time.monotonic() < deadline:
        rows = api.stat(job_ids=list(pending))
        pending -= {r["jobid"] for r in rows if r["status"] != "RUNNING"}
        if pending:
            time.sleep(0.02)
    if pending:
        raise SystemExit(f"{len(pending)} jobs did not finish")


def project_processes() -> list[psutil.Process]:
    """This process, the supervisor and its workers (with their commands)."""
    procs = [psutil.Process()]
    pid_file = HOME / "supervisor.pid"
    if pid_file.exists():
        try:
            sup = psutil.Process(int(pid_file.read_text()))
            procs += [sup] + sup.children(recursive=True)
        except psutil.Error:
            pass
    return procs


def pss_mb() -> float:
    total = 0
    for proc in project_processes():
        try:
            total += proc.memory_full_info().pss
        except psutil.Error:
            pass
    return total / 2**20


def bench_latency(api: API, runs: int = 25) -> None:
    api.run_workflow(trivial(), verbose=False)  # start the supervisor
    time.sleep(0.5)
    ours, base = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        jobid = api.run_workflow(trivial(), verbose=False)["jobid"]
        while api.check_status(job_id=jobid) == "RUNNING":
            time.sleep(0.005)
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run(["true"], check=True)
        base.append(time.perf_counter() - t0)
    med = statistics.median(ours)
    print(f"(a) trivial job submit->SUCCEEDED: median {med:.3f} s (p90 {sorted(ours)[int(runs * .9)]:.3f} s) | "
          f"baseline `true` subprocess: median {statistics.median(base) * 1000:.2f} ms | target <= 0.5 s: "
          f"{'PASS' if med <= 0.5 else 'FAIL'}")


def bench_throughput_and_memory(api: API, n: int = 1000) -> None:
    jobs = [trivial() for _ in range(n)]
    peak = [0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], pss_mb())
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    jobids = [r["jobid"] for r in api.run_batch_workflows(jobs, verbose=False)]
    submit_s = time.perf_counter() - t0
    wait_all(api, jobids)
    total_s = time.perf_counter() - t0
    stop.set()
    sampler.join()
    failed = [r for r in api.stat(job_ids=jobids) if r["status"] != "SUCCEEDED"]
    print(f"(b) {n} trivial jobs: {n / submit_s:.0f} submissions/s (target >= 200: "
          f"{'PASS' if n / submit_s >= 200 else 'FAIL'}), {n / total_s:.1f} finished jobs/s on {os.cpu_count()} "
          f"cores (target >= 20: {'PASS' if n / total_s >= 20 else 'FAIL'}); {len(failed)} not SUCCEEDED")
    print(f"(c) peak PSS of the project's processes with {n} jobs queued/running: {peak[0]:.0f} MB "
          f"(target <= 300 MB: {'PASS' if peak[0] <= 300 else 'FAIL'})")


def bench_stat(api: API, n: int = 10_000) -> None:
    sfn = api.deploy_unicorn(usergroup="paused", buckets="bench-logs,bench-out", concurrency=0, no_setenv=True)
    for start in range(0, n, 2000):
        api.run_batch_workflows([trivial() for _ in range(2000)], sfn=sfn, verbose=False)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        rows = api.stat(sfn=sfn)
        times.append(time.perf_counter() - t0)
    assert len(rows) == n
    med = statistics.median(times)
    print(f"(d) stat over {n} jobs: median {med:.3f} s (target <= 0.2 s: {'PASS' if med <= 0.2 else 'FAIL'})")


if __name__ == "__main__":
    api = API()
    try:
        bench_latency(api)
        bench_throughput_and_memory(api)
        bench_stat(api)
    finally:
        pid_file = HOME / "supervisor.pid"
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text()), 9)
            except ProcessLookupError:
                pass
        shutil.rmtree(HOME, ignore_errors=True)
