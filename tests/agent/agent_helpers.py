"""Helpers for the agent tests: descriptions in upstream's shape, submitted as run.json and run."""
from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

from tibanna import jobspec, protocol
from tibanna.agent import AgentDefaults, run_job
from tibanna.storage import LocalStore

LOG_BUCKET, IN_BUCKET, OUT_BUCKET = "log-bucket", "in-bucket", "out-bucket"
_ids = itertools.count()


def describe(command: str | list[str], *, outputs: dict | None = None, inputs: dict | None = None,
             language: str = "shell", **args: object) -> dict:
    """A shell description in upstream's shape."""
    return {"args": {"language": language, "container_image": "ubuntu:20.04", "command": command,
                     "output_S3_bucket": OUT_BUCKET, "input_files": inputs or {},
                     "output_target": outputs or {}, **args},
            "config": {"log_bucket": LOG_BUCKET, "instance_type": "t3.micro", "password": "hunter2",
                       "key_name": "my-key"}}


class Runs:
    """Submit descriptions as run.json and run them with the agent, each in its own workdir."""

    def __init__(self, store: LocalStore, tmp_path: Path) -> None:
        self.store, self.tmp_path = store, tmp_path

    def submit(self, description: dict) -> str:
        jobid = description.get("jobid") or f"job{os.getpid()}n{next(_ids)}"  # unique across test processes
        parsed = jobspec.parse(description, jobid=jobid)
        self.store.put_bytes(LOG_BUCKET, protocol.key(jobid, protocol.RUN_JSON),
                             protocol.dump_json(protocol.build_run_json(parsed)))
        return jobid

    def run(self, description: dict, **defaults: object) -> tuple[str, int]:
        """Run a job; on the host unless a container_runtime is given (docker may be on this machine)."""
        defaults.setdefault("container_runtime", "none")
        jobid = self.submit(description)
        return jobid, run_job(self.store, jobid, LOG_BUCKET, self.workdir(jobid),
                              defaults=AgentDefaults(**defaults))

    def workdir(self, jobid: str) -> Path:
        return self.tmp_path / "work" / jobid

    def log(self, jobid: str, suffix: str) -> str | None:
        return self.store.get_text(LOG_BUCKET, protocol.key(jobid, suffix))

    def postrun(self, jobid: str) -> dict:
        return json.loads(self.log(jobid, protocol.POSTRUN_JSON) or "null")

    def markers(self, jobid: str) -> list[str]:
        return [m for m in protocol.TERMINAL_MARKERS if self.store.exists(LOG_BUCKET, protocol.key(jobid, m))]

    def output(self, key: str, bucket: str = OUT_BUCKET) -> str | None:
        return self.store.get_text(bucket, key)
