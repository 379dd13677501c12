"""A job's index record as callers get it (docs/design.md 3.3): upstream's `stat` rows and `info`
item, and the dicts `API.jobs` gives orchestrators.

Times in `stat` rows are minutes in local time, as upstream prints them; the password column is
always '-' (never shown).
"""
from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from tibanna import protocol
from tibanna.backends.base import JobRecord

LOCAL_TIME_FORMAT = "%Y-%m-%d %H:%M"
SHORT_COLUMNS = ("jobid", "status", "name", "start_time", "stop_time")
LONG_COLUMNS = SHORT_COLUMNS + ("instance_id", "instance_start_time", "instance_type", "instance_status",
                                "ip", "key", "password")


def stat_row(record: JobRecord, long: bool) -> dict[str, str]:
    """One `stat` row keyed by upstream's columns (`LONG_COLUMNS` when `long`, else `SHORT_COLUMNS`)."""
    row = {"jobid": record.jobid, "status": record.status, "name": record.name,
           "start_time": _local_time(record.start_time), "stop_time": _local_time(record.stop_time)}
    if long:
        row.update({"instance_id": record.instance_id or "-",
                    "instance_start_time": _local_time(record.instance_start_time),
                    "instance_type": record.instance_type or "-", "instance_status": record.instance_status or "-",
                    "ip": record.ip or "-", "key": record.key or "-", "password": "-"})
    return row


def info_item(record: JobRecord) -> dict[str, Any]:
    """The job's index entry in upstream's DynamoDB item shape."""
    return {"Job Id": record.jobid, "Execution Name": record.run_name, "Step Function": record.sfn,
            "Log Bucket": record.log_bucket,
            "Time Stamp": protocol.now_stamp(record.start_time),
            "instance_id": record.instance_id}


def job_dict(record: JobRecord) -> dict[str, Any]:
    """A job as an orchestrator sees it (see `API.jobs`)."""
    return {"jobid": record.jobid, "status": record.status, "error": record.error, "cause": record.cause,
            "name": record.name, "sfn": record.sfn, "exec_arn": record.exec_arn, "log_bucket": record.log_bucket,
            "rerun_of": record.rerun_of, "start_time": record.start_time, "stop_time": record.stop_time}


def _local_time(epoch: float | None) -> str:
    return _local_minute(int(epoch) // 60) if epoch else "-"


@functools.lru_cache(maxsize=4096)
def _local_minute(minute: int) -> str:
    """A minute since the epoch in local time; cached, as a listing's jobs share few minutes."""
    return dt.datetime.fromtimestamp(minute * 60).strftime(LOCAL_TIME_FORMAT)
