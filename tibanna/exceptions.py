"""Upstream Tibanna's exception names: they are the error names users see in status and logs.

Every error the project raises derives from `TibannaError`, so callers can catch one class; a
job that did not succeed becomes the exception of its error name (`job_error`), labelled as
upstream labels a failed job's log (`job_error_message`).
"""
from __future__ import annotations

from typing import Any


class TibannaError(Exception):
    """Base of every Tibanna error; `str(err)` is the one-line message shown to a user."""


class UserInputError(TibannaError):
    """A mistake in what the user asked for (a bad argument, an unknown job or step function)."""


# The job description (parse time).
class MissingFieldInInputJsonException(UserInputError):
    """A required field of the job description is absent."""


class MalFormattedInputJsonException(UserInputError):
    """A field of the job description has the wrong shape or value."""


class MalFormattedRunJsonException(UserInputError):
    """The run JSON (or a description) combines fields that cannot go together."""


class MalFormattedPostRunJsonException(TibannaError):
    """A postrun JSON that cannot be read."""


class UnsupportedCWLVersionException(UserInputError):
    """CWL draft3 and other retired versions."""


# Launch and run time.
class EC2LaunchException(TibannaError):
    """The machine for a job could not be started."""


class EC2InstanceLimitException(TibannaError):
    """Capacity limit hit and the job's behaviour says fail."""


class EC2InstanceLimitWaitException(TibannaError):
    """Capacity limit hit; the job waits and tries again."""


class EC2StartingException(TibannaError):
    """The machine has not started the job yet."""


class StillRunningException(TibannaError):
    """The job is still running."""


class DependencyStillRunningException(TibannaError):
    """A job this job depends on is still running."""


class DependencyFailedException(TibannaError):
    """A job this job depends on failed."""


class AWSEMJobErrorException(TibannaError):
    """The job's command (or workflow engine) failed."""


class EC2UnintendedTerminationException(TibannaError):
    """The machine (or local worker) went away without finishing the job."""


class EC2IdleException(TibannaError):
    """The machine did nothing for too long."""


class JobAbortedException(TibannaError):
    """The job was killed softly (`kill(soft=True)`)."""


class MetricRetrievalException(TibannaError):
    """Resource metrics could not be read."""


class PricingRetrievalException(TibannaError):
    """Prices could not be read."""


# Upstream's built-in error labels, tried in this order before a job's `custom_errors`.
BUILTIN_ERROR_PATTERNS: tuple[dict, ...] = (
    {"error_type": "Not enough space for input files", "pattern": r"download failed: .+ No space left on device"},
    {"error_type": "No space for docker", "pattern": r"failed to register layer.+no space left on device"},
    {"error_type": "Not enough space", "pattern": r".+No space left on device"},
    {"error_type": "CWL missing input", "pattern": r"Missing required input parameter\n.+\n", "multiline": True},
    {"error_type": "Bucket/file access denied", "pattern": r"when calling the ListObjectsV2 operation: Access Denied"},
)


def job_error_message(jobid: str, log_text: str, custom_errors: list[dict] | None = None) -> str:
    """The AWSEMJobErrorException message for a failed job, labelled by the first matching pattern.

    Built-in patterns come first, then the job's `custom_errors`, as upstream's AWSEMErrorHandler.
    """
    import re

    hint = f"For more info - check log using tibanna log --job-id={jobid} [--sfn=stepfunction]"
    for spec in (*BUILTIN_ERROR_PATTERNS, *(custom_errors or [])):
        flags = re.MULTILINE if spec.get("multiline") else 0
        match = re.search(spec["pattern"], log_text or "", flags)
        if match:
            matched = " ".join(match.group(0).split())
            return f"{spec['error_type']}: {matched}. {hint}"
    return f"Job encountered an error check log using tibanna log --job-id={jobid} [--sfn=stepfunction]"


def job_error(job: dict[str, Any], log_text: str = "", log_tail: int = 20) -> TibannaError:
    """The exception of a job that did not succeed (an `API.jobs` dict): its own class by error name
    (TibannaError for an unknown or missing name), with its status, cause and the last `log_tail`
    lines of `log_text`."""
    error_class = globals().get(job.get("error") or "")
    if not (isinstance(error_class, type) and issubclass(error_class, TibannaError)):
        error_class = TibannaError
    message = f"job {job['jobid']} {job['status']}"
    message += f" with {job['error']}" if job.get("error") else ""
    message += f": {job['cause']}" if job.get("cause") else ""
    tail = log_text.splitlines()[-log_tail:] if log_tail > 0 else []
    if tail:
        message += f"\nlast {len(tail)} lines of its log:\n" + "\n".join(tail)
    return error_class(message)
