"""`run_task_awsem`: check the job and its dependencies, then launch its instance."""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from tibanna import jobspec, protocol, settings
from tibanna.backends.aws import build, index as idx, lambdas, names
from tibanna.backends.aws.backend import AWSBackend
from tibanna.backends.aws.launch import Launcher
from tibanna.backends.aws.userdata import Bootstrap
from tibanna.exceptions import (DependencyFailedException, DependencyStillRunningException, EC2LaunchException,
                                JobAbortedException)
from tibanna.storage.s3 import S3Store, error_code

log = logging.getLogger(__name__)

FAILED_STATUSES = (protocol.FAILED, protocol.ABORTED, protocol.TIMED_OUT)


def handler(event: dict, context: Any = None) -> dict:
    return run_task(event, lambdas.backend())


def run_task(event: dict, backend: AWSBackend, now: dt.datetime | None = None) -> dict:
    """The execution's input with `config.instance_id/instance_ip/availability_zone/start_time` added."""
    job = jobspec.parse(event, jobid=event.get("jobid"), **settings.description_defaults())
    jobid, config = job["jobid"], job["config"]
    store = backend.store
    with lambdas.job_ends_on_failure(store, jobid, config["log_bucket"]):
        if store.exists(config["log_bucket"], protocol.key(jobid, protocol.ABORTED_MARKER)):
            raise JobAbortedException("job aborted")
        check_dependency(backend, job["args"].get("dependency") or {})
        if not store.exists(config["log_bucket"], protocol.key(jobid, protocol.RUN_JSON)):
            store.put_bytes(config["log_bucket"], protocol.key(jobid, protocol.RUN_JSON),
                            protocol.dump_json(protocol.build_run_json(job)))
        launcher = Launcher(backend.clients, store, job, bootstrap(store, config["log_bucket"]),
                            str(settings.AWS_S3_ROLE_NAME.get()))
        launched = launcher.launch()
        config.update(instance_id=launched.instance_id, instance_ip=launched.instance_ip,
                      availability_zone=launched.availability_zone, start_time=protocol.now_stamp(now))
        try:
            backend.index.update(jobid, **{idx.INSTANCE_ID: launched.instance_id})
        except ClientError as err:  # the index is a convenience here: the job runs regardless
            log.warning("job %s: cannot record instance %s in %s: %s", jobid, launched.instance_id, names.TABLE, err)
        log.info("job %s: launched %s (%s) in %s", jobid, launched.instance_id, launched.instance_type,
                 launched.availability_zone)
    return job


def check_dependency(backend: AWSBackend, dependency: dict) -> None:
    """Fail if a job this one depends on failed or is unknown; wait (retried) while one runs."""
    job_ids, exec_arns = list(dependency.get("job_id") or []), list(dependency.get("exec_arn") or [])
    if not job_ids and not exec_arns:
        return
    statuses = {r.jobid: r.status for r in backend.get_many(job_ids)}
    for arn in exec_arns:
        record = backend.get(exec_arn=arn)
        statuses[arn] = record.status if record else protocol.FAILED
    failed = [d for d in job_ids + exec_arns if statuses.get(d, protocol.FAILED) in FAILED_STATUSES]
    if failed:
        raise DependencyFailedException("A Job that this job is dependent on failed: " + ", ".join(failed))
    running = [d for d in job_ids + exec_arns if statuses[d] == protocol.RUNNING]
    if running:
        raise DependencyStillRunningException("Dependency is still running: " + ", ".join(running))


def bootstrap(store: S3Store, bucket: str) -> Bootstrap:
    """Put this Lambda's agent bundle (checked against its sha256) in the log bucket, where the instance reads it."""
    path, sha256 = Path(os.environ[build.BUNDLE_PATH_ENV]), os.environ[build.BUNDLE_SHA256_ENV]
    arches = tuple(os.environ[build.BUNDLE_ARCHES_ENV].split(","))
    key = f"{names.BOOTSTRAP_PREFIX}{sha256}/{path.name}"
    if not store.exists(bucket, key):
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise EC2LaunchException(f"the agent's bundle {path.name} does not match its sha256; redeploy")
        try:
            store.put_bytes(bucket, key, data)
        except ClientError as err:
            raise EC2LaunchException(f"cannot upload the agent to s3://{bucket}/{key}: {error_code(err)}") from err
    return Bootstrap(bucket, key, sha256, arches, os.environ[build.BUNDLE_PYTHON_ENV])
