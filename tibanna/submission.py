"""Job descriptions made jobs and handed to a backend: what `API.run_workflow` and `rerun` do.

Each description is parsed (through `jobspec`, the only parser) and given its job id, run name,
execution ARN and URL (docs/design.md 3.3); it is checked against the buckets its step function
may use (docs/design.md 3.4), and its secret input_env values are taken apart before anything
is stored (docs/design.md 4). Its local workflow files go to its log bucket, where the worker
finds them, only when it is really submitted.
"""
from __future__ import annotations

import logging
import os
import secrets
import string
import time
import uuid
from pathlib import Path

from tibanna import jobspec, protocol, secret_env, settings
from tibanna.backends.base import Backend
from tibanna.exceptions import UserInputError
from tibanna.storage import ObjectStore

log = logging.getLogger(__name__)


def create_jobid() -> str:
    """A random 12-character job id, as upstream makes them."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(protocol.JOBID_LENGTH))


def console_url(region: str, exec_arn: str) -> str:
    """The Step Functions console page of an AWS execution."""
    return f"https://console.aws.amazon.com/states/home?region={region}#/executions/details/{exec_arn}"


def prepare(backend: Backend, input_json: dict | str | os.PathLike, sfn: str | None, env: str | None,
            jobid: str | None) -> tuple[dict, dict[str, str]]:
    """Parse one description and give it its job id, run name and execution ARN.

    Returns it with its secrets blanked or masked, and the secret input_env values apart."""
    job = jobspec.parse(input_json, jobid=jobid, **settings.description_defaults())
    job["jobid"] = job.get("jobid") or create_jobid()
    sfn = sfn or backend.default_sfn()
    backend.check_sfn(sfn, buckets_of(job))
    config = job["config"]
    run_name = config.get("run_name") or f"generic_{uuid.uuid4()}"
    config["run_name"] = run_name
    exec_arn = protocol.execution_arn(backend.region, backend.account, sfn, run_name)
    url = console_url(backend.region, exec_arn) if backend.name == "aws" \
        else f"s3://{config['log_bucket']}/{job['jobid']}{protocol.LOG}"
    job["_tibanna"] = {"run_id": str(uuid.uuid4()), "env": env, "run_type": "generic", "run_name": run_name,
                       "sfn": sfn, "exec_arn": exec_arn, "url": url}
    return secret_env.withhold(jobspec.redacted(job))  # secrets never reach the index, the log bucket or the caller


def submit(backend: Backend, prepared: list[tuple[dict, dict[str, str]]], *, rerun_of: str | None,
           sleep: float | None, verbose: bool, dryrun: bool) -> list[dict]:
    """Hand prepared jobs to the backend (after their local workflow files); only returned on a dry run."""
    jobs = [job for job, _ in prepared]
    if dryrun:
        return jobs
    for job in jobs:
        upload_local_workflow(backend.store, job)
    withheld = {job["jobid"]: values for job, values in prepared if values}
    results = backend.submit(jobs, rerun_of=rerun_of, secrets=withheld)
    for result in results:
        if verbose:
            log.info("JOBID %s submitted", result["jobid"])
            log.info("EXECUTION ARN = %s", result["_tibanna"]["exec_arn"])
        if sleep:
            time.sleep(sleep)
    return results


def upload_local_workflow(store: ObjectStore, job: dict) -> None:
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
        store.put_file(bucket, prefix + name, path)
    args[f"{lang}_directory_url"] = f"s3://{bucket}/{prefix}"
    del args[f"{lang}_directory_local"]


def buckets_of(job: dict) -> set[str]:
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
