"""The local supervisor: plays the state machine for one TIBANNA_HOME.

One supervisor runs per home (guarded by a lock file). It starts queued jobs within the
machine's cores and memory, each as a forked worker in its own session that runs the agent,
gives every ended job its true state, adopts workers a dead supervisor left behind, and exits
after a quiet spell. It is started on demand by `ensure_running`, fully detached.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from tibanna import exceptions, protocol, secret_env
from tibanna.backends.local.index import Index
from tibanna.backends.local.resources import machine_capacity
from tibanna.storage import LocalStore

log = logging.getLogger(__name__)

POLL_SECONDS = 0.05
SWEEP_SECONDS = 10.0
IDLE_EXIT_SECONDS = float(os.environ.get("TIBANNA_SUPERVISOR_IDLE_SECONDS", "30"))
LOCK_NAME = "supervisor.lock"


class Home:
    """The paths of one TIBANNA_HOME."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.buckets = self.root / "buckets"
        self.jobs = self.root / "jobs"
        self.index_path = self.root / "index.sqlite"
        self.lock = self.root / LOCK_NAME
        self.log = self.root / "supervisor.log"
        self.pid = self.root / "supervisor.pid"

    def workdir(self, jobid: str) -> Path:
        return self.jobs / jobid


# Process identity and ending ---------------------------------------------------------------
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


# Ending a job ------------------------------------------------------------------------------
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
            _record_postrun_error(store, bucket, jobid, error, cause)
            store.put_bytes(bucket, protocol.key(jobid, protocol.ABORTED_MARKER), b"")
    else:
        status = protocol.FAILED
        error, cause = failure or (exceptions.EC2UnintendedTerminationException.__name__,
                                   f"the worker of job {jobid} ended without finishing it - please rerun.")
        if not present:
            _record_postrun_error(store, bucket, jobid, error, cause)
            store.put_bytes(bucket, protocol.key(jobid, protocol.ERROR), b"")
    index.finish(jobid, status, error, cause)
    return True


def _record_postrun_error(store: LocalStore, bucket: str, jobid: str, error: str, cause: str) -> None:
    """Name the error in the job's postrun JSON (the one its agent began, else one from run.json)."""
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
    postrun["Job"].setdefault("end_time", protocol.now_stamp())
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


