"""`check_task_awsem`: read the job's markers and instance, in upstream's order.

One ListObjectsV2 of `<jobid>.` finds every marker at once. The order: `.aborted` (ours comes
first, so a kill is honoured while the instance boots), `.job_started`, `.error`, `.success`,
then ours, `.spot_failure`; then the instance's state, idleness, and otherwise still running.
A job is idle only when the agent's samples (of the whole machine's job: the container's work
included) show it so for the whole window; with no samples in the window yet (e.g. while inputs
are staged) the idle rule is skipped, as upstream skips it without CloudWatch data points.
A spot interruption reruns the job when `config.spot_interruption_reruns` allows.
"""
from __future__ import annotations

import copy
import datetime as dt
import json
import logging
from typing import Any, NoReturn

from botocore.exceptions import ClientError

from tibanna import protocol, settings
from tibanna.backends.aws import index as idx, lambdas, names, statemachine
from tibanna.backends.aws.backend import AWSBackend
from tibanna.backends.aws.submission import rename_job
from tibanna.exceptions import (AWSEMJobErrorException, EC2IdleException, EC2StartingException,
                                EC2UnintendedTerminationException, JobAbortedException, StillRunningException,
                                job_error_message)
from tibanna.samples import read_samples_tsv
from tibanna.storage.s3 import error_code

log = logging.getLogger(__name__)

BOOT_TIMEOUT = dt.timedelta(minutes=10)
IDLE_CPU_PERCENT = 1.0
IDLE_READ_BYTES = 1000
GONE_STATES = ("shutting-down", "terminated", "stopping", "stopped")


def handler(event: dict, context: Any = None) -> dict:
    if statemachine.TASK_TOKEN_KEY in event:
        return register_callback(event, lambdas.backend())
    if statemachine.FAILURE_KEY in event:
        return end_job(event, lambdas.backend())
    return check_task(event, lambdas.backend())


def end_job(event: dict, backend: AWSBackend) -> dict:
    """The state machine's EndJob: a state failed for good (`event.failure` = {Error, Cause}), so
    terminate every instance of the job and write `.error` with the cause; returns the event."""
    failure, jobid = event[statemachine.FAILURE_KEY], event["jobid"]
    name, cause = failure.get("Error") or "States.TaskFailed", failure.get("Cause") or ""
    try:  # a Lambda's error comes as its JSON: {errorMessage, errorType, stackTrace}
        cause = json.loads(cause).get("errorMessage", cause)
    except (ValueError, AttributeError):
        pass
    ec2 = backend.clients("ec2")
    found = {event["config"].get("instance_id")} - {None, ""}
    pages = ec2.get_paginator("describe_instances").paginate(Filters=[
        {"Name": "tag:Name", "Values": [names.instance_name(jobid)]},
        {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}])
    found |= {i["InstanceId"] for page in pages for r in page["Reservations"] for i in r["Instances"]}
    if found:
        try:
            ec2.terminate_instances(InstanceIds=sorted(found))
        except ClientError as err:
            if error_code(err) != "InvalidInstanceID.NotFound":
                raise
    lambdas.end_job_with_error(backend.store, jobid, event["config"]["log_bucket"], name, str(cause))
    log.info("job %s ended by the state machine (%s); terminated %s", jobid, name, sorted(found) or "nothing")
    return event


def register_callback(event: dict, backend: AWSBackend) -> dict:
    """The state machine's WaitForJob: put its task token where the job's agent reads it. A
    failure here only costs latency (the wait times out into polling), so it does not raise."""
    state_input = event[statemachine.STATE_INPUT_KEY]
    jobid, log_bucket = state_input["jobid"], state_input["config"]["log_bucket"]
    try:
        backend.store.put_bytes(log_bucket, protocol.key(jobid, protocol.CALLBACK_JSON),
                                protocol.callback_document(event[statemachine.TASK_TOKEN_KEY], state_input))
    except ClientError as err:
        log.warning("job %s: cannot hand the task token to the job (%s); it will be polled", jobid, error_code(err))
        return {"registered": False}
    return {"registered": True}


