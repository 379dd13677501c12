"""StubBackend: the Backend contract in memory, its jobs played from scripts on a (fake) clock."""
from __future__ import annotations

import copy
import dataclasses
import json
import threading
from pathlib import Path
from typing import Any, Callable, Iterable

from tibanna import exceptions, protocol
from tibanna.backends.base import Backend, JobRecord
from tibanna.backends.local import LocalBackend
from tibanna.backends.stub.script import KILLED, SOFT_KILLED, Ending, Script
from tibanna.clock import Clock, FakeClock
from tibanna.names import sfn_name


@dataclasses.dataclass
class _Run:
    """One job on the stub: its record, its script, and how far it has been played."""

    record: JobRecord
    script: Script
    submission: dict  # what `submit` returned, returned again for the same job id
    depends_on: list[str]  # job ids and execution ARNs (args.dependency)
    steps: list[tuple[float, str, Any]] | None = None  # (time, kind, value), once it may start
    taken: int = 0  # steps already played


class StubBackend(Backend):
    """Jobs that do what their `Script` says, when the clock says so; nothing runs.

    :param root: a folder for the buckets (`<root>/buckets/<bucket>/`, a real `LocalStore`), and
        for the step functions, usergroups, users and price table, kept as the local backend keeps
        them (its admin verbs are the local backend's, on this folder).
    :param script: every job's `Script`, or a function from a job's parsed description (with its
        `jobid`) to its script. Default: each job succeeds one second after its submission.
    :param clock: a `FakeClock` (the default) plays the jobs as it moves: a sleep on it is a step
        through their chronologies. With a real clock they play in real time, looked at on reads.

    Use it as `API(backend=StubBackend(...))`, or put it behind every API of a DAG's or a flow's
    tasks with `tibanna.backends.substitute`. Its jobs follow the log-bucket protocol: run.json at
    submission, `.job_started` and the postrun JSON when they start, their `.log` as scripted, the
    final postrun JSON (with the error name) and then one terminal marker. A job with
    `dependency` waits for those jobs to succeed (its script's times count from then) and fails
    with DependencyFailedException when one did not.
    """

    name = "stub"
    region = "local"
    account = "000000000000"

    def __init__(self, root: Path | str, script: Script | Callable[[dict], Script] = Script(),
                 clock: Clock | None = None) -> None:
        self._admin = LocalBackend(home=root)  # step functions, usergroups, users, prices; never runs a job
        self.store = self._admin.store
        self.clock = clock if clock is not None else FakeClock()
        self.script = script
        self._runs: dict[str, _Run] = {}  # by job id, in submission order
        self._lock = threading.RLock()
        if isinstance(self.clock, FakeClock):
            self.clock.on_advance(lambda _: self.play())

    # Step functions ------------------------------------------------------------------------------
    def default_sfn(self) -> str:
        return self._admin.default_sfn()

    def check_sfn(self, sfn: str, buckets: Iterable[str]) -> None:
        with self._lock:
            self._admin.check_sfn(sfn, buckets)

    # Jobs ------------------------------------------------------------------------------------------
    def submit(self, jobs: list[dict], *, rerun_of: str | None = None,
               secrets: dict[str, dict[str, str]] | None = None) -> list[dict]:
        """Index and script the jobs; `secrets` are not kept (no command runs to receive them)."""
        results = []
        with self._lock:
            now = self.clock.now()
            for job in jobs:
                jobid = job["jobid"]
                if jobid in self._runs:
                    results.append(copy.deepcopy(self._runs[jobid].submission))
                    continue
                script = self.script(job) if callable(self.script) else self.script
                config, tibanna = job["config"], job["_tibanna"]
                run_json = protocol.build_run_json(job)
                run_json["Job"]["start_time"] = protocol.now_stamp(now)
                self.store.put_text(config["log_bucket"], protocol.key(jobid, protocol.RUN_JSON),
                                    json.dumps(run_json, indent=4))
                instance_type = config.get("instance_type") or protocol.LOCAL_INSTANCE_TYPE  # priced by cpu and mem
                record = JobRecord(
                    jobid=jobid, sfn=tibanna["sfn"], run_name=tibanna["run_name"], exec_arn=tibanna["exec_arn"],
                    log_bucket=config["log_bucket"], status=protocol.RUNNING, name=tibanna["run_name"],
                    start_time=now, description=copy.deepcopy(job), instance_status="pending", rerun_of=rerun_of,
                    instance_type=",".join(instance_type) if isinstance(instance_type, list) else instance_type)
                dependency = job.get("args", {}).get("dependency") or {}
                depends_on = list(dependency.get("job_id") or []) + list(dependency.get("exec_arn") or [])
                self._runs[jobid] = _Run(record, script, copy.deepcopy(job), depends_on)
                results.append(job)
            self.play()
        return results

    def get(self, job_id: str | None = None, exec_arn: str | None = None) -> JobRecord | None:
        with self._lock:
            self.play()
            run = self._runs.get(job_id) if job_id is not None else self._by_arn(exec_arn)
            return _copy(run.record, with_description=True) if run else None

    def get_many(self, job_ids: list[str]) -> list[JobRecord]:
        with self._lock:
            self.play()
            return [_copy(self._runs[j].record) for j in job_ids if j in self._runs]

    def list(self, sfn: str | None, status: str | None = None, limit: int | None = None,
             stopped_after: float | None = None) -> list[JobRecord]:
        with self._lock:
            self.play()
            found = [_copy(run.record, with_description=stopped_after is not None)
                     for run in reversed(self._runs.values())
                     if (sfn is None or run.record.sfn == sfn) and (status is None or run.record.status == status)
                     and (stopped_after is None or (run.record.stop_time or 0) > stopped_after)]
            return found if limit is None else found[:int(limit)]

    def kill(self, record: JobRecord, soft: bool = False) -> None:
        with self._lock:
            self.play()
            run = self._runs.get(record.jobid)
            if run is not None and run.record.status == protocol.RUNNING:
                ending = Ending(protocol.FAILED, *SOFT_KILLED) if soft else Ending(protocol.ABORTED, *KILLED)
                self._end(run, self.clock.now(), ending)

    def list_sfns(self, counts: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._admin.list_sfns()
            if counts:
                self.play()
                for row in rows:
                    statuses = [run.record.status for run in self._runs.values() if run.record.sfn == row["name"]]
                    row.update({status: statuses.count(status) for status in protocol.STATUSES})
            return rows

    # Playing the scripts -----------------------------------------------------------------------------
    def play(self) -> None:
        """Take every scripted step due by the clock's time: start, log, end, in each job's order.

        Called on every read and whenever a fake clock moves; a job's end may let the jobs that
        depend on it start, so it goes round until nothing more is due."""
        with self._lock:
            now = self.clock.now()
            moved = True
            while moved:
                moved = False
                for run in self._runs.values():
                    if run.record.status != protocol.RUNNING:
                        continue
                    if run.steps is None:
                        moved |= self._release(run)
                    if run.steps is not None:
                        moved |= self._take_steps(run, now)

    def _release(self, run: _Run) -> bool:
        """Let a job start once its dependencies succeeded, or fail it when one did not; True if it ended."""
        deps = [self._runs.get(ref) or self._by_arn(ref) for ref in run.depends_on]
        if any(dep is not None and dep.record.status == protocol.RUNNING for dep in deps):
            return False
        ended = [dep.record.stop_time for dep in deps if dep is not None]
        released = max([run.record.start_time, *ended])
        failed = [ref for ref, dep in zip(run.depends_on, deps)
                  if dep is None or dep.record.status != protocol.SUCCEEDED]
        if failed:
            cause = "A Job that this job is dependent on failed: " + ", ".join(failed)
            self._end(run, released, Ending(protocol.FAILED, exceptions.DependencyFailedException.__name__, cause))
            return True
        script = run.script
        run.steps = [(released + script.start, "start", None)]
        run.steps += [(released + at, "log", text) for at, text in script.log]
        if script.end is not None:
            run.steps.append((released + script.end, "end", script.ending))
        run.steps.sort(key=lambda step: step[0])  # stable: the start first, the end last
        return False

    def _take_steps(self, run: _Run, now: float) -> bool:
        """Play a released job's steps due by `now`; True if it ended."""
        assert run.steps is not None
        while run.taken < len(run.steps) and run.steps[run.taken][0] <= now:
            at, kind, value = run.steps[run.taken]
            run.taken += 1
            if kind == "start":
                self._start(run, at)
            elif kind == "log":
                key = protocol.key(run.record.jobid, protocol.LOG)
                self.store.put_text(run.record.log_bucket, key, (self.store.get_text(run.record.log_bucket, key) or "")
                                    + value)
            else:
                self._end(run, at, value)
                return True
        return False

    def _start(self, run: _Run, at: float) -> None:
        record = run.record
        record.instance_start_time, record.instance_status = at, "running"
        record.instance_id = f"stub-{record.jobid}"
        self.store.put_bytes(record.log_bucket, protocol.key(record.jobid, protocol.JOB_STARTED), b"")
        postrun = self._postrun(record)
        postrun["Job"]["start_time"] = protocol.now_stamp(at)
        self._put_postrun(record, postrun)

    def _end(self, run: _Run, at: float, ending: Ending) -> None:
        """The final postrun JSON, then the one terminal marker, then the record's end."""
        record = run.record
        postrun = self._postrun(record)
        postrun["Job"].update(end_time=protocol.now_stamp(at), status="0" if ending.status == protocol.SUCCEEDED else "1")
        if ending.error is not None:
            protocol.set_postrun_error(postrun, ending.error, ending.cause or "")
        self._put_postrun(record, postrun)
        self.store.put_bytes(record.log_bucket, protocol.key(record.jobid, ending.marker), b"")
        record.status, record.error, record.cause, record.stop_time = ending.status, ending.error, ending.cause, at
        record.instance_status = "terminated"

    def _postrun(self, record: JobRecord) -> dict:
        """The job's postrun JSON so far, else the one its run.json begins (as a worker's first)."""
        text = self.store.get_text(record.log_bucket, protocol.key(record.jobid, protocol.POSTRUN_JSON))
        if text is not None:
            return json.loads(text)
        run_json = json.loads(self.store.get_text(record.log_bucket, protocol.key(record.jobid, protocol.RUN_JSON)))
        return protocol.initial_postrun_json(run_json, instance_id=f"stub-{record.jobid}",
                                             instance_type=record.instance_type.split(",")[0],
                                             availability_zone="stub", filesystem="")

    def _put_postrun(self, record: JobRecord, postrun: dict) -> None:
        self.store.put_bytes(record.log_bucket, protocol.key(record.jobid, protocol.POSTRUN_JSON),
                             protocol.dump_json(postrun))

    def _by_arn(self, exec_arn: str | None) -> _Run | None:
        return next((run for run in self._runs.values() if run.record.exec_arn == exec_arn), None)

    # Metrics and cost: the local backend's (its price table, the samples in the log bucket) ----------
    def price_source(self):
        return self._admin.price_source()

    def actual_cost(self, postrun: dict) -> float:
        return self._admin.actual_cost(postrun)

    def metric_series(self, record: JobRecord, postrun: dict | None, start: Any, end: Any,
                      instance_id: str = "") -> None:
        return None

    # Admin verbs: the local backend's, on the stub's folder -------------------------------------------
    def setup_tibanna_env(self, buckets: list[str], usergroup_tag: str = "default", no_randomize: bool = False,
                          do_not_delete_public_access_block: bool = False) -> str:
        with self._lock:
            return self._admin.setup_tibanna_env(buckets, usergroup_tag, no_randomize,
                                                 do_not_delete_public_access_block)

    def deploy_unicorn(self, *args: Any, **kwargs: Any) -> str:
        with self._lock:
            return self._admin.deploy_unicorn(*args, **kwargs)

    def deploy_core(self, name: str, suffix: str | None = None, usergroup: str = "",
                    subnets: list[str] | None = None, security_groups: list[str] | None = None) -> list[str]:
        with self._lock:
            return self._admin.deploy_core(name, suffix, usergroup, subnets, security_groups)

    def users(self) -> list[dict[str, str]]:
        with self._lock:
            return self._admin.users()

    def add_user(self, user: str, usergroup: str) -> None:
        with self._lock:
            self._admin.add_user(user, usergroup)

    def cleanup(self, usergroup: str, suffix: str | None = None, ignore_errors: bool = True,
                do_not_remove_iam_group: bool = False, purge_history: bool = False) -> list[str]:
        """The local backend's cleanup; `purge_history` forgets the removed step functions' ended jobs
        and deletes their `<jobid>.*` log objects."""
        with self._lock:
            removed = self._admin.cleanup(usergroup, suffix, ignore_errors, do_not_remove_iam_group, False)
            if not purge_history:
                return removed
            self.play()
            gone = [run for run in self._runs.values() if run.record.sfn in removed + [sfn_name(usergroup, suffix)]
                    and run.record.status != protocol.RUNNING]
            for run in gone:
                for key in list(self.store.list_keys(run.record.log_bucket, run.record.jobid + ".")):
                    self.store.delete(run.record.log_bucket, key)
                del self._runs[run.record.jobid]
            return [f"job {run.record.jobid}" for run in gone] + removed


def _copy(record: JobRecord, with_description: bool = False) -> JobRecord:
    """A caller's copy of a record (the description only when asked for, as the local index reads it)."""
    return dataclasses.replace(record, description=copy.deepcopy(record.description) if with_description else None)
