"""The `tibanna` plugin's listener: a user who marks a deferred task failed or succeeded ends its jobs.

A deferred task has no worker process, so no operator's `on_kill` runs; the trigger's `on_kill`
does end the jobs, but only once the triggerer runs the trigger. The triggerer takes new
triggers on its next look at the metadata DB: a task marked failed in between (say, a second
after it deferred) leaves a trigger the triggerer never starts, hence never cancels, and the job
would run on.

The api-server tells listeners of every state a user sets (task, task group, bulk, DAG run),
inside the transaction that sets it, while the task instance still names the trigger it deferred
on. This listener reads that trigger's jobs and kills them, whatever the triggerer did or did not
do yet; when both act, the second kill finds the job ended and leaves it. A cleared task fires no
such event (its next try re-attaches to the jobs), nor does a task that fails into a retry.
"""
from __future__ import annotations

import logging
from typing import Any

from airflow.listeners import hookimpl

from tibanna_provider.hooks.tibanna import ENDED_STATES
from tibanna_provider.triggers.tibanna import TibannaJobTrigger

log = logging.getLogger(__name__)

TRIGGER_CLASSPATH = f"{TibannaJobTrigger.__module__}.{TibannaJobTrigger.__qualname__}"


def end_jobs_of_deferred_task(task_instance: Any) -> list[str]:
    """Kill the jobs of a task instance that ended while deferred on its own `TibannaJobTrigger`.

    `task_instance` is the metadata DB's row (the api-server's and the scheduler's listeners get
    one); a worker's task instance names no trigger and is left alone. Returns the jobs killed.
    """
    if getattr(task_instance, "trigger_id", None) is None or task_instance.state not in ENDED_STATES:
        return []
    row = task_instance.trigger
    if row is None or row.classpath != TRIGGER_CLASSPATH:
        return []
    trigger = TibannaJobTrigger(**row.kwargs)
    if trigger.owner is None:  # a sensor's wait: the jobs are not the task's to kill
        return []
    log.info("task %s ended %s while deferred: killing its job(s) %s", trigger.owner, task_instance.state,
             ", ".join(trigger.job_ids))
    trigger.kill_jobs()
    return trigger.job_ids


@hookimpl
def on_task_instance_failed(previous_state: Any, task_instance: Any, error: Any) -> None:
    end_jobs_of_deferred_task(task_instance)


@hookimpl
def on_task_instance_success(previous_state: Any, task_instance: Any) -> None:
    end_jobs_of_deferred_task(task_instance)
