"""The public API: `from tibanna.core import API; API().run_workflow(...)`.

A thin facade over a backend (docs/design.md 3.4): it parses job descriptions (through `jobspec`, the
only parser), names jobs and executions, and shapes what upstream's API returns (docs/design.md 3.3).
The backend is `API(backend=...)`, else `TIBANNA_BACKEND`, else `local`.
"""
from __future__ import annotations

import copy
import datetime as dt
import functools
import json
import logging
import os
import secrets
import string
import time
import uuid
from pathlib import Path
from typing import Any, Iterable

from tibanna import exceptions, jobspec, protocol, secret_env, settings
from tibanna.backends import substituted
from tibanna.backends.base import Backend, JobRecord
from tibanna.clock import REAL_CLOCK, Clock
from tibanna.exceptions import TibannaError, UserInputError
from tibanna.storage import LocalStore

log = logging.getLogger(__name__)

BACKENDS = ("local", "aws")
LOCAL_TIME_FORMAT = "%Y-%m-%d %H:%M"
SHORT_COLUMNS = ("jobid", "status", "name", "start_time", "stop_time")
LONG_COLUMNS = SHORT_COLUMNS + ("instance_id", "instance_start_time", "instance_type", "instance_status",
                                "ip", "key", "password")
RERUN_OVERRIDES = ("instance_type", "shutdown_min", "ebs_size", "ebs_type", "ebs_iops", "ebs_throughput", "key_name")
# A job's files an orchestrator links to, by name (see API.links).
JOB_FILES = {"log": protocol.LOG, "postrun": protocol.POSTRUN_JSON, "metrics": protocol.METRICS_DIR + "metrics.html"}
RESTARTED_AFTER = (protocol.FAILED, protocol.TIMED_OUT, protocol.ABORTED)  # submit_or_attach starts a new job
_GENERATION_BATCH = 10  # job ids of one key looked up per query


