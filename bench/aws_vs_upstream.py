"""Side by side on one moto server: upstream tibanna 6.1.0 against this project's AWS backend.

(a) run_batch_workflows of 200 jobs: upstream with sleep=0, and with its default pause (3 s)
    measured on 10 jobs and extrapolated to 200; ours with its default (no pause).
(b) stat over 1,000 and 5,000 executions of one step function (the same executions for both).
Prints wall time and AWS API calls for each, and the ratios against the issue's targets.
Upstream is installed by this script into its own venv (TIBANNA_UPSTREAM_VENV, default
/tmp/tibanna-upstream-venv) and runs in a subprocess; both sides count calls the same way, by
wrapping botocore's BaseClient._make_api_call (one count per API call, retries not counted).
Run: .venv/bin/python bench/aws_vs_upstream.py
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

UPSTREAM_VERSION = "6.1.0"
VENV = Path(os.environ.get("TIBANNA_UPSTREAM_VENV", "/tmp/tibanna-upstream-venv"))
BUCKETS = ("bench-logs", "bench-out")
BATCH = 200
PAUSED_SAMPLE = 10
STAT_SIZES = (1000, 5000)

COUNTING = '''
import botocore.client, collections, time
CALLS = collections.Counter()
_original = botocore.client.BaseClient._make_api_call
def _counted(self, operation, params):
    CALLS[self.meta.service_model.service_id.hyphenize() + "." + operation] += 1
    return _original(self, operation, params)
botocore.client.BaseClient._make_api_call = _counted
'''

# Runs in upstream's venv: `upstream.py setup|submit|stat ...`; prints one JSON line.
UPSTREAM = COUNTING + '''
import contextlib, io, json, sys
from tibanna.core import API
mode = sys.argv[1]
api = API()
if mode == "setup":
    api.create_stepfunction("bench", usergroup="")
    print(json.dumps({"sfn": "tibanna_unicorn_bench"}))
elif mode == "submit":
    sfn, n, sleep = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    jobs = [json.loads(sys.argv[5]) for _ in range(n)]
    CALLS.clear()
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        api.run_batch_workflows(jobs, sfn=sfn, sleep=sleep, verbose=False, open_browser=False)
    print(json.dumps({"seconds": time.perf_counter() - start, "calls": sum(CALLS.values()), "by_op": CALLS}))
elif mode == "stat":
    sfn = sys.argv[2]
    CALLS.clear()
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()) as out:
        api.stat(sfn=sfn)
    rows = len(out.getvalue().splitlines()) - 1
    print(json.dumps({"seconds": time.perf_counter() - start, "calls": sum(CALLS.values()), "by_op": CALLS,
                      "rows": rows}))
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def job() -> dict:
    """The same shell job for both: upstream's fields, sized by instance type."""
    return {"args": {"language": "shell", "container_image": "ubuntu:20.04", "command": "echo hello",
                     "output_S3_bucket": BUCKETS[1]},
            "config": {"log_bucket": BUCKETS[0], "instance_type": "t3.micro", "ebs_size": 10}}


