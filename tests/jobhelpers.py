"""Helpers for tests that run jobs: descriptions, waiting, and scripts for the stub backend."""
from __future__ import annotations

import os
import signal
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import psutil
import pytest

from tibanna.clock import REAL_CLOCK, Clock

if TYPE_CHECKING:
    from tibanna.backends.stub import Script


def kill_supervisor(home: Path) -> None:
    """SIGKILL a TIBANNA_HOME's supervisor, if one started there, so that no test leaves one behind."""
    pid_file = home / "supervisor.pid"
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05, clock: Clock = REAL_CLOCK):
    """Poll until predicate() is truthy; return its value or fail the test. Time is `clock`'s."""
    deadline = clock.now() + timeout
    while clock.now() < deadline:
        value = predicate()
        if value:
            return value
        clock.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def wait_done(api, jobid: str, timeout: float = 30.0) -> str:
    """Wait until a job leaves RUNNING (on its API's clock: a stub's fake one moves at once); return its
    final status."""
    return wait_for(lambda: (s := api.check_status(job_id=jobid)) != "RUNNING" and s, timeout, clock=api.clock)


def by_command(scripts: dict[str, Script]) -> Callable[[dict], Script]:
    """A stub's script per job: the one listed for the job's command (a test names each it submits)."""
    def script(job: dict) -> Script:
        command = job["args"]["command"]
        if command not in scripts:
            raise AssertionError(f"the test scripted no job with command {command!r} (only {sorted(scripts)})")
        return scripts[command]

    return script


def shell_job(command, *, outputs: dict | None = None, inputs: dict | None = None, **args) -> dict:
    """A shell job description with upstream's fields."""
    return {"args": {"language": "shell", "container_image": "ubuntu:20.04", "command": command,
                     "output_S3_bucket": "out-bucket", "input_files": inputs or {},
                     "output_target": outputs or {}, **args},
            "config": {"log_bucket": "log-bucket", "cpu": 1, "mem": 0.1, "ebs_size": 10}}


def processes_with(marker: str) -> list[psutil.Process]:
    """Live processes whose command line contains `marker` (to see that a job left none behind)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(marker in part for part in proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.Error:
            pass
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unavailable(what: str, reason: str) -> None:
    """Skip a test whose component cannot start here, or fail it under CI, where it must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} cannot start under CI: {reason}")
    pytest.skip(f"{what} cannot start here: {reason}")
