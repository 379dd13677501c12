"""The local supervisor: plays the state machine for one TIBANNA_HOME.

One supervisor runs per home (guarded by a lock file, see `launcher`). Its loop reaps ended
workers and finalizes their jobs, starts queued jobs within the machine's cores and memory
(each as a forked worker, see `worker`), gates jobs on their dependencies, frees job folders,
and exits after a quiet spell. After a restart it adopts the workers a dead supervisor left,
queues again the jobs it claimed but never started, and fails those whose worker is gone.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import select
import shutil
import signal
import sys
from pathlib import Path

from tibanna import exceptions, protocol, settings
from tibanna.backends.local.finalize import finalize
from tibanna.backends.local.home import Home
from tibanna.backends.local.index import Index
from tibanna.backends.local.launcher import try_lock
from tibanna.backends.local.processes import worker_alive
from tibanna.backends.local.resources import Reservations, machine_capacity
from tibanna.backends.local.worker import Worker, fork_worker
from tibanna.clock import REAL_CLOCK, Clock
from tibanna.storage import LocalStore

log = logging.getLogger(__name__)

POLL_SECONDS = 0.05
SWEEP_SECONDS = 10.0
IDLE_EXIT_SECONDS = settings.TIBANNA_SUPERVISOR_IDLE_SECONDS.seconds()


class Supervisor:
    """The loop: reap, recover, schedule; see the module docstring. Its time (the quiet spell, the
    sweeps, the index's stamps) is `clock`'s; it waits for its workers on their signals."""

    def __init__(self, home: Home, lock_fd: int | None = None, clock: Clock = REAL_CLOCK) -> None:
        self.home = home
        self.lock_fd = lock_fd  # closed in every worker, so that only this process holds the lock
        self.clock = clock
        self.index = Index(home.index_path, clock)
        self.store = LocalStore(home.buckets)
        self.reservations = Reservations(machine_capacity())
        self.workers: dict[int, Worker] = {}
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._quiet_since = self._last_sweep = clock.now()

    def serve(self, lock_handle) -> None:
        from tibanna.agent import run_job  # noqa: F401  (loaded once, shared by every forked worker)
        from tibanna.agent.container import docker_answers

        docker_answers()  # asked once here, inherited by every worker

        signal.set_wakeup_fd(self._wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.recover()
        self._quiet_since = self._last_sweep = self.clock.now()
        while self.tick(lock_handle):
            select.select([self._wake_r], [], [], POLL_SECONDS)  # a worker's end (SIGCHLD) cuts it short
            try:
                os.read(self._wake_r, 4096)
            except BlockingIOError:
                pass

    def tick(self, lock_handle) -> bool:
        """One round of the loop: reap, schedule, sweep now and then. False when the supervisor is
        to exit: quiet (no worker, no active job) for IDLE_EXIT_SECONDS, its lock released."""
        self.reap()
        self.schedule()
        now = self.clock.now()
        if now - self._last_sweep > SWEEP_SECONDS:
            self.sweep_job_folders()
            self._last_sweep = now
        if self.workers or self.index.has_active_jobs():
            self._quiet_since = now
        elif now - self._quiet_since > IDLE_EXIT_SECONDS:
            # Release the lock, then look once more: a job submitted meanwhile either is seen
            # here or its submitter saw the lock free and started a new supervisor.
            self.sweep_job_folders()
            fcntl.flock(lock_handle, fcntl.LOCK_UN)
            if not self.index.has_active_jobs():
                return False
            try:
                fcntl.flock(lock_handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False
            self._quiet_since = self.clock.now()
        return True

    def sweep_job_folders(self) -> None:
        """Remove the folders of ended jobs once their `shutdown_min` has passed (upstream keeps the
        instance up that long for a look; 'now', the default, frees the disk when the job ends)."""
        if not self.home.jobs.is_dir():
            return
        now = self.clock.now()
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
                                                         row["sfn"], adopted=True)
                self.reservations.reserve(row["jobid"], row["cpu"], row["mem"], row["sfn"], adopted=True)
            elif self.index.requeue_unstarted(row["jobid"]):
                log.info("job %s was claimed but never started; queued again", row["jobid"])
            else:
                log.warning("job %s lost its worker; marking it failed", row["jobid"])
                finalize(self.index, self.store, row["jobid"])

    def reap(self) -> None:
        """Finalize the jobs whose worker ended: children by waitpid, adopted ones by looking."""
        ended: list[Worker] = []
        while any(not worker.adopted for worker in self.workers.values()):
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid in self.workers:
                ended.append(self.workers.pop(pid))
        for worker in [w for w in self.workers.values() if w.adopted]:
            if not worker_alive(worker.pid, worker.created):
                ended.append(self.workers.pop(worker.pid))
        for worker in ended:
            self.reservations.release(worker.jobid)
            finalize(self.index, self.store, worker.jobid)

    def schedule(self) -> None:
        """Start queued jobs, oldest first, while their reservations fit (the oldest always may
        start on an idle machine, so a large job cannot wait forever)."""
        limits = self.index.concurrency_limits()
        full = [sfn for sfn, limit in limits.items() if self.reservations.running(sfn) >= limit]
        for row in self.index.queued_rows(full):
            if row["kill_request"]:
                finalize(self.index, self.store, row["jobid"])
                continue
            if row["sfn"] in limits and self.reservations.running(row["sfn"]) >= limits[row["sfn"]]:
                continue
            if self.dependency_gate(row):
                continue
            if not self.reservations.fits(row["cpu"], row["mem"]):
                break
            if self.index.claim_start(row["jobid"]):
                self.reservations.reserve(row["jobid"], row["cpu"], row["mem"], row["sfn"])
                worker = fork_worker(self.index, self.store, self.home, row["jobid"], row["sfn"], self.lock_fd)
                self.workers[worker.pid] = worker

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


def main(argv: list[str] | None = None) -> None:
    """`python -m tibanna.backends.local.supervisor <TIBANNA_HOME> [<locked fd>]`.

    `ensure_running` passes the descriptor of the lock it already holds; started by hand, the
    supervisor takes the lock itself (and exits if another supervisor has it)."""
    args = argv if argv is not None else sys.argv[1:]
    home = Home(Path(args[0]))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s supervisor[%(process)d] %(levelname)s %(message)s")
    if len(args) > 1:
        handle = os.fdopen(int(args[1]), "a")
    else:
        handle = open(home.lock, "a")
        if not try_lock(handle):
            handle.close()
            return  # another supervisor serves this home
    with handle:
        home.pid.write_text(str(os.getpid()))
        log.info("supervisor started for %s", home.root)
        Supervisor(home, handle.fileno()).serve(handle)
        log.info("supervisor idle; exiting")


if __name__ == "__main__":
    main()
