"""Ending a job once: its true final state, its marker and postrun JSON, and the client-side kill.

The index's conditional UPDATE (`claim_finalize`) picks the one process that finalizes a job, so
a job never ends twice whoever sees it end first (the supervisor, a killer, a recovery).
"""
from __future__ import annotations

import json
import time

from tibanna import exceptions, protocol, secret_env
from tibanna.agent.container import remove_job_containers
from tibanna.backends.local.home import Home
from tibanna.backends.local.index import Index
from tibanna.backends.local.processes import end_job_processes, worker_alive
from tibanna.storage import LocalStore


def finalize(index: Index, store: LocalStore, jobid: str, from_phases: tuple[str, ...] = ("queued", "running"),
             failure: tuple[str, str] | None = None) -> bool:
    """Give a job whose worker is gone its true final state, once.

    The caller that wins the claim ends whatever the run left running, then decides the status
    from the terminal marker the agent left; with no marker, it writes one, after the postrun JSON
    names the error: `.aborted` after a kill, else `.error` (the worker was lost, or `failure` =
    (error name, cause) says why the job could not run). Returns whether it won.
    """
    if not index.claim_finalize(jobid, from_phases):
        return False
    row = index.row(jobid)
    bucket = row["log_bucket"]
    present = [m for m in protocol.TERMINAL_MARKERS if store.exists(bucket, protocol.key(jobid, m))]
    end_job_processes(jobid, row["worker_pid"], row["worker_created"], thorough=not present)
    remove_job_containers(Home(index.path.parent).workdir(jobid))  # a killed or lost job's containers
    secret_env.Vault.for_home(index.path.parent).discard(jobid)
    error = cause = None
    if failure is None and protocol.SUCCESS in present:
        status = protocol.SUCCEEDED
    elif failure is None and protocol.ERROR in present:
        status, error = protocol.FAILED, exceptions.AWSEMJobErrorException.__name__
        custom = json.loads(row["description"]).get("args", {}).get("custom_errors") or []
        cause = exceptions.job_error_message(jobid, store.get_text(bucket, protocol.key(jobid, protocol.LOG)) or "",
                                             custom)
    elif row["kill_request"] or protocol.ABORTED_MARKER in present:
        if row["kill_request"] == "soft":
            status, error, cause = protocol.FAILED, exceptions.JobAbortedException.__name__, "job aborted"
        else:
            status, error, cause = protocol.ABORTED, "Aborted", "killed by user"
        if not present:
            _record_postrun_error(store, bucket, jobid, error, cause, index.clock.now())
            store.put_bytes(bucket, protocol.key(jobid, protocol.ABORTED_MARKER), b"")
    else:
        status = protocol.FAILED
        error, cause = failure or (exceptions.EC2UnintendedTerminationException.__name__,
                                   f"the worker of job {jobid} ended without finishing it - please rerun.")
        if not present:
            _record_postrun_error(store, bucket, jobid, error, cause, index.clock.now())
            store.put_bytes(bucket, protocol.key(jobid, protocol.ERROR), b"")
    index.finish(jobid, status, error, cause)
    return True


def _record_postrun_error(store: LocalStore, bucket: str, jobid: str, error: str, cause: str, now: float) -> None:
    """Name the error in the job's postrun JSON (the one its agent began, else one from run.json);
    `now` (epoch seconds) is its end time unless the agent gave one."""
    text = store.get_text(bucket, protocol.key(jobid, protocol.POSTRUN_JSON))
    if text is None:
        run_json = store.get_text(bucket, protocol.key(jobid, protocol.RUN_JSON))
        if run_json is None:
            return
        postrun = protocol.initial_postrun_json(json.loads(run_json), instance_id="", instance_type="",
                                                availability_zone="", filesystem="")
    else:
        postrun = json.loads(text)
    protocol.set_postrun_error(postrun, error, cause)
    postrun["Job"].setdefault("end_time", protocol.now_stamp(now))
    store.put_bytes(bucket, protocol.key(jobid, protocol.POSTRUN_JSON), protocol.dump_json(postrun))


def kill_job(index: Index, store: LocalStore, jobid: str, soft: bool) -> None:
    """Kill a queued or running job: end its processes, then finalize it with `.aborted`."""
    if not index.request_kill(jobid, "soft" if soft else "hard"):
        return
    deadline = time.monotonic() + 5
    row = index.row(jobid)
    while row["phase"] == "running" and not row["worker_pid"] and time.monotonic() < deadline:
        time.sleep(0.01)  # the supervisor is between claiming the job and forking its worker
        row = index.row(jobid)
    end_job_processes(jobid, row["worker_pid"], row["worker_created"])
    if row["phase"] == "queued" or not worker_alive(row["worker_pid"], row["worker_created"]):
        finalize(index, store, jobid)
    # The supervisor may be the one finalizing (it reaped the worker first): return once it is done.
    deadline = time.monotonic() + 10
    while index.row(jobid)["phase"] != "done" and time.monotonic() < deadline:
        time.sleep(0.01)
