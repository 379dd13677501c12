"""The log-bucket protocol (DESIGN 3.2) and the status words (DESIGN 3.3), shared by every part.

Both backends and the agent speak through objects in the job's log bucket, under upstream's keys.
"""
from __future__ import annotations

import datetime as _dt
import re

# Time stamps in run/postrun JSON and the index, as upstream writes them.
TIME_FORMAT = "%Y%m%d-%H:%M:%S-UTC"

RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED = "RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"
STATUSES = (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED)
TERMINAL_STATUSES = (SUCCEEDED, FAILED, TIMED_OUT, ABORTED)

# Suffixes of the per-job objects in the log bucket: the key is `<jobid><suffix>`.
RUN_JSON = ".run.json"
JOB_STARTED = ".job_started"
LOG = ".log"
TOP = ".top"
TOP_LATEST = ".top_latest"
POSTRUN_JSON = ".postrun.json"
SUCCESS = ".success"
ERROR = ".error"
ABORTED_MARKER = ".aborted"
SPOT_FAILURE = ".spot_failure"
WORKFLOW_DIR = ".workflow/"
METRICS_DIR = ".metrics/"
INPUT_JSON = ".input.json"

# Exactly one of these ends every job, written last (DESIGN 3.2).
TERMINAL_MARKERS = (SUCCESS, ERROR, ABORTED_MARKER)

JOBID_LENGTH = 12
JOBID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def key(jobid: str, suffix: str) -> str:
    """The log-bucket key of one of a job's objects, e.g. key('abc', LOG) == 'abc.log'."""
    return f"{jobid}{suffix}"


def now_stamp(when: _dt.datetime | None = None) -> str:
    """A UTC time stamp in upstream's format."""
    when = when or _dt.datetime.now(_dt.timezone.utc)
    return when.astimezone(_dt.timezone.utc).strftime(TIME_FORMAT)


def parse_stamp(stamp: str) -> _dt.datetime:
    """Parse upstream's time stamp into an aware UTC datetime."""
    return _dt.datetime.strptime(stamp, TIME_FORMAT).replace(tzinfo=_dt.timezone.utc)


def execution_arn(region: str, account: str, sfn: str, run_name: str) -> str:
    """An execution ARN; local ones use region `local` and account 000000000000 (DESIGN 3.3)."""
    return f"arn:aws:states:{region}:{account}:execution:{sfn}:{run_name}"


def split_execution_arn(arn: str) -> tuple[str, str]:
    """(step function name, run name) of an execution ARN."""
    parts = arn.split(":")
    if len(parts) < 8 or parts[5] != "execution":
        raise ValueError(f"not an execution ARN: {arn!r}")
    return parts[6], ":".join(parts[7:])