# Starting the supervisor -------------------------------------------------------------------
def is_running(home: Home) -> bool:
    """Whether a supervisor holds this home's lock."""
    home.root.mkdir(parents=True, exist_ok=True)
    with open(home.lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno in (errno.EAGAIN, errno.EACCES):
                return True
            raise
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def ensure_running(home: Home) -> None:
    """Start a detached supervisor for this home unless one runs (a second one exits at once)."""
    if is_running(home):
        return
    with open(home.log, "ab") as out:
        subprocess.Popen([sys.executable, "-m", "tibanna.backends.local.supervisor", str(home.root)],
                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, close_fds=True,
                         start_new_session=True, cwd=str(home.root))


# The supervisor itself ---------------------------------------------------------------------
@dataclass
class Worker:
    """A running job's worker process: a child of this supervisor, or adopted from a dead one."""

    jobid: str
    pid: int
    created: float | None
    cpu: float
    mem: float
    sfn: str
    adopted: bool = False


class Supervisor:
    """The loop: reap, recover, schedule; see the module docstring."""

    def __init__(self, home: Home, lock_fd: int | None = None) -> None:
        self.home = home
        self.lock_fd = lock_fd  # closed in every worker, so that only this process holds the lock
        self.index = Index(home.index_path)
        self.store = LocalStore(home.buckets)
        self.capacity = machine_capacity()
        self.workers: dict[int, Worker] = {}
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    def serve(self, lock_handle) -> None:
        from tibanna.agent import run_job  # noqa: F401  (loaded once, shared by every forked worker)
        from tibanna.agent.container import docker_answers

        docker_answers()  # asked once here, inherited by every worker

        signal.set_wakeup_fd(self._wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.recover()
        quiet_since = last_sweep = time.monotonic()
        while True:
            self.reap()
            self.schedule()
            if time.monotonic() - last_sweep > SWEEP_SECONDS:
                self.sweep_job_folders()
                last_sweep = time.monotonic()
            if self.workers or self.index.has_active_jobs():
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > IDLE_EXIT_SECONDS:
                # Release the lock, then look once more: a job submitted meanwhile either is seen
                # here or its submitter saw the lock free and started a new supervisor.
                self.sweep_job_folders()
                fcntl.flock(lock_handle, fcntl.LOCK_UN)
                if not self.index.has_active_jobs():
                    return
                try:
                    fcntl.flock(lock_handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    return
                quiet_since = time.monotonic()
            select.select([self._wake_r], [], [], POLL_SECONDS)
            try:
                os.read(self._wake_r, 4096)
            except BlockingIOError:
                pass

    def sweep_job_folders(self) -> None:
        """Remove the folders of ended jobs once their `shutdown_min` has passed (upstream keeps the
        instance up that long for a look; 'now', the default, frees the disk when the job ends)."""
        if not self.home.jobs.is_dir():
            return
        now = time.time()
        running = {worker.jobid for worker in self.workers.values()}
        for folder in self.home.jobs.iterdir():
            row = self.index.row(folder.name)
            if row is not None and (row["phase"] != "done" or row["jobid"] in running):
                continue
            keep = 0.0
            if row is not None:
                minutes = json.loads(row["description"]).get("config", {}).get("shutdown_min", "now")
                keep = 60.0 * float(minutes) if str(minutes) != "now" else 0.0
            if row is None or (row["stopped"] or 0) + keep <= now:
                shutil.rmtree(folder, ignore_errors=True)

    def recover(self) -> None:
        """After a restart: adopt live workers, requeue jobs that never got one, finalize the others."""
        for row in self.index.active_rows("finalizing"):
            finalize(self.index, self.store, row["jobid"], from_phases=("finalizing",))
        for row in self.index.active_rows("running"):
            if worker_alive(row["worker_pid"], row["worker_created"]):
                self.workers[row["worker_pid"]] = Worker(row["jobid"], row["worker_pid"], row["worker_created"],
                                                         row["cpu"], row["mem"], row["sfn"], adopted=True)
            elif self.index.requeue_unstarted(row["jobid"]):
                log.info("job %s was claimed but never started; queued again", row["jobid"])
            else:
                log.warning("job %s lost its worker; marking it failed", row["jobid"])
                finalize(self.index, self.store, row["jobid"])

    def reap(self) -> None:
        """Finalize the jobs whose worker ended: children by waitpid, adopted ones by looking."""
        while any(not worker.adopted for worker in self.workers.values()):
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            worker = self.workers.pop(pid, None)
            if worker is not None:
                finalize(self.index, self.store, worker.jobid)
        for worker in [w for w in self.workers.values() if w.adopted]:
            if not worker_alive(worker.pid, worker.created):
                del self.workers[worker.pid]
                finalize(self.index, self.store, worker.jobid)

    def schedule(self) -> None:
        """Start queued jobs, oldest first, while their reservations fit (the oldest always may
        start on an idle machine, so a large job cannot wait forever)."""
        cpu_used = sum(w.cpu for w in self.workers.values())
        mem_used = sum(w.mem for w in self.workers.values())
        per_sfn: dict[str, int] = {}
        for worker in self.workers.values():
            per_sfn[worker.sfn] = per_sfn.get(worker.sfn, 0) + 1
        total_cpu, total_mem = self.capacity
        limits = self.index.concurrency_limits()
        full = [sfn for sfn, limit in limits.items() if per_sfn.get(sfn, 0) >= limit]
        for row in self.index.queued_rows(full):
            if row["kill_request"]:
                finalize(self.index, self.store, row["jobid"])
                continue
            if row["sfn"] in limits and per_sfn.get(row["sfn"], 0) >= limits[row["sfn"]]:
                continue
            waiting = self.dependency_gate(row)
            if waiting:
                continue
            idle = not self.workers
            if not idle and (cpu_used + row["cpu"] > total_cpu + 1e-9 or mem_used + row["mem"] > total_mem + 1e-9):
                break
            if self.start(row):
                cpu_used, mem_used = cpu_used + row["cpu"], mem_used + row["mem"]
                per_sfn[row["sfn"]] = per_sfn.get(row["sfn"], 0) + 1

    def dependency_gate(self, row) -> bool:
        """True while a dependency still runs; fails the job if one failed."""
        dependency = json.loads(row["description"]).get("args", {}).get("dependency") or {}
        ids = list(dependency.get("job_id") or [])
        arns = list(dependency.get("exec_arn") or [])
        if not ids and not arns:
            return False
        deps = self.index.rows_by_ids(ids) + [r for r in (self.index.row(exec_arn=a) for a in arns) if r]
        failed = [d["jobid"] for d in deps if d["status"] in (protocol.FAILED, protocol.ABORTED, protocol.TIMED_OUT)]
        if failed or len(deps) < len(ids) + len(arns):
            known = {d["jobid"] for d in deps} | {d["exec_arn"] for d in deps}
            missing = [x for x in ids + arns if x not in known]
            cause = "A Job that this job is dependent on failed: " + ", ".join(failed + missing)
            finalize(self.index, self.store, row["jobid"],
                     failure=(exceptions.DependencyFailedException.__name__, cause))
            return True
        return any(d["status"] == protocol.RUNNING for d in deps)

    def start(self, row) -> bool:
        """Claim a queued job and fork its worker; the worker runs only once the index names it."""
        jobid = row["jobid"]
        if not self.index.claim_start(jobid):
            return False
        log_bucket = self.index.row(jobid)["log_bucket"]
        workdir = self.home.workdir(jobid)
        workdir.mkdir(parents=True, exist_ok=True)
        go_r, go_w = os.pipe()
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker
            if self.lock_fd is not None:
                os.close(self.lock_fd)
            os.close(go_w)
            os.close(ready_r)
            _worker(go_r, ready_w, self.store, jobid, log_bucket, workdir, self.home)
        os.close(go_r)
        os.close(ready_w)
        os.read(ready_r, 1)  # the worker leads its own session now, so killpg(pid) reaches all of it
        os.close(ready_r)
        created = psutil.Process(pid).create_time()
        self.index.record_worker(jobid, pid, created)
        os.write(go_w, b"1")
        os.close(go_w)
        self.workers[pid] = Worker(jobid, pid, created, row["cpu"], row["mem"], row["sfn"])
        return True


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


def main(argv: list[str] | None = None) -> None:
    """`python -m tibanna.backends.local.supervisor <TIBANNA_HOME>`."""
    home = Home(Path((argv or sys.argv[1:])[0]))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s supervisor[%(process)d] %(levelname)s %(message)s")
    with open(home.lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return  # another supervisor serves this home
        home.pid.write_text(str(os.getpid()))
        log.info("supervisor started for %s", home.root)
        Supervisor(home, handle.fileno()).serve(handle)
        log.info("supervisor idle; exiting")


if __name__ == "__main__":
    main()
