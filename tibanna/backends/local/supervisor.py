"""The local supervisor: plays the state machine for one TIBANNA_HOME.

One supervisor runs per home (guarded by a lock file). It starts queued jobs within the
machine's cores and memory, each as a forked worker in its own session that runs the agent,
gives every ended job its true state, adopts workers a dead supervisor left behind, and exits
after a quiet spell. It is started on demand by `ensure_running`, fully detached.
"""
from __future__ import annotations

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
from pathlib import Path

import psutil

from tibanna import exceptions, protocol
from tibanna.agent.container import remove_job_containers
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


def end_process_tree(pid: int, created: float | None, timeout: float = 10.0) -> None:
    """SIGKILL a worker's session and every descendant, then wait until none is left."""
    if not worker_alive(pid, created):
        return
    try:
        procs = [psutil.Process(pid)]
        procs += procs[0].children(recursive=True)
    except psutil.Error:
        procs = []
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for proc in procs:  # descendants that left the worker's process group
        try:
            proc.kill()
        except psutil.Error:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in _alive(procs)):
            return
        time.sleep(0.01)


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for proc in procs:
        try:
            if proc.is_running():
                alive.append(proc)
        except psutil.Error:
            pass
    return alive


# Ending a job ------------------------------------------------------------------------------
def finalize(index: Index, store: LocalStore, jobid: str, from_phases: tuple[str, ...] = ("queued", "running"),
             failure: tuple[str, str] | None = None) -> bool:
    """Give a job whose worker is gone its true final state, once.

    The caller that wins the claim decides the status from the terminal marker the agent left;
    with no marker, it writes one: `.aborted` after a kill, else `.error` (the worker was lost, or
    `failure` = (error name, cause) says why the job could not run). Returns whether it won.
    """
    if not index.claim_finalize(jobid, from_phases):
        return False
    remove_job_containers(Home(index.path.parent).workdir(jobid))  # a killed or lost job's containers
    row = index.row(jobid)
    bucket = row["log_bucket"]
    present = [m for m in protocol.TERMINAL_MARKERS if store.exists(bucket, protocol.key(jobid, m))]
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
            store.put_bytes(bucket, protocol.key(jobid, protocol.ABORTED_MARKER), b"")
    else:
        status = protocol.FAILED
        error, cause = failure or (exceptions.EC2UnintendedTerminationException.__name__,
                                   f"the worker of job {jobid} ended without finishing it - please rerun.")
        if not present:
            store.put_bytes(bucket, protocol.key(jobid, protocol.ERROR), b"")
    index.finish(jobid, status, error, cause)
    return True


