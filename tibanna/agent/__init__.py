"""The agent: runs one job on a worker (a forked local process or an EC2 instance).

`run_job(store, jobid, log_bucket, workdir, defaults=AgentDefaults(...))` stages the inputs, runs
the job's command through its language's runner, uploads the outputs and reports through the
log bucket; `python -m tibanna.agent` does the same from a shell.
"""
from tibanna.agent.job import run_job
from tibanna.agent.settings import AgentDefaults

__all__ = ["AgentDefaults", "run_job"]