def ensure_upstream() -> Path:
    """Upstream tibanna in its own venv (made with python -m venv and pip, once)."""
    python = VENV / "bin" / "python"
    check = [str(python), "-c", f"import importlib.metadata as m; assert m.version('tibanna') == '{UPSTREAM_VERSION}'"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    print(f"installing tibanna=={UPSTREAM_VERSION} into {VENV} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    f"tibanna=={UPSTREAM_VERSION}"], check=True)
    return python


def upstream(python: Path, env: dict, *args: str) -> dict:
    script = Path(tempfile.gettempdir()) / "tibanna_upstream_bench.py"
    script.write_text(UPSTREAM)
    done = subprocess.run([str(python), str(script), *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"upstream {args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def counted(action) -> dict:
    """Wall time and API calls of `action()` in this process."""
    CALLS.clear()
    start = time.perf_counter()
    result = action()
    return {"seconds": time.perf_counter() - start, "calls": sum(CALLS.values()), "by_op": dict(CALLS),
            "result": result}


def line(label: str, figures: dict, unit: str = "") -> None:
    print(f"  {label:<42} {figures['seconds']:8.2f} s  {figures['calls']:7d} API calls{unit}", flush=True)


def main() -> None:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION="us-east-1", TIBANNA_AWS_REGION="us-east-1", AWS_ACCOUNT_NUMBER="123456789012",
               HOME=tempfile.mkdtemp(prefix="tibanna-bench-home-"))
    env.pop("TIBANNA_DEFAULT_STEP_FUNCTION_NAME", None)
    python = ensure_upstream()
    server = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        os.environ.update({k: env[k] for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                               "AWS_DEFAULT_REGION", "AWS_ACCOUNT_NUMBER", "HOME")})
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        run(python, env)
    finally:
        server.terminate()
        server.wait()


def run(python: Path, env: dict) -> None:
    import boto3

    from tibanna.core import API

    s3 = boto3.client("s3")
    for bucket in BUCKETS:
        s3.create_bucket(Bucket=bucket)
    api = API(backend="aws")
    ours_sfn = api.deploy_unicorn(buckets=",".join(BUCKETS), usergroup="ours", no_setenv=True, quiet=True)
    up_sfn = upstream(python, env, "setup")["sfn"]
    description = json.dumps(job())

    print(f"(a) run_batch_workflows, {BATCH} jobs", flush=True)
    up_fast = upstream(python, env, "submit", up_sfn, str(BATCH), "0", description)
    up_paused = upstream(python, env, "submit", up_sfn, str(PAUSED_SAMPLE), "3", description)
    ours = counted(lambda: api.run_batch_workflows([job() for _ in range(BATCH)], sfn=ours_sfn, verbose=False))
    line("upstream, sleep=0", up_fast)
    paused_total = up_paused["seconds"] * BATCH / PAUSED_SAMPLE
    print(f"  {'upstream, default pause (10 jobs, x20)':<42} {paused_total:8.2f} s  "
          f"{up_paused['calls'] * BATCH // PAUSED_SAMPLE:7d} API calls (extrapolated)")
    line("ours (no pause)", ours)
    fast_rate, ours_rate = BATCH / up_fast["seconds"], BATCH / ours["seconds"]
    print(f"  submissions/s: upstream sleep=0 {fast_rate:.1f}, upstream default {BATCH / paused_total:.2f}, "
          f"ours {ours_rate:.1f}; ours / upstream sleep=0 = {ours_rate / fast_rate:.2f}x (target >= 3x); "
          f"calls per submission: upstream {up_fast['calls'] / BATCH:.2f}, ours {ours['calls'] / BATCH:.2f}")

    print("(b) stat over one step function's executions", flush=True)
    submitted = BATCH
    for size in STAT_SIZES:
        while submitted < size:
            chunk = min(1000, size - submitted)
            api.run_batch_workflows([job() for _ in range(chunk)], sfn=ours_sfn, verbose=False)
            submitted += chunk
        up = upstream(python, env, "stat", ours_sfn)
        mine = counted(lambda: api.stat(sfn=ours_sfn))
        mine_long = counted(lambda: api.stat(sfn=ours_sfn, verbose=True))
        assert len(mine["result"]) == size == up["rows"], (len(mine["result"]), size, up["rows"])
        line(f"upstream stat, {size} executions", up)
        line(f"ours stat, {size} executions", mine)
        line(f"ours stat -v (long columns), {size} executions", mine_long)
        print(f"  at {size}: ours is {up['seconds'] / mine['seconds']:.1f}x faster (target >= 10x at 1,000) with "
              f"{up['calls'] / max(mine['calls'], 1):.0f}x fewer API calls (target >= 20x); ours by call: "
              f"{mine['by_op']}", flush=True)


exec(COUNTING)  # the same call counter in this process (defines CALLS)

if __name__ == "__main__":
    main()
