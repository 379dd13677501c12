"""Tibanna for Prefect: a settings block, tasks (each with an async `a...` twin) and a flow.

Register the block with the Prefect server once: `prefect block register -m tibanna_provider.prefect`.
"""
from tibanna_provider.prefect.flow_runs import kill_flow_run_jobs
from tibanna_provider.prefect.flows import postrun_summary, run_and_wait
from tibanna_provider.prefect.settings import TibannaSettings
from tibanna_provider.prefect.tasks import (
    acost,
    acost_estimate,
    akill,
    aplot_metrics,
    arerun,
    arun_workflow,
    astat,
    await_for_job,
    cost,
    cost_estimate,
    kill,
    plot_metrics,
    rerun,
    run_workflow,
    stat,
    wait_for_job,
)

__all__ = [
    "TibannaSettings",
    "acost", "acost_estimate", "akill", "aplot_metrics", "arerun", "arun_workflow", "astat", "await_for_job",
    "cost", "cost_estimate", "kill", "kill_flow_run_jobs", "plot_metrics", "rerun", "run_and_wait", "run_workflow", "stat",
    "wait_for_job", "postrun_summary",
]