def create_jobid() -> str:
    """A random 12-character job id, as upstream makes them."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(protocol.JOBID_LENGTH))


def _local_time(epoch: float | None) -> str:
    return _local_minute(int(epoch) // 60) if epoch else "-"


@functools.lru_cache(maxsize=4096)
def _local_minute(minute: int) -> str:
    """A minute since the epoch in local time; cached, as a listing's jobs share few minutes."""
    return dt.datetime.fromtimestamp(minute * 60).strftime(LOCAL_TIME_FORMAT)


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
    def _prepare(self, input_json: dict | str | os.PathLike, sfn: str | None, env: str | None,
                 jobid: str | None) -> tuple[dict, dict[str, str]]:
        """Parse one description and give it its job id, run name and execution ARN.

        Returns it with its secrets blanked or masked, and the secret input_env values apart."""
        job = jobspec.parse(input_json, jobid=jobid, **settings.description_defaults())
        job["jobid"] = job.get("jobid") or create_jobid()
        sfn = sfn or self.backend.default_sfn()
        self.backend.check_sfn(sfn, _buckets_of(job))
        config = job["config"]
        run_name = config.get("run_name") or f"generic_{uuid.uuid4()}"
        config["run_name"] = run_name
        exec_arn = protocol.execution_arn(self.backend.region, self.backend.account, sfn, run_name)
        job["_tibanna"] = {"run_id": str(uuid.uuid4()), "env": env, "run_type": "generic", "run_name": run_name,
                           "sfn": sfn, "exec_arn": exec_arn, "url": self._execution_url(exec_arn, job)}
        return secret_env.withhold(jobspec.redacted(job))  # secrets never reach the index, the log bucket or the caller

    def _execution_url(self, exec_arn: str, job: dict) -> str:
        if self.backend.name == "aws":
            return (f"https://console.aws.amazon.com/states/home?region={self.backend.region}"
                    f"#/executions/details/{exec_arn}")
        return f"s3://{job['config']['log_bucket']}/{job['jobid']}{protocol.LOG}"

    def _upload_local_workflow(self, job: dict) -> None:
        """`<lang>_directory_local` files go to `<jobid>.workflow/` and the url points there (upstream)."""
        args = job["args"]
        lang = protocol.language_family(args["language"])  # a shell job has no workflow files
        local_dir = args.get(f"{lang}_directory_local")
        if not local_dir:
            return
        bucket = job["config"]["log_bucket"]
        prefix = protocol.key(job["jobid"], protocol.WORKFLOW_DIR)
        names = [args.get(f"{lang}_main_filename")] + list(args.get(f"{lang}_child_filenames") or [])
        for name in filter(None, names):
            path = Path(local_dir) / name
            if not path.is_file():
                raise UserInputError(f"args.{lang}_directory_local: {path} does not exist")
            self.backend.store.put_file(bucket, prefix + name, path)
        args[f"{lang}_directory_url"] = f"s3://{bucket}/{prefix}"
        del args[f"{lang}_directory_local"]

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
        prepared = [self._prepare(inp, sfn, env, jid) for inp, jid in zip(inputs, jobids)]
        jobs = [job for job, _ in prepared]
        if dryrun:
            return jobs
        for job in jobs:
            self._upload_local_workflow(job)
        secrets = {job["jobid"]: values for job, values in prepared if values}
        results = self.backend.submit(jobs, rerun_of=rerun_of, secrets=secrets)
        for result in results:
            if verbose:
                log.info("JOBID %s submitted", result["jobid"])
                log.info("EXECUTION ARN = %s", result["_tibanna"]["exec_arn"])
            if sleep:
                time.sleep(sleep)
        return results

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
        if record.status != protocol.SUCCEEDED:
            return None
        postrun = self.backend.store.get_text(record.log_bucket, protocol.key(record.jobid, protocol.POSTRUN_JSON))
        return (record.description or {}) | {"postrunjson": json.loads(postrun) if postrun else None}

    def info(self, job_id: str) -> dict | None:
        """The job's index entry, in upstream's DynamoDB item shape; None for an unknown job."""
        record = self.backend.get(job_id=job_id)
        if record is None:
            return None
        return {"Job Id": record.jobid, "Execution Name": record.run_name, "Step Function": record.sfn,
                "Log Bucket": record.log_bucket,
                "Time Stamp": protocol.now_stamp(dt.datetime.fromtimestamp(record.start_time, dt.timezone.utc)),
                "instance_id": record.instance_id}

    def stat(self, sfn: str | None = None, status: str | None = None, verbose: bool = False, n: int | None = None,
             job_ids: list[str] | None = None, numbers: int | None = None, long: bool | None = None) -> list[dict]:
        """Jobs as upstream's `stat` rows: newest first; `verbose`/`long` adds the instance columns."""
        n = _one_of(n=n, numbers=numbers)
        if job_ids and (n is not None or sfn or status):
            raise UserInputError("job_ids: cannot be combined with n, sfn or status")
        if status is not None and status not in protocol.STATUSES:
            raise UserInputError(f"status: {status!r} is not one of {'|'.join(protocol.STATUSES)}")
        if n is not None and (not isinstance(n, int) or n < 0):
            raise UserInputError(f"n: {n!r} is not a number of lines")
        if job_ids:
            records = self.backend.get_many(list(job_ids))
        else:
            records = self.backend.list(sfn or self.backend.default_sfn(), status, n)
        return [_stat_row(r, bool(verbose or long)) for r in records]

    def log(self, exec_arn: str | None = None, job_id: str | None = None, exec_name: str | None = None,
            sfn: str | None = None, postrunjson: bool = False, runjson: bool = False, top: bool = False,
            top_latest: bool = False, inputjson: bool = False, logbucket: str | None = None,
            quiet: bool = False) -> str:
        """A job's log (or postrun JSON, run JSON, top, latest top) as text; '' until it exists."""
        suffix = (protocol.POSTRUN_JSON if postrunjson else protocol.RUN_JSON if runjson else protocol.TOP if top
                  else protocol.TOP_LATEST if top_latest else protocol.INPUT_JSON if inputjson else protocol.LOG)
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
        if record.status != protocol.RUNNING:
            log.info("job %s is %s; nothing to kill", record.jobid, record.status)
            return
        self.backend.kill(record, soft=soft)
        log.info("killed job %s", record.jobid)

    def kill_all(self, sfn: str | None = None, soft: bool = False) -> list[str]:
        """Kill every running job of a step function; returns their ids."""
        records = self.backend.list(sfn or self.backend.default_sfn(), protocol.RUNNING)
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
        template = copy.deepcopy(record.description or {})
        wanted_app = _one_of(app_name_filter=app_name_filter, appname_filter=appname_filter)
        if wanted_app and wanted_app not in (template.get("app_name"), template.get("args", {}).get("app_name")):
            log.info("job %s is not of app %s; not rerun", record.jobid, wanted_app)
            return None
        for field in ("jobid", "_tibanna"):
            template.pop(field, None)
        config = template.setdefault("config", {})
        config.pop("run_name", None)
        overrides = dict(override_config or {})
        for field in RERUN_OVERRIDES:
            value = locals()[field]
            if value is not None:
                overrides[field] = value
        if ebs_size is not None and not str(ebs_size).endswith("x"):
            overrides["ebs_size"] = int(ebs_size)
        if overrides.get("ebs_type") == "gp2":
            overrides["ebs_iops"] = ""
        if use_spot or do_not_use_spot:
            overrides["spot_instance"] = bool(use_spot)
        if name:
            overrides["run_name"] = name
        config.update(overrides)
        _restore_secrets(template)
        return self._submit([template], sfn or record.sfn, None, [jobid], sleep, verbose, False,
                            rerun_of=record.jobid)[0]

    def rerun_many(self, sfn: str | None = None, stopdate: str = "13Feb2018", stophour: int = 13,
                   stopminute: int = 0, offset: int = 0, sleeptime: float | None = None, status: str = "FAILED",
                   **rerun_options: Any) -> list[dict]:
        """Rerun every job of `sfn` with `status` that stopped after the given time.

        The time is read in the system time zone; `offset` (hours) is added, as python-api.rst
        defines it (with the system on UTC, stophour=12 and offset=5 mean 17:00 UTC, as upstream).
        """
        import pendulum

        try:
            day = dt.datetime.strptime(stopdate, "%d%b%Y")
            cutoff = pendulum.datetime(day.year, day.month, day.day, int(stophour), int(stopminute),
                                       tz=pendulum.local_timezone()).add(hours=int(offset))
        except (ValueError, TypeError) as err:
            raise UserInputError(f"stopdate/stophour/stopminute/offset: {err} (e.g. stopdate='14Feb2018', "
                                 "stophour=15)") from None
        if status not in protocol.STATUSES:
            raise UserInputError(f"status: {status!r} is not one of {'|'.join(protocol.STATUSES)}")
        results = []
        for record in self.backend.list(sfn or self.backend.default_sfn(), status, stopped_after=cutoff.timestamp()):
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
    def _postrun(self, record: JobRecord) -> dict | None:
        text = self.backend.store.get_text(record.log_bucket, protocol.key(record.jobid, protocol.POSTRUN_JSON))
        return json.loads(text) if text else None

    def plot_metrics(self, job_id: str, sfn: str | None = None, open_browser: bool = True,
                     force_upload: bool = False, update_html_only: bool = False, endtime: str = "",
                     filesystem: str = "/dev/nvme1n1", instance_id: str = "", directory: str | None = None) -> str:
        """Write the job's metrics report (tsvs and a self-contained metrics.html) into
        `<jobid>.metrics/` and return where it is. A complete job's report is locked unless
        `force_upload`; `update_html_only` re-renders the page from the stored tsvs.
        `filesystem` and `directory` are upstream's and not needed here (the agent measures the
        job's own disk; nothing is written outside the log bucket)."""
        from tibanna import metrics

        record = self._record(job_id=job_id, sfn=sfn)
        postrun = self._postrun(record)
        runjson = self.log(job_id=record.jobid, runjson=True, quiet=True)
        info = metrics.job_info(postrun, json.loads(runjson) if runjson else None)
        series = None
        if not update_html_only:
            series = self.backend.metric_series(record, postrun, info.start, endtime or info.end, instance_id)
        url = metrics.plot_metrics_to_store(
            self.backend.store, record.log_bucket, record.jobid, job_info=info, samples=series,
            force_upload=force_upload, update_html_only=update_html_only, endtime=endtime or None,
            estimate_cost=lambda: self.cost_estimate(job_id=record.jobid, force=True))
        if open_browser and (os.environ.get("DISPLAY") or os.environ.get("BROWSER")):
            import webbrowser

            webbrowser.open(url)
        return url

    def cost(self, job_id: str, sfn: str | None = None, update_tsv: bool = False) -> float | None:
        """What the job cost (AWS: Cost Explorer; local: the local price table); None before it ends."""
        from tibanna.metrics.report_tsv import update_cost_tsv

        record = self._record(job_id=job_id, sfn=sfn)
        postrun = self._postrun(record)
        if postrun is None:
            log.info("the job has no postrun JSON yet; no cost")
            return None
        cost = self.backend.actual_cost(postrun)
        if update_tsv:
            update_cost_tsv(self.backend.store, record.log_bucket, record.jobid, cost)
        return cost

    def cost_estimate(self, job_id: str | None = None, update_tsv: bool = False, force: bool = False,
                      input_json: dict | str | os.PathLike | None = None,
                      hours: float | None = None) -> tuple[float, str]:
        """`(cost, type)` with type `actual cost`, `immediate estimate`, `retrospective estimate`
        or `NA`. With `input_json` and `hours`, what that job would cost before it runs."""
        from tibanna.cost import ACTUAL, NA, cost_estimate_for_description, estimate_job_cost
        from tibanna.metrics.report_tsv import update_cost_estimate_tsv

        if input_json is not None:
            if hours is None or float(hours) < 0:
                raise UserInputError("hours: give the expected run time in hours with input_json")
            return cost_estimate_for_description(jobspec.parse(input_json, **settings.description_defaults()),
                                                 float(hours),
                                                 self.backend.price_source(), region=self.backend.region)
        if not job_id:
            raise UserInputError("job_id: required (or input_json and hours for an estimate before a run)")
        record = self._record(job_id=job_id)
        postrun = self._postrun(record)
        if postrun is None:
            return 0.0, NA
        estimate = (0.0, NA)
        if not force:
            actual = self.backend.actual_cost(postrun)
            if actual > 0:
                estimate = (actual, ACTUAL)
        if estimate[1] == NA:
            estimate = estimate_job_cost(postrun, self.backend.price_source(), region=self.backend.region)
        if update_tsv:
            update_cost_estimate_tsv(self.backend.store, record.log_bucket, record.jobid, *estimate)
        return estimate

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
        return [_job_dict(record) for record in self.backend.get_many(list(job_ids))]

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
        previous, generation = None, 0
        while True:
            ids = [_generation_id(key, n) for n in range(generation + 1, generation + 1 + _GENERATION_BATCH)]
            found = {j["jobid"]: j for j in self.jobs(ids)}
            known = [n for n, jobid in enumerate(ids, start=generation + 1) if jobid in found]
            if known:
                generation, previous = known[-1], found[_generation_id(key, known[-1])]
            if len(known) < _GENERATION_BATCH:
                break
        if previous is not None and previous["status"] not in RESTARTED_AFTER:
            return previous | {"attached": True}
        jobid = _generation_id(key, generation + 1)
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
        record = self._record(job_id=job_id)
        keys = {name: protocol.key(record.jobid, suffix) for name, suffix in JOB_FILES.items()}
        store = self.backend.store
        if isinstance(store, LocalStore):
            urls = {name: store.path(record.log_bucket, k).resolve().as_uri() for name, k in keys.items()}
            return urls | {"execution": ""}
        s3 = store.s3
        urls = {name: s3.generate_presigned_url("get_object", Params={"Bucket": record.log_bucket, "Key": k},
                                                ExpiresIn=int(expires)) for name, k in keys.items()}
        return urls | {"execution": self._execution_url(record.exec_arn, {})}

    def job_file(self, job_id: str, name: str) -> bytes | None:
        """One of a job's files by its `links` name (`log`, `postrun`, `metrics`); None until it exists."""
        if name not in JOB_FILES:
            raise UserInputError(f"name: {name!r} is not one of {', '.join(JOB_FILES)}")
        record = self._record(job_id=job_id)
        return self.backend.store.get_bytes(record.log_bucket, protocol.key(record.jobid, JOB_FILES[name]))

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


