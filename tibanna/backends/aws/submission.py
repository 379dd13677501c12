"""Submission on AWS: a batch of parsed jobs claimed in the index, then started as executions.

Each job id is claimed by a conditional put (100 to a transaction), so a job starts once whoever
submits it (docs/design.md 4): a known id gets the running submission back, or, claimed by a
submitter that died, is started under its claimed name. Then run.json and StartExecution per job
from a small thread pool (botocore's adaptive retries pace it when AWS throttles); a run name
another job took gets a fresh one. Upstream options this backend does not carry out are refused
first, rather than dropped.
"""
from __future__ import annotations

import json
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from tibanna import protocol
from tibanna.backends.aws import index as idx, names
from tibanna.exceptions import UserInputError
from tibanna.names import costupdater_name
from tibanna.storage.s3 import Clients, S3Store, error_code

log = logging.getLogger(__name__)

SUBMIT_WORKERS = 16
_UUID_LENGTH = 36

# Upstream options this backend does not carry out yet: refused at submission rather than dropped.
_NOT_HONOURED = {
    "kms_key_id": "SSE-KMS uploads with a customer key are not supported yet; remove it (uploads get the "
                  "buckets' default encryption)",
    "encrypt_s3_upload": "SSE-KMS uploads are not supported yet; remove it, or set default encryption "
                         "(SSE-KMS) on the output and log buckets, which applies to every upload",
    "public_postrun_json": "a public-read postrun JSON is not supported (bucket ACLs are disabled by default); "
                           "remove it and share the log bucket object by a bucket policy",
}


class Submitter:
    """Submits jobs to their step functions, each job id once; remembers which have no cost updater."""

    def __init__(self, clients: Clients, store: S3Store, index: idx.Index) -> None:
        self.clients, self.store, self.index = clients, store, index
        self._without_costupdater: set[str] = set()  # step functions seen to have no cost updater

    @property
    def sfn(self) -> Any:
        return self.clients("stepfunctions")

    def _sfn_arn(self, sfn: str) -> str:
        return names.state_machine_arn(self.clients.region, self.clients.account, sfn)

    def submit(self, jobs: list[dict], rerun_of: str | None, secrets: dict[str, dict[str, str]]) -> list[dict]:
        """Claim every job, then start each (see the module's docstring); the submissions, in order."""
        for job in jobs:
            refuse_unhonoured(job)
        for jobid, values in secrets.items():  # the instance's agent reads and deletes it
            bucket = next(job["config"]["log_bucket"] for job in jobs if job["jobid"] == jobid)
            self.store.put_text(bucket, protocol.key(jobid, protocol.SECRET_ENV), json.dumps(values))
        root = None
        if rerun_of:
            first = self.index.get(rerun_of)
            root = (first or {}).get(idx.RERUN_OF) or rerun_of
        stamp = protocol.now_stamp()
        items = [{names.TABLE_KEY: job["jobid"], idx.EXECUTION_NAME: job["_tibanna"]["run_name"],
                  idx.SFN: job["_tibanna"]["sfn"], idx.LOG_BUCKET: job["config"]["log_bucket"],
                  idx.TIME_STAMP: stamp, idx.RERUN_OF: root} for job in jobs]
        taken = self.index.claim(items)
        if len(jobs) == 1:
            return [self._submit_one(jobs[0], jobs[0]["jobid"] in taken)]
        with ThreadPoolExecutor(min(SUBMIT_WORKERS, len(jobs))) as pool:
            return list(pool.map(lambda job: self._submit_one(job, job["jobid"] in taken), jobs))

    def _submit_one(self, job: dict, known: bool) -> dict:
        """Start a claimed job; for a known job id, return the running submission (or resume a lost one)."""
        if known:
            item = self.index.get(job["jobid"]) or {}
            name = item.get(idx.EXECUTION_NAME)
            existing = None
            if name:
                exec_arn = protocol.execution_arn(self.clients.region, self.clients.account, item[idx.SFN], name)
                existing = execution_input(self.sfn, exec_arn)
            if existing is not None:
                log.info("job %s was already submitted; not starting it again", job["jobid"])
                return existing
            if name:  # claimed but never started (the submitter died): start it under the claimed name
                rename_job(job, name, self.clients.region, self.clients.account)
        return self._start(job)

    def _start(self, job: dict) -> dict:
        """run.json first, then StartExecution (and the cost updater's); a name taken by another job
        gets a fresh one."""
        jobid, tib = job["jobid"], job["_tibanna"]
        while True:
            self.store.put_bytes(job["config"]["log_bucket"], protocol.key(jobid, protocol.RUN_JSON),
                                 protocol.dump_json(protocol.build_run_json(job)))
            try:
                self.sfn.start_execution(stateMachineArn=self._sfn_arn(tib["sfn"]), name=tib["run_name"],
                                         input=json.dumps(job))
            except ClientError as err:
                if error_code(err) != "ExecutionAlreadyExists":
                    raise
            else:
                self._start_costupdater(job)
                return job
            existing = execution_input(self.sfn, tib["exec_arn"])
            if existing is not None and existing.get("jobid") == jobid:
                return existing  # a concurrent submitter of this job id started it first
            rename_job(job, fresh_run_name(tib["run_name"]), self.clients.region, self.clients.account)
            self.index.update(jobid, **{idx.EXECUTION_NAME: tib["run_name"]})

    def _start_costupdater(self, job: dict) -> None:
        """Start `<sfn>_costupdater` for the job under the job's run name, as upstream does, when that
        state machine exists (asked once per step function); its failure never fails the submission."""
        tib = job["_tibanna"]
        costupdater = costupdater_name(tib["sfn"])
        if costupdater in self._without_costupdater:
            return
        event = {"sfn_arn": tib["exec_arn"], "log_bucket": job["config"]["log_bucket"], "job_id": job["jobid"],
                 "aws_region": self.clients.region}
        try:
            self.sfn.start_execution(stateMachineArn=self._sfn_arn(costupdater), name=tib["run_name"],
                                     input=json.dumps(event))
        except ClientError as err:
            if error_code(err) == "StateMachineDoesNotExist":
                self._without_costupdater.add(costupdater)
            elif error_code(err) != "ExecutionAlreadyExists":
                log.warning("job %s: the cost updater did not start: %s", job["jobid"], err)


