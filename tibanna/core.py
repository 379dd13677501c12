"""The public API: `from tibanna.core import API; API().run_workflow(...)`.

A thin facade over a backend (docs/design.md 3.4): it checks upstream's arguments and hands each
call to the module that does it: `submission` (parsing, naming and submitting jobs), `reruns`,
`views` (the shapes upstream returns, docs/design.md 3.3), `job_files` (a job's log-bucket
objects), `job_reports` (metrics and cost) and `idempotency` (an orchestrator's keys). The backend
is `API(backend=...)`, else `TIBANNA_BACKEND`, else `local`.

The status words its methods return (`RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`) are
part of this public API, for callers that compare them (the provider does).
"""
from __future__ import annotations

import logging
import os
import time
from typing import Any, Iterable

from tibanna import idempotency, job_files, job_reports, protocol, reruns, settings, submission, views
from tibanna.backends import substituted
from tibanna.backends.base import Backend, JobRecord
from tibanna.clock import REAL_CLOCK, Clock
from tibanna.exceptions import TibannaError, UserInputError, job_error
from tibanna.protocol import ABORTED, FAILED, RUNNING, STATUSES, SUCCEEDED, TIMED_OUT

__all__ = ["API", "ABORTED", "FAILED", "RUNNING", "STATUSES", "SUCCEEDED", "TIMED_OUT"]

log = logging.getLogger(__name__)

BACKENDS = ("local", "aws")


def _one_of(**named: Any) -> Any:
    """The value of whichever alias was given (python-api.rst and upstream's code spell some differently)."""
    given = {k: v for k, v in named.items() if v is not None}
    if len(set(map(repr, given.values()))) > 1:
        raise UserInputError(f"{' / '.join(named)}: give one of these, not different values for each")
    return next(iter(given.values()), None)


