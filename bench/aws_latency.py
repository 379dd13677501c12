"""How long after a job's terminal marker its execution is terminal: ours (callback) against
upstream 6.1.0's rule (polling check_task_awsem every IntervalSeconds).

20 jobs of 1-30 s (simulated durations, and boots of 60-180 s, on the player's fake clock) run
through the deployed state machine, played in-process against a moto server on loopback as
Step Functions plays it (tests/backends/aws/aws_harness.py); each job's agent really runs and calls back.
Ours: real time from the `.success` PutObject to the execution being closed. Upstream: its
first check runs as the instance is launched and then every IntervalSeconds, read from the
upstream package's step function definition in this run (`pip download tibanna==6.1.0
--no-deps`), else its documented 300 s (the script says which).
Then, where a private dockerd and a mount namespace can run (root), jobs of 1-30 s run for real
on loopback instances (tests/backends/aws/loopback.py: the launched user data against moto, a fake
IMDSv2 and a real docker daemon) through the played state machine: their boot to command with its
parts, and the wall-clock delay from the agent's terminal marker to the execution being terminal.
Run: .venv/bin/python bench/aws_latency.py
"""
from __future__ import annotations

import datetime as dt
import math
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "backends" / "aws"), str(ROOT / "tests")]
JOBS, SEED = 20, 15
LOOPBACK_SECONDS = (1, 8, 15, 23, 30)  # jobs run for real on loopback instances
DOCUMENTED_INTERVAL = 300


def upstream_interval() -> tuple[int, str]:
    """upstream 6.1.0's StillRunningException retry interval, and where it was read."""
    with tempfile.TemporaryDirectory() as tmp:
        for pip in ([sys.executable, "-m", "pip"], ["pip3"], ["pip"]):
            try:
                done = subprocess.run([*pip, "download", "-q", "tibanna==6.1.0", "--no-deps", "-d", tmp],
                                      capture_output=True, text=True, timeout=120)
            except (OSError, subprocess.TimeoutExpired):
                continue
            wheels = list(Path(tmp).glob("tibanna-6.1.0*.whl"))
            if done.returncode == 0 and wheels:
                with zipfile.ZipFile(wheels[0]) as wheel:
                    source = wheel.read("tibanna/stepfunction.py").decode()
                found = re.search(r'"StillRunningException"\s*\]\s*,\s*"IntervalSeconds"\s*:\s*(\d+)', source)
                if found:
                    return int(found.group(1)), f"read from {wheels[0].name}: tibanna/stepfunction.py"
    return DOCUMENTED_INTERVAL, "upstream package not reachable: the documented 300 s rule"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    interval, source = upstream_interval()
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    work = Path(tempfile.mkdtemp(prefix="tibanna-latency-"))
    os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="testing",
                      AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1", HOME=str(work))
    for name in ("AWS_PROFILE", "AWS_REGION", "TIBANNA_AWS_REGION", "TIBANNA_DEFAULT_STEP_FUNCTION_NAME"):
        os.environ.pop(name, None)
    import logging

    logging.disable(logging.WARNING)
    import boto3

    from aws_harness import Player, agent_bundle
    from conftest import BUCKETS, aws_shell_job
    from tibanna.core import API

    try:
        for bucket in BUCKETS:
            boto3.client("s3").create_bucket(Bucket=bucket)
        api = API(backend="aws")
        sfn = api.deploy_unicorn(buckets=",".join(BUCKETS), usergroup="bench", no_setenv=True, quiet=True)
        player = Player(api.backend, agent_bundle(work), work / "instances")
        marked: dict[str, float] = {}

        def marker(params: dict, **_: object) -> None:
            key = params.get("Key", "")
            if key.endswith((".success", ".error")):
                marked[key.split(".")[0]] = time.monotonic()

        api.backend.clients("s3").meta.events.register("before-parameter-build.s3.PutObject", marker)
        rng = random.Random(SEED)
        ours, theirs = [], []
        for i in range(JOBS):
            duration = 1 + round(29 * i / (JOBS - 1))
            boot = rng.uniform(60, 180)
            submitted = api.run_workflow(aws_shell_job("true"), sfn=sfn, open_browser=False)

            def job(state: str, payload: dict) -> None:
                player.offset += dt.timedelta(seconds=boot + duration)
                player.run_agent(payload)

            outcome = player.play(submitted["_tibanna"]["exec_arn"], on_wait=job)
            assert outcome.status == "SUCCEEDED", outcome
            ours.append(player.closed_at - marked[submitted["jobid"]])
            ended = boot + duration  # since the launch, when upstream's first check runs
            theirs.append(interval * math.ceil(ended / interval) - ended)
        boots = loopback_jobs(api, player, sfn, f"http://127.0.0.1:{port}", work)
    finally:
        server.stop()
    ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
    print(f"terminal marker -> execution terminal, {JOBS} jobs of 1-30 s (boots 60-180 s, fake clock)")
    print(f"  upstream 6.1.0 interval: {interval} s ({source})")
    print(f"  ours (callback):     median {ours_median:8.3f} s   max {max(ours):8.3f} s")
    print(f"  upstream (polling):  median {theirs_median:8.3f} s   max {max(theirs):8.3f} s")
    ratio = theirs_median / ours_median if ours_median else float("inf")
    print(f"  ours median < 5 s: {'yes' if ours_median < 5 else 'NO'}; "
          f"{ratio:.0f}x faster than upstream's median (target 30x): {'yes' if ratio >= 30 else 'NO'}")
    if isinstance(boots, str):
        print(f"  loopback instances: not run ({boots})")
        return
    print(f"{len(boots)} jobs of {', '.join(map(str, LOOPBACK_SECONDS))} s on loopback instances (the launched user "
          "data, real docker; medians):")
    for part in boots[0]:
        print(f"  {part:>24}: {statistics.median(b[part] for b in boots):6.2f} s   max {max(b[part] for b in boots):6.2f} s")


def loopback_jobs(api, player, sfn: str, endpoint: str, work: Path) -> list[dict[str, float]] | str:
    """Jobs of LOOPBACK_SECONDS on loopback instances, played through the state machine: each
    one's boot-to-command parts and `ended -> terminal` (its agent's callback reaching the played
    execution, wall clock), or why they cannot run here."""
    import boto3

    from conftest import aws_shell_job
    from dockerd import unavailable_reason
    from jobhelpers import wait_for
    from loopback import FakeIMDS, Instance

    reason = unavailable_reason()
    if reason:
        return reason
    imds, found = FakeIMDS(), []
    try:
        for i, seconds in enumerate(LOOPBACK_SECONDS):
            submitted = api.run_workflow(aws_shell_job(f"sleep {seconds}"), sfn=sfn, open_browser=False)
            machines = []

            def boot(state: str, payload: dict) -> None:
                """The instance boots; the execution goes on once its agent called back."""
                machine = Instance(boto3.client("ec2"), payload["config"]["instance_id"], endpoint, imds,
                                   work / f"loopback{i}").start()
                machines.append(machine)
                wait_for(lambda: player.answered() or machine.process.poll() is not None, timeout=300,
                         interval=0.01)

            outcome = player.play(submitted["_tibanna"]["exec_arn"], on_wait=boot)
            machine = machines[0]
            if machine.wait() != 0 or outcome.status != "SUCCEEDED":
                return f"a loopback job failed ({outcome.status}): {machine.bootstrap_log[-500:]}"
            found.append({**machine.boot_to_command(),
                          "ended -> terminal": player.closed_at_epoch - machine.stamps()["ended"]})
    finally:
        imds.close()
    return found


if __name__ == "__main__":
    main()