def execution_input(sfn: Any, exec_arn: str) -> dict | None:
    """The job an execution was started with (its input); None when there is no such execution."""
    try:
        return json.loads(sfn.describe_execution(executionArn=exec_arn)["input"])
    except ClientError as err:
        if error_code(err) == "ExecutionDoesNotExist":
            return None
        raise


def rename_job(job: dict, run_name: str, region: str, account: str) -> None:
    """Give a prepared job another execution name (its ARN and console URL follow)."""
    tib = job["_tibanna"]
    new_arn = protocol.execution_arn(region, account, tib["sfn"], run_name)
    tib["url"] = tib.get("url", "").replace(tib["exec_arn"], new_arn)
    tib["run_name"] = job["config"]["run_name"] = run_name
    tib["exec_arn"] = new_arn


def fresh_run_name(run_name: str) -> str:
    """Upstream's randomize_run_name: drop a trailing UUID, append a new one, keep within 80 characters."""
    base = run_name[:-_UUID_LENGTH - 1] if len(run_name) > _UUID_LENGTH and run_name[-_UUID_LENGTH - 1] == "-" \
        else run_name
    return f"{base[:names.MAX_RUN_NAME - _UUID_LENGTH - 1]}-{uuid.uuid4()}"


def refuse_unhonoured(job: dict) -> None:
    """A clear error for an upstream option this backend would otherwise silently ignore."""
    config, args = job["config"], job["args"]
    for field, reason in _NOT_HONOURED.items():
        if config.get(field):
            raise UserInputError(f"config.{field}: {reason}")
    for section in ("input_files", "secondary_files"):
        for argname, spec in (args.get(section) or {}).items():
            if isinstance(spec, dict) and spec.get("mount"):
                raise UserInputError(f"args.{section}.{argname}.mount: mounting a bucket (mountpoint-s3) is not "
                                     "supported on AWS yet; remove mount: true to have the input copied")
    for source, target in (args.get("output_target") or {}).items():
        if isinstance(target, dict) and target.get("tag"):
            raise UserInputError(f"args.output_target.{source}.tag: object tags on outputs are not supported "
                                 "on AWS yet; remove the tag")
