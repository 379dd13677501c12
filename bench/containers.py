"""Container jobs (issue: containers). Starts its own private dockerd (tests/dockerd.py), as the tests do.

(a) the agent's cost per container job: `run_job` of a shell job `true` in a local image, against
    a bare `docker run --rm <image> true` measured in the same run (target: the agent adds < 0.3 s);
    the same job on the host is shown for reference;
(b) one such job through the local backend, from run_workflow to SUCCEEDED visible;
(c) jobs per second through the local backend with docker as the runtime (40 jobs, cpu 1 each).
Run (as root, with docker.io and busybox-static installed): .venv/bin/python bench/containers.py
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from dockerd import DockerDaemon, DockerUnavailable  # noqa: E402

RUNS = 15
BATCH = 40
TARGET = 0.3  # seconds the agent may add to docker's own cost


def description(command: str = "true") -> dict:
    return {"args": {"language": "shell", "container_image": "ubuntu:20.04", "command": command,
                     "output_S3_bucket": "bench-out"},
            "config": {"log_bucket": "bench-logs", "cpu": 1, "mem": 0.5}}


def median_seconds(action, runs: int = RUNS) -> float:
    return statistics.median(timed(action) for _ in range(runs))


def agent_runner(root: Path, runtime: str):
    """A function that runs one trivial job with `run_job` and `runtime` ('docker' or 'none')."""
    from tibanna import jobspec, protocol
    from tibanna.agent import AgentDefaults, run_job
    from tibanna.storage import LocalStore

    store = LocalStore(root / f"buckets-{runtime}")
    counter = iter(range(10**6))

    def once() -> None:
        jobid = f"bench{runtime}{next(counter)}"
        parsed = jobspec.parse(description(), jobid=jobid)
        store.put_bytes("bench-logs", protocol.key(jobid, protocol.RUN_JSON),
                        protocol.dump_json(protocol.build_run_json(parsed)))
        code = run_job(store, jobid, "bench-logs", root / "work" / jobid,
                       defaults=AgentDefaults(container_runtime=runtime))
        if code != 0:
            raise SystemExit(f"job {jobid} failed: {store.get_text('bench-logs', protocol.key(jobid, protocol.LOG))}")

    once()  # warm-up: imports, the daemon probe
    return once


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def through_backend(api) -> tuple[float, float]:
    """(one job's submit-to-SUCCEEDED median, jobs/s for a batch of BATCH)."""
    def one() -> None:
        jobid = api.run_workflow(description(), verbose=False)["jobid"]
        while api.check_status(job_id=jobid) == "RUNNING":
            time.sleep(0.005)
        if api.check_status(job_id=jobid) != "SUCCEEDED":
            raise SystemExit(api.log(job_id=jobid))

    one()  # starts the supervisor
    latency = median_seconds(one, runs=8)
    start = time.perf_counter()
    jobids = [r["jobid"] for r in api.run_batch_workflows([description() for _ in range(BATCH)], verbose=False)]
    pending = set(jobids)
    while pending:
        pending -= {r["jobid"] for r in api.stat(job_ids=list(pending)) if r["status"] != "RUNNING"}
        time.sleep(0.02)
    rate = BATCH / (time.perf_counter() - start)
    failed = [j for j in jobids if api.check_status(job_id=j) != "SUCCEEDED"]
    if failed:
        raise SystemExit(f"{len(failed)} batch jobs failed, e.g. {api.log(job_id=failed[0])}")
    return latency, rate


def main() -> None:
    try:
        daemon = DockerDaemon().start()
    except DockerUnavailable as err:
        raise SystemExit(f"cannot run: {err}") from None
    root = Path(tempfile.mkdtemp(prefix="tibanna-bench-containers-"))
    try:
        daemon.build_busybox_image()
        daemon.tag("ubuntu:20.04")
        os.environ.update(DOCKER_HOST=daemon.host, TIBANNA_HOME=str(root / "home"), TIBANNA_CONTAINER_RUNTIME="docker")
        os.environ.pop("TIBANNA_DEFAULT_STEP_FUNCTION_NAME", None)
        def bare_run() -> None:
            subprocess.run(["docker", "run", "--rm", "ubuntu:20.04", "true"], check=True, env=daemon.env,
                           capture_output=True)

        in_docker_job, on_host_job = agent_runner(root, "docker"), agent_runner(root, "none")
        pairs = [(timed(bare_run), timed(in_docker_job)) for _ in range(RUNS)]  # interleaved: same load for both
        bare = statistics.median(b for b, _ in pairs)
        in_docker = statistics.median(a for _, a in pairs)
        added = statistics.median(a - b for b, a in pairs)
        on_host = median_seconds(on_host_job)
        print(f"(a) bare `docker run --rm <image> true`: {bare:.3f} s (median of {RUNS}, interleaved with the jobs)")
        print(f"    agent job in docker:                {in_docker:.3f} s -> the agent adds {added:.3f} s "
              f"(median of the pairs' differences; target < {TARGET} s: {'met' if added < TARGET else 'NOT met'})")
        print(f"    the same job on the host:           {on_host:.3f} s (the agent's own cost, no container)")
        from tibanna.core import API

        latency, rate = through_backend(API())
        print(f"(b) local backend, one container job submit -> SUCCEEDED: {latency:.3f} s "
              f"({latency - bare:.3f} s over bare docker)")
        print(f"(c) local backend, {BATCH} container jobs: {rate:.2f} jobs/s on {os.cpu_count()} cores")
    finally:
        pid_file = root / "home" / "supervisor.pid"
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text()), 9)
            except (ProcessLookupError, ValueError):
                pass
        daemon.stop()
        subprocess.run(["rm", "-rf", str(root)], check=False)


if __name__ == "__main__":
    main()
