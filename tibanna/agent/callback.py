"""Tell a waiting Step Functions execution that its job ended, so it ends within seconds.

The unicorn's `WaitForJob` state hands its task token to the job: `check_task_awsem` writes
`<jobid>.callback.json` ({task_token, state_input}) to the log bucket. Only an S3 store (an
agent on AWS, with boto3) looks for it. While the job runs the
agent sends heartbeats; when it writes the job's terminal marker it sends SendTaskSuccess with
the output `check_task_awsem` gives (the state input plus the postrun JSON) or SendTaskFailure
with the error and cause `check_task_awsem` raises (AWSEMJobErrorException, with the job's
error label). Nothing here may fail the job: with no callback object (a local store, an old
state machine), a stale token or an unreachable service, the state machine's polling backstop
ends the execution instead.
"""
from __future__ import annotations

import json
import logging
import threading
from typing import Any

from tibanna import protocol
from tibanna.exceptions import AWSEMJobErrorException, job_error_message
from tibanna.storage import ObjectStore

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 60.0  # seconds; the state's HeartbeatSeconds is several times this
# Answers meaning the token is of no use any more: stop talking to it.
STALE_TOKEN_ERRORS = ("TaskTimedOut", "TaskDoesNotExist", "InvalidToken")


class Callback:
    """The execution waiting for one job, if any: heartbeats while it runs, one answer at its end."""

    def __init__(self, store: ObjectStore, jobid: str, log_bucket: str,
                 heartbeat_interval: float = HEARTBEAT_INTERVAL) -> None:
        self.store, self.jobid, self.log_bucket = store, jobid, log_bucket
        self.heartbeat_interval = heartbeat_interval
        self.token: str | None = None
        self.state_input: dict = {}
        self.stale = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _client(self) -> Any | None:
        clients = getattr(self.store, "clients", None)  # only an S3 store reaches Step Functions
        return clients("stepfunctions") if callable(clients) else None

    def _load(self) -> bool:
        """Read the task token from the log bucket (it may appear after the agent started)."""
        if self.token is None and self._client() is not None:
            try:
                text = self.store.get_text(self.log_bucket, protocol.key(self.jobid, protocol.CALLBACK_JSON))
                if text:
                    document = json.loads(text)
                    self.token, self.state_input = document["task_token"], document["state_input"]
            except Exception as err:  # noqa: BLE001 - the backstop covers any failure to read it
                logger.warning("job %s: cannot read the task token: %s", self.jobid, err)
        return self.token is not None and not self.stale

    def _send(self, operation: str, **params: Any) -> bool:
        client = self._client()
        if client is None or not self._load():
            return False
        try:
            getattr(client, operation)(taskToken=self.token, **params)
            return True
        except Exception as err:  # noqa: BLE001 - the state machine's polling ends the execution instead
            code = getattr(err, "response", {}).get("Error", {}).get("Code", type(err).__name__)
            if code in STALE_TOKEN_ERRORS:
                self.stale = True
            logger.warning("job %s: %s: %s", self.jobid, operation, code)
            return False

    def start(self) -> None:
        """Heartbeats every `heartbeat_interval` seconds until `finish`."""
        if self._client() is None:
            return
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{self.jobid}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.is_set() and not self.stale:
            self._send("send_task_heartbeat")
            self._stop.wait(self.heartbeat_interval)

    def stop(self) -> None:
        """No more heartbeats (the job ended, or its agent is being stopped)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def finish(self, postrun: dict, failed: bool, log_text: str) -> bool:
        """After the terminal marker: the execution's answer; True once Step Functions took it."""
        self.stop()
        if not failed:
            sent = self._send("send_task_success", output=json.dumps(protocol.with_postrun(self.state_input, postrun)))
        else:
            self._load()
            cause = job_error_message(self.jobid, log_text, (self.state_input.get("args") or {}).get("custom_errors"))
            sent = self._send("send_task_failure", error=AWSEMJobErrorException.__name__, cause=cause)
        if sent:
            logger.info("job %s: the execution was told the job %s", self.jobid, "failed" if failed else "succeeded")
        return sent