def kill_job(index: Index, store: LocalStore, jobid: str, soft: bool) -> None:
    """Kill a queued or running job: end its process tree, then finalize it with `.aborted`."""
    if not index.request_kill(jobid, "soft" if soft else "hard"):
        return
    deadline = time.monotonic() + 5
    row = index.row(jobid)
    while row["phase"] == "running" and not row["worker_pid"] and time.monotonic() < deadline:
        time.sleep(0.01)  # the supervisor is between claiming the job and forking its worker
        row = index.row(jobid)
    if row["worker_pid"]:
        end_process_tree(row["worker_pid"], row["worker_created"])
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
class Supervisor:
    """The loop: reap, recover, schedule; see the module docstring."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self.index = Index(home.index_path)
        self.store = LocalStore(home.buckets)
        self.capacity = machine_capacity()
        self.workers: dict[int, tuple[str, float, float, str]] = {}  # pid -> (jobid, cpu, mem, sfn)
        self.adopted: dict[int, tuple[str, float | None, float, float, str]] = {}
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
            if self.workers or self.adopted or self.index.has_active_jobs():
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
        for folder in self.home.jobs.iterdir():
            row = self.index.row(folder.name)
            if row is not None and (row["phase"] != "done" or row["worker_pid"] in self.adopted):
                continue
            keep = 0.0
            if row is not None:
                minutes = json.loads(row["description"]).get("config", {}).get("shutdown_min", "now")
                keep = 60.0 * float(minutes) if str(minutes) != "now" else 0.0
            if row is None or (row["stopped"] or 0) + keep <= now:
                shutil.rmtree(folder, ignore_errors=True)

    def recover(self) -> None:
        """After a restart: adopt live workers, finalize jobs whose worker is gone."""
        for row in self.index.active_rows("finalizing"):
            finalize(self.index, self.store, row["jobid"], from_phases=("finalizing",))
        for row in self.index.active_rows("running"):
            if worker_alive(row["worker_pid"], row["worker_created"]):
                self.adopted[row["worker_pid"]] = (row["jobid"], row["worker_created"], row["cpu"], row["mem"],
                                                   row["sfn"])
            else:
                log.warning("job %s lost its worker; marking it failed", row["jobid"])
                finalize(self.index, self.store, row["jobid"])

    def reap(self) -> None:
        while self.workers:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            jobid = self.workers.pop(pid, (None,))[0]
            if jobid:
                finalize(self.index, self.store, jobid)
        for pid, (jobid, created, *_rest) in list(self.adopted.items()):
            if not worker_alive(pid, created):
                del self.adopted[pid]
                finalize(self.index, self.store, jobid)

    def _in_use(self) -> tuple[float, float, dict[str, int]]:
        cpu = mem = 0.0
        per_sfn: dict[str, int] = {}
        for _jobid, c, m, sfn in self.workers.values():
            cpu, mem = cpu + c, mem + m
            per_sfn[sfn] = per_sfn.get(sfn, 0) + 1
        for _jobid, _created, c, m, sfn in self.adopted.values():
            cpu, mem = cpu + c, mem + m
            per_sfn[sfn] = per_sfn.get(sfn, 0) + 1
        return cpu, mem, per_sfn

    def schedule(self) -> None:
        """Start queued jobs, oldest first, while their reservations fit (the oldest always may
        start on an idle machine, so a large job cannot wait forever)."""
        cpu_used, mem_used, per_sfn = self._in_use()
        total_cpu, total_mem = self.capacity
        limits = {r["name"]: r["concurrency"] for r in self.index.conn.execute(
            "SELECT name, concurrency FROM sfns WHERE concurrency IS NOT NULL")}
        full = [sfn for sfn, limit in limits.items() if per_sfn.get(sfn, 0) >= limit]
        for row in self.index.conn.execute(
                "SELECT jobid, cpu, mem, sfn, description, kill_request FROM jobs WHERE phase='queued' "
                f"AND sfn NOT IN ({','.join('?' * len(full))}) ORDER BY seq LIMIT 256", full).fetchall():
            if row["kill_request"]:
                finalize(self.index, self.store, row["jobid"])
                continue
            if row["sfn"] in limits and per_sfn.get(row["sfn"], 0) >= limits[row["sfn"]]:
                continue
            waiting = self.dependency_gate(row)
            if waiting:
                continue
            idle = not self.workers and not self.adopted
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
        jobid = row["jobid"]
        cur = self.index.conn.execute(
            "UPDATE jobs SET phase='running', started=? WHERE jobid=? AND phase='queued' AND kill_request IS NULL",
            (time.time(), jobid))
        if cur.rowcount != 1:
            return False
        log_bucket = self.index.row(jobid)["log_bucket"]
        workdir = self.home.workdir(jobid)
        workdir.mkdir(parents=True, exist_ok=True)
        go_r, go_w = os.pipe()
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(go_w)
            os.close(ready_r)
            _worker(go_r, ready_w, self.store, jobid, log_bucket, workdir)
        os.close(go_r)
        os.close(ready_w)
        os.read(ready_r, 1)  # the worker leads its own session now, so killpg(pid) reaches all of it
        os.close(ready_r)
        created = psutil.Process(pid).create_time()
        self.index.conn.execute("UPDATE jobs SET worker_pid=?, worker_created=? WHERE jobid=?", (pid, created, jobid))
        os.write(go_w, b"1")
        os.close(go_w)
        self.workers[pid] = (jobid, row["cpu"], row["mem"], row["sfn"])
        return True


def _worker(go_fd: int, ready_fd: int, store: LocalStore, jobid: str, log_bucket: str, workdir: Path) -> None:
    """The forked worker: lead a new session, wait until the index names it, run the agent; never returns."""
    code = 1
    try:
        os.setsid()
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

        code = run_job(store, jobid, log_bucket, workdir)
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
        Supervisor(home).serve(handle)
        log.info("supervisor idle; exiting")


if __name__ == "__main__":
    main()
