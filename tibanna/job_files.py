"""A job's objects in its log bucket (docs/design.md 3.2) as `API.log`, `links` and `job_file` give them.

`log`'s flags choose the object; `links` are file URLs on local (an orchestrator's server may serve
them) and pre-signed GET URLs on AWS, whose objects are never made public.
"""
from __future__ import annotations

import json

from tibanna import protocol
from tibanna.backends.base import Backend, JobRecord
from tibanna.storage import LocalStore
from tibanna.submission import console_url

# A job's files an orchestrator links to, by name (see API.links).
JOB_FILES = {"log": protocol.LOG, "postrun": protocol.POSTRUN_JSON, "metrics": protocol.METRICS_DIR + "metrics.html"}


def log_suffix(postrunjson: bool = False, runjson: bool = False, top: bool = False, top_latest: bool = False,
               inputjson: bool = False) -> str:
    """The object `API.log` reads: the first flag given, else the log."""
    return (protocol.POSTRUN_JSON if postrunjson else protocol.RUN_JSON if runjson else protocol.TOP if top
            else protocol.TOP_LATEST if top_latest else protocol.INPUT_JSON if inputjson else protocol.LOG)


def read_postrun(backend: Backend, record: JobRecord) -> dict | None:
    """The job's postrun JSON; None until it exists."""
    text = backend.store.get_text(record.log_bucket, protocol.key(record.jobid, protocol.POSTRUN_JSON))
    return json.loads(text) if text else None


def links(backend: Backend, record: JobRecord, expires: int) -> dict[str, str]:
    """URLs of the job's `JOB_FILES` and its `execution` page ('' on local); see `API.links`."""
    keys = {name: protocol.key(record.jobid, suffix) for name, suffix in JOB_FILES.items()}
    store = backend.store
    if isinstance(store, LocalStore):
        urls = {name: store.path(record.log_bucket, k).resolve().as_uri() for name, k in keys.items()}
        return urls | {"execution": ""}
    s3 = store.s3
    urls = {name: s3.generate_presigned_url("get_object", Params={"Bucket": record.log_bucket, "Key": k},
                                            ExpiresIn=int(expires)) for name, k in keys.items()}
    return urls | {"execution": console_url(backend.region, record.exec_arn)}
