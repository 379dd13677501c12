"""What the agent and `check_task_awsem` share about a job's callback to its execution: where
the task token is handed over, and the execution's output for a job that succeeded."""
from __future__ import annotations

import json

CALLBACK_JSON = ".callback.json"  # <jobid>.callback.json in the log bucket: {task_token, state_input}
POSTRUN_PAYLOAD_LIMIT = 30000


def with_postrun(event: dict, postrun: dict) -> dict:
    """The execution's output: its input plus the postrun JSON, trimmed to fit the state payload
    (as upstream: without `commands`, else a note)."""
    output = dict(event)
    size = len(json.dumps(event))
    if len(json.dumps(postrun)) + size < POSTRUN_PAYLOAD_LIMIT:
        output["postrunjson"] = postrun
        return output
    trimmed = {k: v for k, v in postrun.items() if k != "commands"}
    if len(json.dumps(trimmed)) + size < POSTRUN_PAYLOAD_LIMIT:
        output["postrunjson"] = trimmed
    else:
        output["postrunjson"] = {"log": "postrun json not included due to data size limit"}
    return output


def callback_document(task_token: str, state_input: dict) -> bytes:
    """What `<jobid>.callback.json` holds."""
    return json.dumps({"task_token": task_token, "state_input": state_input}).encode()