class API:
    """Upstream Tibanna's Python API, on the local or the AWS backend."""

    def __init__(self, backend: str | Backend | None = None, **backend_options: Any) -> None:
        if not isinstance(backend, Backend):
            backend = substituted() or backend  # a test's stand-in (tibanna.backends.substitute)
        if isinstance(backend, Backend):
            self._backend: Backend | None = backend
            self.backend_name = backend.name
            return
        self.backend_name = backend or settings.TIBANNA_BACKEND.get()
        if self.backend_name not in BACKENDS:
            raise UserInputError(f"backend: {self.backend_name!r} is not one of {', '.join(BACKENDS)}")
        self._backend_options = backend_options
        self._backend = None

    @property
    def backend(self) -> Backend:
        """The backend, created on first use."""
        if self._backend is None:
            if self.backend_name == "local":
                from tibanna.backends.local import LocalBackend

                self._backend = LocalBackend(**self._backend_options)
            else:
                from tibanna.backends.aws import AWSBackend

                self._backend = AWSBackend(**self._backend_options)
        return self._backend

    @property
    def clock(self) -> Clock:
        """The time of this API's jobs, which waits on them read and sleep by: real time, unless a
        Backend instance brings its own (a stub's fake clock); backends made by name run in real time."""
        return self._backend.clock if self._backend is not None else REAL_CLOCK

    # Submission ---------------------------------------------------------------------------------
    def run_workflow(self, input_json: dict | str | os.PathLike, sfn: str | None = None, env: str | None = None,
                     jobid: str | None = None, sleep: float | None = None, verbose: bool = True,
                     open_browser: bool = True, dryrun: bool = False, rerun_of: str | None = None) -> dict:
        """Submit one job; the same job id again returns the first submission and starts nothing.

        `rerun_of` links the job to the one it replaces (kept in the index, as `rerun` does)."""
        return self._submit([input_json], sfn, env, [jobid], sleep, verbose, dryrun, rerun_of=rerun_of)[0]

    def run_batch_workflows(self, input_json_list: list, sfn: str | None = None, env: str | None = None,
                            sleep: float | None = None, verbose: bool = True, open_browser: bool = True,
                            dryrun: bool = False) -> list[dict]:
        """Submit many jobs at once: all are validated before any is started; no pause unless `sleep`."""
        return self._submit(list(input_json_list), sfn, env, [None] * len(input_json_list), sleep, verbose, dryrun)

    def _submit(self, inputs: list, sfn: str | None, env: str | None, jobids: list[str | None],
                sleep: float | None, verbose: bool, dryrun: bool, rerun_of: str | None = None) -> list[dict]:
        prepared = [submission.prepare(self.backend, inp, sfn, env, jid) for inp, jid in zip(inputs, jobids)]
        return submission.submit(self.backend, prepared, rerun_of=rerun_of, sleep=sleep, verbose=verbose,
                                 dryrun=dryrun)

    # Status --------------------------------------------------------------------------------------
    def _record(self, job_id: str | None = None, exec_arn: str | None = None, exec_name: str | None = None,
                sfn: str | None = None) -> JobRecord:
        if exec_name and not exec_arn:
            exec_arn = protocol.execution_arn(self.backend.region, self.backend.account,
                                              sfn or self.backend.default_sfn(), exec_name)
        if not job_id and not exec_arn:
            raise UserInputError("job_id or exec_arn: give one of them")
        record = self.backend.get(job_id=job_id) if job_id else self.backend.get(exec_arn=exec_arn)
        if record is None:
            raise UserInputError(f"job_id: no job {job_id}" if job_id else f"exec_arn: no execution {exec_arn}")
        return record

    def check_status(self, exec_arn: str | None = None, job_id: str | None = None) -> str:
        """RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED."""
        return self._record(job_id=job_id, exec_arn=exec_arn).status

    def check_output(self, exec_arn: str | None = None, job_id: str | None = None) -> dict | None:
        """The execution's output (the job's dict with its `postrunjson`) once it SUCCEEDED, else None."""
        record = self._record(job_id=job_id, exec_arn=exec_arn)
        if record.status != SUCCEEDED:
            return None
        return (record.description or {}) | {"postrunjson": job_files.read_postrun(self.backend, record)}

    def info(self, job_id: str) -> dict | None:
        """The job's index entry, in upstream's DynamoDB item shape; None for an unknown job."""
        record = self.backend.get(job_id=job_id)
        return views.info_item(record) if record is not None else None

    def stat(self, sfn: str | None = None, status: str | None = None, verbose: bool = False, n: int | None = None,
             job_ids: list[str] | None = None, numbers: int | None = None, long: bool | None = None) -> list[dict]:
        """Jobs as upstream's `stat` rows: newest first; `verbose`/`long` adds the instance columns."""
        n = _one_of(n=n, numbers=numbers)
        if job_ids and (n is not None or sfn or status):
            raise UserInputError("job_ids: cannot be combined with n, sfn or status")
        if status is not None and status not in STATUSES:
            raise UserInputError(f"status: {status!r} is not one of {'|'.join(STATUSES)}")
        if n is not None and (not isinstance(n, int) or n < 0):
            raise UserInputError(f"n: {n!r} is not a number of lines")
        if job_ids:
            records = self.backend.get_many(list(job_ids))
        else:
            records = self.backend.list(sfn or self.backend.default_sfn(), status, n)
        return [views.stat_row(r, bool(verbose or long)) for r in records]

    def log(self, exec_arn: str | None = None, job_id: str | None = None, exec_name: str | None = None,
            sfn: str | None = None, postrunjson: bool = False, runjson: bool = False, top: bool = False,
            top_latest: bool = False, inputjson: bool = False, logbucket: str | None = None,
            quiet: bool = False) -> str:
        """A job's log (or postrun JSON, run JSON, top, latest top) as text; '' until it exists."""
        suffix = job_files.log_suffix(postrunjson, runjson, top, top_latest, inputjson)
        if job_id and logbucket:
            jobid, bucket = job_id, logbucket
        else:
            record = self._record(job_id=job_id, exec_arn=exec_arn, exec_name=exec_name, sfn=sfn)
            jobid, bucket = record.jobid, logbucket or record.log_bucket
        text = self.backend.store.get_text(bucket, protocol.key(jobid, suffix))
        if text is None:
            if not quiet:
                log.info("log/postrunjson file is not ready yet. Wait a few seconds/minutes and try again.")
            return ""
        return text

    # Control --------------------------------------------------------------------------------------
    def kill(self, exec_arn: str | None = None, job_id: str | None = None, sfn: str | None = None,
             soft: bool = False) -> None:
        """End a running job (a plain kill gives ABORTED; soft gives FAILED with JobAbortedException)."""
        record = self._record(job_id=job_id, exec_arn=exec_arn)
        if record.status != RUNNING:
            log.info("job %s is %s; nothing to kill", record.jobid, record.status)
            return
        self.backend.kill(record, soft=soft)
        log.info("killed job %s", record.jobid)

    def kill_all(self, sfn: str | None = None, soft: bool = False) -> list[str]:
        """Kill every running job of a step function; returns their ids."""
        records = self.backend.list(sfn or self.backend.default_sfn(), RUNNING)
        for record in records:
            self.backend.kill(record, soft=soft)
        return [r.jobid for r in records]

    def rerun(self, exec_arn: str | None = None, job_id: str | None = None, sfn: str | None = None,
              override_config: dict | None = None, app_name_filter: str | None = None,
              appname_filter: str | None = None, instance_type: str | list | None = None,
              shutdown_min: int | str | None = None, ebs_size: int | str | None = None, ebs_type: str | None = None,
              ebs_iops: int | str | None = None, ebs_throughput: int | None = None,
              overwrite_input_extra: bool | None = None, key_name: str | None = None, name: str | None = None,
              use_spot: bool | None = None, do_not_use_spot: bool | None = None, sleep: float | None = None,
              verbose: bool = True, jobid: str | None = None) -> dict | None:
        """Run a job again with its kept description and the given overrides; None when filtered out.

        A `jobid` makes the rerun idempotent: asking again returns the same rerun.

        `overwrite_input_extra` is 4DN's (Pony) and has no meaning for these jobs; it is accepted
        so upstream's calls keep working.
        """
        record = self._record(job_id=job_id, exec_arn=exec_arn)
        description = record.description or {}
        wanted_app = _one_of(app_name_filter=app_name_filter, appname_filter=appname_filter)
        if not reruns.of_app(description, wanted_app):
            log.info("job %s is not of app %s; not rerun", record.jobid, wanted_app)
            return None
        overrides = reruns.config_overrides(
            override_config, use_spot=use_spot, do_not_use_spot=do_not_use_spot, instance_type=instance_type,
            shutdown_min=shutdown_min, ebs_size=ebs_size, ebs_type=ebs_type, ebs_iops=ebs_iops,
            ebs_throughput=ebs_throughput, key_name=key_name, run_name=name or None)
        return self._submit([reruns.rerun_description(description, overrides)], sfn or record.sfn, None, [jobid],
                            sleep, verbose, False, rerun_of=record.jobid)[0]

    def rerun_many(self, sfn: str | None = None, stopdate: str = "13Feb2018", stophour: int = 13,
                   stopminute: int = 0, offset: int = 0, sleeptime: float | None = None, status: str = "FAILED",
                   **rerun_options: Any) -> list[dict]:
        """Rerun every job of `sfn` with `status` that stopped after the given time.

        The time is read in the system time zone; `offset` (hours) is added, as python-api.rst
        defines it (with the system on UTC, stophour=12 and offset=5 mean 17:00 UTC, as upstream).
        """
        cutoff = reruns.stop_cutoff(stopdate, stophour, stopminute, offset)
        if status not in STATUSES:
            raise UserInputError(f"status: {status!r} is not one of {'|'.join(STATUSES)}")
        results = []
        for record in self.backend.list(sfn or self.backend.default_sfn(), status, stopped_after=cutoff):
            result = self.rerun(job_id=record.jobid, sfn=sfn, **rerun_options)
            if result is not None:
                results.append(result)
                if sleeptime:
                    time.sleep(sleeptime)
        return results

    def list_sfns(self, numbers: bool = False, n: bool | None = None, sfn_type: str | None = None) -> list[dict]:
        """Step functions with their creation date and, with `numbers`, job counts per status."""
        return self.backend.list_sfns(counts=bool(_one_of(numbers=numbers or None, n=n)))

    # Metrics and cost -------------------------------------------------------------------------------
    def plot_metrics(self, job_id: str, sfn: str | None = None, open_browser: bool = True,
                     force_upload: bool = False, update_html_only: bool = False, endtime: str = "",
                     filesystem: str = "/dev/nvme1n1", instance_id: str = "", directory: str | None = None) -> str:
        """Write the job's metrics report (tsvs and a self-contained metrics.html) into
        `<jobid>.metrics/` and return where it is. A complete job's report is locked unless
        `force_upload`; `update_html_only` re-renders the page from the stored tsvs.
        `filesystem` and `directory` are upstream's and not needed here (the agent measures the
        job's own disk; nothing is written outside the log bucket)."""
        url = job_reports.metrics_report(self.backend, self._record(job_id=job_id, sfn=sfn),
                                         force_upload=force_upload, update_html_only=update_html_only,
                                         endtime=endtime, instance_id=instance_id)
        if open_browser and (os.environ.get("DISPLAY") or os.environ.get("BROWSER")):
            import webbrowser

            webbrowser.open(url)
        return url

    def cost(self, job_id: str, sfn: str | None = None, update_tsv: bool = False) -> float | None:
        """What the job cost (AWS: Cost Explorer; local: the local price table); None before it ends."""
        return job_reports.actual_cost(self.backend, self._record(job_id=job_id, sfn=sfn), update_tsv)

    def cost_estimate(self, job_id: str | None = None, update_tsv: bool = False, force: bool = False,
                      input_json: dict | str | os.PathLike | None = None,
                      hours: float | None = None) -> tuple[float, str]:
        """`(cost, type)` with type `actual cost`, `immediate estimate`, `retrospective estimate`
        or `NA`. With `input_json` and `hours`, what that job would cost before it runs."""
        if input_json is not None:
            if hours is None or float(hours) < 0:
                raise UserInputError("hours: give the expected run time in hours with input_json")
            return job_reports.estimate_before_run(self.backend, input_json, float(hours))
        if not job_id:
            raise UserInputError("job_id: required (or input_json and hours for an estimate before a run)")
        return job_reports.estimate(self.backend, self._record(job_id=job_id), force=force, update_tsv=update_tsv)

    # Orchestrators (Airflow, Prefect) ---------------------------------------------------------------
    sfn: str | None = None  # the step function `submit_or_attach` uses when given none (see from_settings)

    @classmethod
    def from_settings(cls, backend: str | None = None, *, home: str | None = None, region: str | None = None,
                      profile: str | None = None, endpoint_url: str | None = None,
                      sfn: str | None = None) -> API:
        """An API from an orchestrator's saved settings (an Airflow connection, a Prefect block).

        Empty settings fall back to the environment, as `API()` does; settings of the other backend
        are ignored (`home` on aws; `region`, `profile`, `endpoint_url` on local). `sfn` becomes the
        step function `submit_or_attach` uses by default.
        """
        name = API(backend).backend_name
        options = {"home": home} if name == "local" else {
            "region": region, "profile": profile, "endpoint_url": endpoint_url}
        api = cls(name, **{option: value for option, value in options.items() if value})
        api.sfn = sfn or None
        return api

    def job(self, job_id: str) -> dict[str, Any] | None:
        """One job as an orchestrator sees it (see `jobs`); None for an unknown job."""
        found = self.jobs([job_id])
        return found[0] if found else None

    def jobs(self, job_ids: Iterable[str]) -> list[dict[str, Any]]:
        """Jobs by id in one query, in the given order, unknown ids left out.

        Each is `{jobid, status, error, cause, name, sfn, exec_arn, log_bucket, rerun_of,
        start_time, stop_time}`: `error` is upstream's error name (e.g. `AWSEMJobErrorException`)
        and `cause` a one-line reason, both None unless the job ended otherwise than SUCCEEDED;
        times are epoch seconds.
        """
        return [views.job_dict(record) for record in self.backend.get_many(list(job_ids))]

    def job_failure(self, job: dict[str, Any], log_tail: int = 20) -> TibannaError:
        """A job that did not succeed as its own exception (`AWSEMJobErrorException`, ...): its status,
        error name and cause, and the last `log_tail` lines of its log."""
        text = self.log(job_id=job["jobid"], logbucket=job["log_bucket"], quiet=True) if log_tail > 0 else ""
        return job_error(job, text, log_tail)

    def submit_or_attach(self, input_json: dict | str | os.PathLike, key: str,
                         sfn: str | None = None) -> dict[str, Any]:
        """Submit the job of an idempotency `key` unless it exists: what an orchestrator's task calls
        on every try.

        The first job of a key has the id `key`. While the key's last job is RUNNING or once it
        SUCCEEDED, this attaches to it and starts nothing; after it ended FAILED, TIMED_OUT or
        ABORTED, this starts `<key>-2` (then `-3`, ...) linked to it by `rerun_of`. Concurrent calls
        with one key start one job (submission is idempotent per job id).

        Returns the job (as `job`) with `attached` (True when it existed already).
        """
        generation, previous = idempotency.last_job(key, self.jobs)
        if previous is not None and previous["status"] not in idempotency.RESTARTED_AFTER:
            return previous | {"attached": True}
        jobid = idempotency.generation_id(key, generation + 1)
        self.run_workflow(input_json, sfn=sfn or self.sfn, jobid=jobid, verbose=False, open_browser=False,
                          rerun_of=previous["jobid"] if previous else None)
        if previous is not None:
            log.info("job %s ended %s; started job %s in its place", previous["jobid"], previous["status"], jobid)
        return self.job(jobid) | {"attached": False}

    def links(self, job_id: str, expires: int = 3600) -> dict[str, str]:
        """Where a person looks at a job: `log`, `postrun` (JSON), `metrics` (the report) and `execution`.

        On local, file URLs of the objects (an orchestrator's server may serve them, see `job_file`)
        and no execution (''). On AWS, the Step Functions console page of the execution and
        pre-signed GET URLs of the log-bucket objects, valid for `expires` seconds (objects are
        never made public). An object that does not exist yet gets its URL all the same.
        """
        return job_files.links(self.backend, self._record(job_id=job_id), expires)

    def job_file(self, job_id: str, name: str) -> bytes | None:
        """One of a job's files by its `links` name (`log`, `postrun`, `metrics`); None until it exists."""
        if name not in job_files.JOB_FILES:
            raise UserInputError(f"name: {name!r} is not one of {', '.join(job_files.JOB_FILES)}")
        record = self._record(job_id=job_id)
        return self.backend.store.get_bytes(record.log_bucket, protocol.key(record.jobid, job_files.JOB_FILES[name]))

    # Admin verbs -------------------------------------------------------------------------------------
    def setup_tibanna_env(self, buckets: str | Iterable[str] = "", usergroup_tag: str = "default",
                          no_randomize: bool = False, do_not_delete_public_access_block: bool = False,
                          verbose: bool = False) -> str:
        """Create a usergroup with access to the given buckets; returns its name."""
        return self.backend.setup_tibanna_env(_bucket_list(buckets), usergroup_tag, no_randomize,
                                              do_not_delete_public_access_block)

    def deploy_unicorn(self, suffix: str | None = None, no_setup: bool = False, buckets: str | Iterable[str] = "",
                       no_setenv: bool = False, usergroup: str = "", do_not_delete_public_access_block: bool = False,
                       deploy_costupdater: bool = False, subnets: list[str] | None = None,
                       security_groups: list[str] | None = None, quiet: bool = False, **options: Any) -> str:
        """Create or update a step function (a unicorn) and its workers; returns its name."""
        name = self.backend.deploy_unicorn(suffix, no_setup, _bucket_list(buckets), no_setenv, usergroup,
                                           do_not_delete_public_access_block, deploy_costupdater, subnets,
                                           security_groups, **options)
        if not quiet:
            log.info("deployed step function %s", name)
        return name

    def deploy_core(self, name: str, suffix: str | None = None, usergroup: str = "",
                    subnets: list[str] | None = None, security_groups: list[str] | None = None,
                    quiet: bool = False) -> list[str]:
        """Redeploy a unicorn's workers: `all`, `unicorn`, `run_task_awsem` or `check_task_awsem`."""
        deployed = self.backend.deploy_core(name, suffix, usergroup, subnets, security_groups)
        if not quiet:
            log.info("deployed %s", ", ".join(deployed))
        return deployed

    def users(self) -> list[dict[str, str]]:
        """Users and their usergroups."""
        return self.backend.users()

    def add_user(self, user: str, usergroup: str | None = None, usegroup: str | None = None) -> None:
        """Add a user to a usergroup (the full group name, e.g. default_3465)."""
        group = _one_of(usergroup=usergroup, usegroup=usegroup)
        if not user or not group:
            raise UserInputError("user and usergroup: both are required")
        self.backend.add_user(user, group)

    def cleanup(self, user_group_name: str | None = None, suffix: str | None = None, ignore_errors: bool = True,
                do_not_remove_iam_group: bool = False, purge_history: bool = False, verbose: bool = False,
                usergroup: str | None = None) -> list[str]:
        """Remove a usergroup's step functions, its group unless asked not to, and optionally its jobs."""
        group = _one_of(user_group_name=user_group_name, usergroup=usergroup)
        if not group:
            raise UserInputError("user_group_name: required (e.g. default_3465)")
        if group.startswith("tibanna_"):
            raise UserInputError(f"user_group_name: give the group without the 'tibanna_' prefix "
                                 f"(e.g. {group[len('tibanna_'):]})")
        removed = self.backend.cleanup(group, suffix, ignore_errors, do_not_remove_iam_group, purge_history)
        if verbose:
            log.info("removed: %s", ", ".join(removed) or "nothing")
        return removed


def _bucket_list(buckets: str | Iterable[str]) -> list[str]:
    if isinstance(buckets, str):
        return [b.strip() for b in buckets.split(",") if b.strip()]
    return [b for b in buckets if b]