def check_task(event: dict, backend: AWSBackend, now: dt.datetime | None = None) -> dict:
    """The execution's input plus `postrunjson` once the job succeeded; otherwise raises (see module doc)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    config, jobid = event["config"], event["jobid"]
    log_bucket = config["log_bucket"]
    with lambdas.job_ends_on_failure(backend.store, jobid, log_bucket):
        check = _Check(backend, event, now)
        if protocol.ABORTED_MARKER in check.markers:
            check.terminate()
            raise JobAbortedException("job aborted")
        started = check.markers.get(protocol.JOB_STARTED)
        if started is None:
            if now - protocol.parse_stamp(config["start_time"]) > BOOT_TIMEOUT:
                check.terminate()
                raise EC2IdleException(f"Failed to find jobid {jobid}, ec2 is not initializing for too long. "
                                       "Terminating the instance.")
            raise EC2StartingException(f"Failed to find jobid {jobid}, ec2 is probably still booting")
        if protocol.ERROR in check.markers:
            check.terminate()
            log_text = backend.store.get_text(log_bucket, protocol.key(jobid, protocol.LOG)) or ""
            raise AWSEMJobErrorException(job_error_message(jobid, log_text, event["args"].get("custom_errors")))
        if protocol.SUCCESS in check.markers:
            output = protocol.with_postrun(event, check.postrun())
            check.terminate()
            log.info("job %s completed successfully", jobid)
            return output
        if protocol.SPOT_FAILURE in check.markers:
            check.terminate()
            spot_interrupted(backend, event)
        state = check.instance_state()
        if state is None or state in GONE_STATES:
            if config.get("spot_instance"):
                spot_interrupted(backend, event)
            what = "no longer found" if state is None else "terminated unintendedly"
            raise EC2UnintendedTerminationException(f"EC2 is {what} for job {jobid} - please rerun.")
        window = idle_window()
        if not config.get("disable_metrics_collection") and now - started["LastModified"] > window:
            cpu, reads = check.recent_activity(window)
            if cpu is not None and cpu < IDLE_CPU_PERCENT and reads < IDLE_READ_BYTES:
                check.terminate()
                raise EC2IdleException(f"Nothing has been running for the past hour for job {jobid} "
                                       f"(CPU utilization {cpu} and EBS read {reads} bytes).")
        raise StillRunningException(f"job {jobid} still running")


def idle_window() -> dt.timedelta:
    """How long a started job may show no activity before it is ended as idle (an hour, as upstream)."""
    return dt.timedelta(seconds=settings.TIBANNA_IDLE_WINDOW_SECONDS.seconds() or 0.0)


class _Check:
    """What one check reads about a job: its log-bucket markers, instance and samples."""

    def __init__(self, backend: AWSBackend, event: dict, now: dt.datetime) -> None:
        self.backend, self.event, self.now = backend, event, now
        self.jobid, self.log_bucket = event["jobid"], event["config"]["log_bucket"]
        self.instance_id = event["config"].get("instance_id", "")
        prefix = self.jobid + "."
        self.markers = {"." + o["Key"][len(prefix):]: o for o in backend.store.list_objects(self.log_bucket, prefix)}

    def terminate(self) -> None:
        if not self.instance_id:
            return
        try:
            self.backend.clients("ec2").terminate_instances(InstanceIds=[self.instance_id])
        except ClientError as err:
            log.info("job %s: terminate %s: %s", self.jobid, self.instance_id, error_code(err))

    def instance_state(self) -> str | None:
        try:
            reservations = self.backend.clients("ec2").describe_instances(InstanceIds=[self.instance_id])
        except ClientError as err:
            if error_code(err) in ("InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"):
                return None
            raise
        instances = [i for r in reservations["Reservations"] for i in r["Instances"]]
        return instances[0]["State"]["Name"] if instances else None

    def postrun(self) -> dict:
        text = self.backend.store.get_text(self.log_bucket, protocol.key(self.jobid, protocol.POSTRUN_JSON))
        if text is None:
            raise Exception(f"Postrun json not found at https://s3.amazonaws.com/{self.log_bucket}/"
                            f"{protocol.key(self.jobid, protocol.POSTRUN_JSON)}")
        return json.loads(text)

    def recent_activity(self, window: dt.timedelta) -> tuple[float | None, int]:
        """Max CPU % and bytes read over the window, from the agent's samples; (None, 0) unless the
        samples cover the whole window (sampling began before it and goes on within it)."""
        text = self.backend.store.get_text(self.log_bucket, protocol.key(self.jobid, protocol.METRICS_SAMPLES))
        since = (self.now - window).timestamp()
        samples = [s for s in read_samples_tsv(text) if s.cpu_percent is not None and s.read_bytes is not None]
        recent = [s for s in samples if s.time >= since]
        if not recent or samples[0].time >= since:
            return None, 0
        reads = [int(s.read_bytes) for s in recent]
        return max(s.cpu_percent for s in recent), max(reads) - min(reads)


def spot_interrupted(backend: AWSBackend, event: dict) -> NoReturn:
    """Rerun an interrupted spot job as allowed (that many times on spot, then once on demand), then fail it."""
    config, jobid = event["config"], event["jobid"]
    allowed = int(config.get("spot_interruption_reruns") or 0)
    done = int(event.get("_tibanna", {}).get("spot_rerun", 0))
    if not allowed or done > allowed:
        raise EC2UnintendedTerminationException(f"EC2 spot instance was interrupted for job {jobid} - please rerun.")
    rerun = rerun_job(backend, event, done + 1, on_spot=done + 1 <= allowed)
    backend.submit([rerun], rerun_of=jobid)
    market = "spot" if rerun["config"]["spot_instance"] else "on-demand"
    raise EC2UnintendedTerminationException(f"EC2 spot instance was interrupted for job {jobid} - "
                                            f"rerun automatically as job {rerun['jobid']} ({market}).")


def rerun_job(backend: AWSBackend, event: dict, number: int, on_spot: bool) -> dict:
    """The `number`th rerun of a job's chain: a new job id and run name derived from the first job's."""
    first_id = (backend.index.get(event["jobid"]) or {}).get(idx.RERUN_OF) or event["jobid"]
    first = backend.index.get(first_id) or {idx.EXECUTION_NAME: event["_tibanna"]["run_name"]}
    job = copy.deepcopy({k: v for k, v in event.items() if k != "postrunjson"})
    job["jobid"] = f"{first_id}-spot{number}"
    config = job["config"]
    for field in ("instance_id", "instance_ip", "availability_zone", "start_time"):
        config.pop(field, None)
    config["spot_instance"] = on_spot
    if not on_spot and config.get("behavior_on_capacity_limit") == "retry_without_spot":
        config["behavior_on_capacity_limit"] = "fail"
    job["_tibanna"]["spot_rerun"] = number
    rename_job(job, f"{first[idx.EXECUTION_NAME][:names.MAX_RUN_NAME - 8]}-spot{number}", backend.region,
               backend.account)
    return job
