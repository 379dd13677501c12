"""What a task knows of the flow runs it runs in: the job key, and the jobs noted on the runs.

`job_key` derives a submission's job id from the root flow run (the outermost one, whose id a
retry keeps) and what is submitted, so every retry re-attaches to its job. `note_job` labels the
flow run and every run above it with the job (`tibanna.job.<jobid>`, holding the settings it runs
under), so that `kill_flow_run_jobs`, a flow's `on_cancellation` and `on_crashed` hook, can end
the jobs of a cancelled or crashed flow run.
"""
from __future__ import annotations

import functools
import hashlib
import json
import string
import threading
from typing import Any
from uuid import UUID

from prefect import Flow, get_client
from prefect.client.schemas.objects import FlowRun
from prefect.context import TaskRunContext
from prefect.logging.loggers import flow_run_logger
from prefect.states import State

from tibanna.core import RUNNING
from tibanna_provider.prefect.settings import TibannaSettings

JOBID_LENGTH = 12  # upstream's job ids: 12 letters and digits
_JOBID_ALPHABET = string.ascii_letters + string.digits


@functools.lru_cache(maxsize=256)
def _flow_run_chain(flow_run_id: UUID) -> tuple[UUID, ...]:
    """This flow run and the runs above it (a subflow's parent, its parent...), innermost first, root last."""
    chain = [flow_run_id]
    with get_client(sync_client=True) as client:
        parent_task_run = client.read_flow_run(flow_run_id).parent_task_run_id
        while parent_task_run is not None:
            parent = client.read_task_run(parent_task_run).flow_run_id
            if parent is None:
                break
            chain.append(parent)
            parent_task_run = client.read_flow_run(parent).parent_task_run_id
    return tuple(chain)


def job_key(description: Any, step_function: str | None) -> str | None:
    """The job id this task run submits under: 12 letters and digits, as upstream's job ids.

    Derived from the root flow run (or, for a task run outside any flow, the task run) and from
    what is submitted: every try of the same call, and every retry of a flow above it (a retried
    parent gives its subflows new run ids, not itself), gets the same id; two different calls
    get different ones. None outside a task run (a plain `run_workflow.fn(...)` call).
    """
    context = TaskRunContext.get()
    if context is None:
        return None
    run = context.task_run
    owner = _flow_run_chain(run.flow_run_id)[-1] if run.flow_run_id else run.id
    identity = json.dumps([str(owner), step_function, description], sort_keys=True, default=str)
    number = int.from_bytes(hashlib.sha256(identity.encode()).digest(), "big")
    chars = []
    for _ in range(JOBID_LENGTH):
        number, digit = divmod(number, len(_JOBID_ALPHABET))
        chars.append(_JOBID_ALPHABET[digit])
    return "".join(chars)


JOB_LABEL = "tibanna.job."  # a flow run's label `tibanna.job.<jobid>` holds the settings the job runs under
_labelling = threading.Lock()  # the server merges labels read-then-write: one update at a time


def note_job(job_id: str, settings: TibannaSettings) -> None:
    """Label the current flow run and every run above it with the job, for `kill_flow_run_jobs`."""
    context = TaskRunContext.get()
    if context is None or context.task_run.flow_run_id is None:
        return
    fields = settings.model_dump(include=set(TibannaSettings.model_fields), exclude_none=True)
    label = {JOB_LABEL + job_id: json.dumps(fields, sort_keys=True)}
    with _labelling, get_client(sync_client=True) as client:
        for flow_run_id in _flow_run_chain(context.task_run.flow_run_id):
            client.update_flow_run_labels(flow_run_id, label)


def kill_flow_run_jobs(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> None:
    """Kill the running jobs that a flow run (or a subflow of it) started: an `on_cancellation`/`on_crashed` hook.

    As Airflow's `on_kill`, it ends the job of a run that will not watch it any more: a cancelled
    flow run's jobs end ABORTED. A finished job is left as it is. `run_and_wait` and the example
    flows carry it; add it to a flow of yours that submits jobs.

    Example:
        ```python
        from prefect import flow
        from tibanna_provider.prefect import kill_flow_run_jobs, run_workflow, wait_for_job

        JOB = {"args": {"language": "shell", "command": "echo hello", "container_image": "ubuntu:20.04",
                        "output_S3_bucket": "my-data"},
               "config": {"log_bucket": "my-logs", "cpu": 1, "mem": 1}}

        @flow(on_cancellation=[kill_flow_run_jobs], on_crashed=[kill_flow_run_jobs])
        def hello() -> dict:
            return wait_for_job(run_workflow(JOB))

        hello()
        ```
    """
    logger = flow_run_logger(flow_run, flow)
    with get_client(sync_client=True) as client:
        labels = client.read_flow_run(flow_run.id).labels
    for name, fields in labels.items():
        if not name.startswith(JOB_LABEL):
            continue
        job_id = name[len(JOB_LABEL):]
        api = TibannaSettings(**json.loads(str(fields))).get_api()
        if (api.job(job_id) or {}).get("status") == RUNNING:
            logger.info("the flow run is %s: killing its job %s", state.name.lower(), job_id)
            api.kill(job_id=job_id)
