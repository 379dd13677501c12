"""SIGTERM (what the backend's kill sends): the command's tree ends, the agent exits 1, no marker."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil
import pytest

from agent_helpers import LOG_BUCKET, Runs, describe
from tibanna import protocol
from tibanna.agent.__main__ import parse_store


def _wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_sigterm_stops_the_tree_and_writes_no_marker(runs: Runs) -> None:
    jobid = runs.submit(describe("sleep 300 & sleep 301; wait"))
    agent = subprocess.Popen([sys.executable, "-m", "tibanna.agent", "--jobid", jobid, "--log-bucket", LOG_BUCKET,
                              "--workdir", str(runs.workdir(jobid)), "--store", f"local:{runs.store.root}",
                              "--container-runtime", "none"])
    try:
        def sleeping() -> list[psutil.Process]:
            return [p for p in psutil.Process(agent.pid).children(recursive=True) if p.name() == "sleep"]
        sleepers = _wait_for(lambda: len(found := sleeping()) == 2 and found)
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=20) == 1
    finally:
        if agent.poll() is None:
            agent.kill()
    gone, alive = psutil.wait_procs(sleepers, timeout=5)
    assert not alive
    assert runs.markers(jobid) == []
    assert runs.store.exists(LOG_BUCKET, protocol.key(jobid, protocol.JOB_STARTED))
    assert "terminated (SIGTERM)" in runs.log(jobid, protocol.LOG)


def test_store_option() -> None:
    assert parse_store("local:/tmp/buckets").root.as_posix() == "/tmp/buckets"
    with pytest.raises(Exception, match="local:"):
        parse_store("gcs:my-bucket")