def _restore_secrets(description: dict) -> None:
    """A rerun's secret input_env values, which were never kept: from this process's environment."""
    env = description.get("args", {}).get("input_env") or {}
    for name in secret_env.withheld_names(env):
        if name not in os.environ:
            raise UserInputError(f"args.input_env.{name}: a secret value is not kept after its job; "
                                 f"set {name} in the environment to rerun it")
        env[name] = os.environ[name]


def _stat_row(record: JobRecord, long: bool) -> dict[str, str]:
    """One `stat` row keyed by upstream's columns; the password column is always '-' (never shown)."""
    row = {"jobid": record.jobid, "status": record.status, "name": record.name,
           "start_time": _local_time(record.start_time), "stop_time": _local_time(record.stop_time)}
    if long:
        row.update({"instance_id": record.instance_id or "-",
                    "instance_start_time": _local_time(record.instance_start_time),
                    "instance_type": record.instance_type or "-", "instance_status": record.instance_status or "-",
                    "ip": record.ip or "-", "key": record.key or "-", "password": "-"})
    return row


def _bucket_list(buckets: str | Iterable[str]) -> list[str]:
    if isinstance(buckets, str):
        return [b.strip() for b in buckets.split(",") if b.strip()]
    return [b for b in buckets if b]


def _buckets_of(job: dict) -> set[str]:
    """Every bucket a job reads or writes: what its step function must be allowed to use."""
    args, config = job.get("args", {}), job["config"]
    found = {config["log_bucket"], args.get("output_S3_bucket")}
    for section in ("input_files", "secondary_files"):
        for spec in (args.get(section) or {}).values():
            if isinstance(spec, dict):
                found.add(spec.get("bucket_name"))
    found.update(t.bucket for t in jobspec.output_targets(args))
    for field, value in args.items():
        if field.endswith("_directory_url") and isinstance(value, str) and value.startswith("s3://"):
            found.add(value[5:].split("/", 1)[0])
    return {b for b in found if b}


