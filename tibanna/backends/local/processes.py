"""Finding and ending the processes of a job's run, including those a lost worker left behind.

Every process a worker starts carries the run's token in its environment and, unless it moved
away, the worker's session id; a process started before the worker never counts, so a reused
pid is never mistaken for the job's.
"""
from __future__ import annotations

import contextlib
import logging
import os

import psutil

log = logging.getLogger(__name__)

JOB_TOKEN_VAR = "TIBANNA_JOB_TOKEN"  # in every process a worker starts, so strays can be found


def job_token(jobid: str, worker_pid: int) -> str:
    """What a job's processes carry in JOB_TOKEN_VAR: unique to one run of one job."""
    return f"{jobid}:{worker_pid}"


def worker_alive(pid: int | None, created: float | None) -> bool:
    """Whether the worker with this pid and start time still runs (a zombie counts as ended)."""
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if created is not None and abs(proc.create_time() - created) > 0.01:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def job_processes(jobid: str, pid: int, created: float | None, thorough: bool) -> list[psutil.Process]:
    """The live processes of a job's run: its worker, the worker's session (which outlives a killed
    worker) and, when `thorough`, any process that carries the run's token (a command that left the
    session). Only processes started after the worker count, so a reused pid is never mistaken."""
    since = (created or 0.0) - 0.01
    token = job_token(jobid, pid).encode()
    found: list[psutil.Process] = []
    for candidate in psutil.pids():
        try:
            ours = os.getsid(candidate) == pid
            if not ours and thorough:
                with open(f"/proc/{candidate}/environ", "rb") as handle:
                    ours = JOB_TOKEN_VAR.encode() + b"=" + token in handle.read().split(b"\0")
            if ours:
                proc = psutil.Process(candidate)
                if proc.create_time() >= since and proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc)
        except (OSError, psutil.Error):
            continue
    return found


def end_job_processes(jobid: str, pid: int | None, created: float | None, thorough: bool = True,
                      timeout: float = 10.0) -> None:
    """SIGKILL every process of a job's run (see job_processes), then wait until none is left."""
    if not pid:
        return
    procs = job_processes(jobid, pid, created, thorough)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    gone, alive = psutil.wait_procs(procs, timeout=timeout)
    if alive:
        log.warning("job %s: %d process(es) did not end after SIGKILL", jobid, len(alive))
