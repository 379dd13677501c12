"""The supervisor's time on a fake clock: how long an ended job's folder is kept, when it exits idle.

The supervisor is the real one, in this process, with its index; no job runs (the rows are
written as a job's life would leave them), so no worker is forked.
"""
from __future__ import annotations

import fcntl
import json

import pytest

from tibanna.backends.local.home import Home
from tibanna.backends.local.index import Index
from tibanna.backends.local.launcher import try_lock
from tibanna.backends.local.supervisor import IDLE_EXIT_SECONDS, Supervisor
from tibanna.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def supervisor(home, clock) -> Supervisor:
    return Supervisor(Home(home), clock=clock)


def add_job(index: Index, jobid: str, phase: str, shutdown_min: int | str = "now") -> None:
    """An index row in `phase`, its description with `shutdown_min`; `done` rows end now."""
    description = {"config": {"log_bucket": "log-bucket", "shutdown_min": shutdown_min}, "args": {}}
    with index.transaction() as conn:
        index.insert_job(conn, {
            "jobid": jobid, "sfn": "tibanna_unicorn", "run_name": jobid, "exec_arn": f"arn:{jobid}",
            "log_bucket": "log-bucket", "status": "RUNNING", "phase": "running" if phase == "done" else phase,
            "submitted": index.clock.now(), "cpu": 1, "mem": 1, "description": json.dumps(description),
            "result": "{}"})
    if phase == "done":
        index.finish(jobid, "SUCCEEDED", None, None)


def test_an_ended_jobs_folder_is_kept_for_its_shutdown_min_then_removed(supervisor, clock):
    for jobid, minutes in (("kept", 5), ("freed", "now")):
        add_job(supervisor.index, jobid, "done", minutes)
        supervisor.home.workdir(jobid).mkdir(parents=True)
    supervisor.sweep_job_folders()
    assert [p.name for p in supervisor.home.jobs.iterdir()] == ["kept"]
    clock.sleep(5 * 60 - 1)
    supervisor.sweep_job_folders()
    assert supervisor.home.workdir("kept").is_dir()
    clock.sleep(2)
    supervisor.sweep_job_folders()
    assert not supervisor.home.workdir("kept").exists()


def test_the_folder_of_an_active_job_or_of_no_known_job(supervisor, clock):
    add_job(supervisor.index, "active", "finalizing")
    for jobid in ("active", "stray"):
        supervisor.home.workdir(jobid).mkdir(parents=True)
    supervisor.sweep_job_folders()
    assert [p.name for p in supervisor.home.jobs.iterdir()] == ["active"]


def test_it_exits_after_a_quiet_spell_releasing_its_lock_and_not_while_a_job_is_active(supervisor, clock, home):
    with open(Home(home).lock, "a") as lock:
        assert try_lock(lock)
        add_job(supervisor.index, "ending", "finalizing")
        clock.sleep(IDLE_EXIT_SECONDS + 1)
        assert supervisor.tick(lock)  # a job is still active: no quiet spell yet
        supervisor.index.finish("ending", "SUCCEEDED", None, None)
        clock.sleep(IDLE_EXIT_SECONDS / 2)
        assert supervisor.tick(lock)
        clock.sleep(IDLE_EXIT_SECONDS / 2 + 0.5)
        assert not supervisor.tick(lock)  # quiet for longer than the spell: exit
        with open(Home(home).lock, "a") as other:
            assert try_lock(other)  # a new supervisor can start at once
            fcntl.flock(other, fcntl.LOCK_UN)