def _job_dict(record: JobRecord) -> dict[str, Any]:
    return {"jobid": record.jobid, "status": record.status, "error": record.error, "cause": record.cause,
            "name": record.name, "sfn": record.sfn, "exec_arn": record.exec_arn, "log_bucket": record.log_bucket,
            "rerun_of": record.rerun_of, "start_time": record.start_time, "stop_time": record.stop_time}


def _generation_id(key: str, generation: int) -> str:
    """The id of the n-th job of an idempotency key: `key`, `key-2`, `key-3`, ..."""
    return key if generation == 1 else f"{key}-{generation}"


def job_error(job: dict[str, Any], log_text: str = "", log_tail: int = 20) -> TibannaError:
    """The exception of a job that did not succeed: its own class by error name (TibannaError for
    an unknown or missing name), with its status, cause and the last `log_tail` lines of `log_text`."""
    error_class = getattr(exceptions, job.get("error") or "", None)
    if not (isinstance(error_class, type) and issubclass(error_class, TibannaError)):
        error_class = TibannaError
    message = f"job {job['jobid']} {job['status']}"
    message += f" with {job['error']}" if job.get("error") else ""
    message += f": {job['cause']}" if job.get("cause") else ""
    tail = log_text.splitlines()[-log_tail:] if log_tail > 0 else []
    if tail:
        message += f"\nlast {len(tail)} lines of its log:\n" + "\n".join(tail)
    return error_class(message)
