"""The Lambdas, as plain functions: the unicorn's `run_task_awsem` and `check_task_awsem`, and the
cost updater's `update_cost_awsem`.

Each module's `handler(event, context)` is what AWS calls; the work is done by a function that
takes the backend, so tests (and a local player of the state machine) call it directly. An error
that fails the execution also ends the job in the log bucket: the error name and cause go into
the postrun JSON and `.error` is written, unless the job already has a terminal marker.
"""
from __future__ import annotations

import contextlib
import json
import functools
import logging
from typing import Iterator

from tibanna import protocol
from tibanna.backends.aws.backend import AWSBackend
from tibanna.backends.aws.statemachine import CHECK_TASK_RETRY, RUN_TASK_RETRY
from tibanna.storage.s3 import S3Store

log = logging.getLogger(__name__)

# Errors the state machine retries: they do not end the job.
RETRIED = frozenset(error for rule in (*RUN_TASK_RETRY, *CHECK_TASK_RETRY) for error in rule["ErrorEquals"])


@functools.lru_cache(maxsize=4)
def backend(region: str | None = None) -> AWSBackend:
    """The backend of a region, by default this Lambda's (kept while the Lambda stays warm)."""
    return AWSBackend(region)


@contextlib.contextmanager
def job_ends_on_failure(store: S3Store, jobid: str, log_bucket: str) -> Iterator[None]:
    """Record a failure that ends the execution as the job's end (postrun error, then `.error`)."""
    try:
        yield
    except Exception as err:
        if type(err).__name__ not in RETRIED:
            end_job_with_error(store, jobid, log_bucket, type(err).__name__, str(err))
        raise


def end_job_with_error(store: S3Store, jobid: str, log_bucket: str, name: str, cause: str) -> None:
    """The `.error` marker, holding the error (and the error in the postrun JSON), for a job that has no
    terminal marker."""
    if any(store.exists(log_bucket, protocol.key(jobid, m)) for m in protocol.TERMINAL_MARKERS):
        return
    text = store.get_text(log_bucket, protocol.key(jobid, protocol.POSTRUN_JSON))
    if text:
        postrun = json.loads(text)
        protocol.set_postrun_error(postrun, name, cause)
        store.put_bytes(log_bucket, protocol.key(jobid, protocol.POSTRUN_JSON), protocol.dump_json(postrun))
    store.put_bytes(log_bucket, protocol.key(jobid, protocol.ERROR), f"{name}: {cause}\n".encode())
    log.info("job %s ended: %s: %s", jobid, name, cause)
