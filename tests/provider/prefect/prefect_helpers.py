"""Job descriptions and bucket reads shared by the Prefect tests."""
from __future__ import annotations

from pathlib import Path

from tibanna.core import API

LOG_BUCKET, DATA_BUCKET = "pf-logs", "pf-data"


def job(command: str | list[str], outputs: dict | None = None, **args) -> dict:
    """A tiny shell job (1 CPU, so two run at once on a 2-core machine)."""
    return {"args": {"language": "shell", "container_image": "ubuntu:20.04", "command": command,
                     "output_S3_bucket": DATA_BUCKET, "output_target": outputs or {}, **args},
            "config": {"log_bucket": LOG_BUCKET, "cpu": 1, "mem": 0.1}}


def read_object(home: Path, bucket: str, key: str) -> str:
    """An object of a local bucket (the folder TIBANNA_HOME/buckets/<bucket>)."""
    return (home / "buckets" / bucket / key).read_text()


def all_jobs() -> list[dict]:
    """Every job of the default step function, newest first (stat rows)."""
    return API().stat()
