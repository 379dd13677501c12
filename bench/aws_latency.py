"""How long after a job's terminal marker its execution is terminal: ours (callback) against
upstream 6.1.0's rule (polling check_task_awsem every IntervalSeconds).

20 jobs of 1-30 s (simulated durations, and boots of 60-180 s, on the player's fake clock) run
through the deployed state machine, played in-process against a moto server on loopback as
Step Functions plays it (tests/backends/aws/aws_harness.py); each job's agent really runs and calls back.
Ours: real time from the `.success` PutObject to the execution being closed. Upstream: its
first check runs as the instance is launched and then every IntervalSeconds, read from the
upstream package's step function definition in this run (`pip download tibanna==6.1.0
--no-deps`), else its documented 300 s (the script says which).
Then, where a private dockerd and a mount namespace can run (root), BOOTS jobs run on loopback
instances (tests/backends/aws/loopback.py: the launched user data against moto, a fake IMDSv2 and a real
docker daemon), and the boot-to-command time and its parts are printed (median of the boots).
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
JOBS, SEED, BOOTS = 20, 15, 3
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
        boots = boot_to_command(api, player, sfn, f"http://127.0.0.1:{port}", work)
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
        print(f"  boot to command: not measured ({boots})")
        return
    print(f"boot to command on a loopback instance (user data as launched; median of {BOOTS} boots):")
    for part in boots[0]:
        print(f"  {part:>24}: {statistics.median(b[part] for b in boots):6.2f} s")


def boot_to_command(api, player, sfn: str, endpoint: str, work: Path) -> list[dict[str, float]] | str:
    """Boot BOOTS loopback instances of a container job; their boot-to-command parts, or why not."""
    import json

    import boto3

    from conftest import aws_shell_job
    from dockerd import unavailable_reason
    from loopback import FakeIMDS, Instance
    from tibanna.backends.aws import names
    from tibanna.backends.aws.lambdas import run_task_awsem

    reason = unavailable_reason()
    if reason:
        return reason
    functions = api.backend.clients("lambda").list_functions()["Functions"]
    run_task = next(f["FunctionName"] for f in functions if f["FunctionName"].startswith(names.RUN_TASK))
    os.environ.update(player.lambda_env(run_task))
    imds, found = FakeIMDS(), []
    try:
        for i in range(BOOTS):
            started = api.run_workflow(aws_shell_job("echo hello"), sfn=sfn, open_browser=False)
            execution = api.backend.sfn.describe_execution(executionArn=started["_tibanna"]["exec_arn"])
            payload = run_task_awsem.run_task(json.loads(execution["input"]), api.backend)
            machine = Instance(boto3.client("ec2"), payload["config"]["instance_id"], endpoint, imds,
                               work / f"boot{i}")
            if machine.boot() != 0:
                return f"the loopback instance failed: {machine.bootstrap_log[-500:]}"
            found.append(machine.boot_to_command())
    finally:
        imds.close()
    return found


if __name__ == "__main__":
    main()
