"""A job's worker: a process forked by the supervisor, leading its own session, that runs the agent."""
from __future__ import annotations

import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

from tibanna import secret_env
from tibanna.backends.local.home import Home
from tibanna.backends.local.index import Index
from tibanna.backends.local.processes import JOB_TOKEN_VAR, job_token
from tibanna.storage import LocalStore


@dataclass
class Worker:
    """A running job's worker process: a child of this supervisor, or adopted from a dead one."""

    jobid: str
    pid: int
    created: float | None
    sfn: str
    adopted: bool = False


def fork_worker(index: Index, store: LocalStore, home: Home, jobid: str, sfn: str,
                close_fd: int | None = None) -> Worker:
    """Fork the worker of a started job; it runs the agent only once the index names it, so a
    supervisor that dies in between leaves a job that is queued again, never one that runs twice.
    `close_fd` (the supervisor's lock) is closed in the worker, which must not hold it."""
    workdir = home.workdir(jobid)
    workdir.mkdir(parents=True, exist_ok=True)
    log_bucket = index.row(jobid)["log_bucket"]
    go_r, go_w = os.pipe()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        if close_fd is not None:
            os.close(close_fd)
        os.close(go_w)
        os.close(ready_r)
        _worker(go_r, ready_w, store, jobid, log_bucket, workdir, home)
    os.close(go_r)
    os.close(ready_w)
    os.read(ready_r, 1)  # the worker leads its own session now, so its session id is its pid
    os.close(ready_r)
    created = psutil.Process(pid).create_time()
    index.record_worker(jobid, pid, created)
    os.write(go_w, b"1")
    os.close(go_w)
    return Worker(jobid, pid, created, sfn)


def _worker(go_fd: int, ready_fd: int, store: LocalStore, jobid: str, log_bucket: str, workdir: Path,
            home: Home) -> None:
    """The forked worker: lead a new session, wait until the index names it, run the agent; never returns."""
    code = 1
    try:
        os.setsid()
        os.environ[JOB_TOKEN_VAR] = job_token(jobid, os.getpid())
        os.write(ready_fd, b"r")
        os.close(ready_fd)
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        if os.read(go_fd, 1) != b"1":  # the supervisor died before recording us: do nothing
            os._exit(1)
        os.close(go_fd)
        out = os.open(workdir / "agent.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True)
        from tibanna.agent import run_job

        secrets = secret_env.Vault.for_home(home.root).read(jobid)
        code = run_job(store, jobid, log_bucket, workdir, secrets=secrets)
    except BaseException:  # noqa: BLE001 - a worker must always end through os._exit
        logging.getLogger(__name__).exception("worker for %s crashed", jobid)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
