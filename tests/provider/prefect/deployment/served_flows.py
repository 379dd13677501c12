"""The flows a real deployment runs in the tests: every shipped flow, and a parent that fails once after its
subflow's job. `python served_flows.py serve` serves them all; `python served_flows.py deploy POOL` deploys the
shipped ones to a process work pool, from their source folders (as `prefect deploy` would).
"""
# No `from __future__ import annotations`: this module is served (see tibanna_provider/prefect/flows.py).
import sys
from pathlib import Path

from prefect import flow, serve
from prefect.context import FlowRunContext

from tibanna_provider.prefect import TibannaSettings, kill_flow_run_jobs, run_and_wait

REPO = Path(__file__).resolve().parents[4]
EXAMPLES = REPO / "example_dags"
sys.path.insert(0, str(EXAMPLES))

from tibanna_fan_out_flow import fan_out  # noqa: E402  (from the examples folder)
from tibanna_one_job_flow import one_job  # noqa: E402

# The shipped flows as a deployment finds them: source folder and entrypoint.
SHIPPED = {"tibanna-run-and-wait": (REPO, "tibanna_provider/prefect/flows.py:run_and_wait"),
           "tibanna-one-job": (EXAMPLES, "tibanna_one_job_flow.py:one_job"),
           "tibanna-fan-out": (EXAMPLES, "tibanna_fan_out_flow.py:fan_out")}


@flow(name="parent-retries", retries=1, retry_delay_seconds=0, on_cancellation=[kill_flow_run_jobs])
def parent_retries(input_json: dict, settings: TibannaSettings | None = None) -> str:
    """Run a job in a subflow, then fail the first try: the retry must re-attach to the job, not start another."""
    summary = run_and_wait(input_json, settings=settings, poll_interval=0.5)
    if FlowRunContext.get().flow_run.run_count == 1:
        raise RuntimeError("lost after the subflow's job")
    return summary["jobid"]


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(*(served.to_deployment("served") for served in (run_and_wait, one_job, fan_out, parent_retries)))
    else:
        for source, entrypoint in SHIPPED.values():
            flow.from_source(str(source), entrypoint).deploy(
                "deployed", work_pool_name=sys.argv[2], build=False, push=False, print_next_steps=False)
