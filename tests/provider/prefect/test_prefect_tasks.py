"""The Prefect tasks: submission, waiting, retries, kills and states on the stub backend; a flow of each
kind of task with real jobs on the local backend."""
from __future__ import annotations

import asyncio
import logging
from uuid import UUID

import pytest
from prefect import flow, get_client
from prefect.context import FlowRunContext
from prefect.states import Cancelling

from jobhelpers import by_command
from prefect_helpers import DATA_BUCKET, all_jobs, job, read_object
from tibanna.backends.stub import Script
from tibanna.core import API
from tibanna.exceptions import AWSEMJobErrorException, TibannaError
from tibanna_provider.prefect import (
    TibannaSettings,
    akill,
    arerun,
    arun_workflow,
    astat,
    await_for_job,
    cost,
    cost_estimate,
    kill,
    kill_flow_run_jobs,
    rerun,
    run_and_wait,
    run_workflow,
    stat,
    wait_for_job,
)
from tibanna_provider.prefect import flows

pytestmark = pytest.mark.usefixtures("prefect_server")


def test_submit_wait_and_stat_in_a_sync_flow(home, caplog):
    @flow
    def submit_and_wait():
        job_id = run_workflow(job("echo 'hello from the job'; echo 42 > /data1/out/answer.txt",
                                  outputs={"file:///data1/out/answer.txt": "answers/answer.txt"}))
        return job_id, wait_for_job(job_id, poll_interval=0.5), stat([job_id])

    with caplog.at_level(logging.INFO):
        job_id, postrun, rows = submit_and_wait()
    assert postrun["Job"]["JOBID"] == job_id
    assert read_object(home, DATA_BUCKET, "answers/answer.txt") == "42\n"
    assert [(r["jobid"], r["status"]) for r in rows] == [(job_id, "SUCCEEDED")]
    assert f"[{job_id}] hello from the job" in caplog.text  # the job's log, forwarded to the run's log
    log_url = API().links(job_id)["log"]
    assert log_url.startswith("file://") and f"submitted job {job_id}; {log_url}" in caplog.text


def test_async_twins_kill_and_rerun(stub):
    stub.script = Script.runs()

    @flow
    async def start_stop_again():
        job_id = await arun_workflow(job("sleep 30"))
        await akill(job_id)
        again = await arerun(job_id, shutdown_min=5)
        await akill(again, soft=True)
        return job_id, again, await astat([job_id, again])

    job_id, again, rows = asyncio.run(start_stop_again())
    assert [(r["jobid"], r["status"]) for r in rows] == [(job_id, "ABORTED"), (again, "FAILED")]
    record = API().backend.get(job_id=again)
    assert (record.rerun_of, record.error) == (job_id, "JobAbortedException")


def test_await_for_job_waits_for_several_jobs_at_once(stub):
    stub.script = by_command({"sleep 60": Script.succeeds(after=60), "sleep 90": Script.succeeds(after=90)})

    @flow
    async def two_at_once():
        job_ids = await asyncio.gather(arun_workflow(job("sleep 60")), arun_workflow(job("sleep 90")))
        return job_ids, await asyncio.gather(*(await_for_job(job_id, poll_interval=10) for job_id in job_ids))

    job_ids, postruns = asyncio.run(two_at_once())
    assert [(p["Job"]["JOBID"], p["Job"]["status"]) for p in postruns] == [(job_id, "0") for job_id in job_ids]
    assert stub.clock.now() - stub.clock.start >= 90


def test_sync_kill_and_rerun(home):
    @flow
    def stop_and_rerun():
        job_id = run_workflow(job("sleep 30"))
        kill(job_id)
        again = rerun(job_id)
        kill(again)
        return job_id, again

    job_id, again = stop_and_rerun()
    assert {r["jobid"]: r["status"] for r in all_jobs()} == {job_id: "ABORTED", again: "ABORTED"}


def test_failing_job_is_a_failed_task_with_its_error_name(stub):
    stub.script = Script.fails(after=60, log="reference genome hg99 not found\n")

    @flow
    def fails():
        job_id = run_workflow(job("echo 'reference genome hg99 not found' >&2; exit 3"))
        state = wait_for_job(job_id, poll_interval=10, return_state=True)
        return state.is_failed(), state.message, state.result(raise_on_failure=False)

    failed, message, error = fails()
    assert failed and "AWSEMJobErrorException" in message
    assert isinstance(error, AWSEMJobErrorException)
    assert "FAILED with AWSEMJobErrorException" in str(error)
    assert "reference genome hg99 not found" in str(error)  # the log tail
    with pytest.raises(AWSEMJobErrorException):
        run_and_wait.with_options(retries=0)(job("exit 4"), poll_interval=10)


def test_a_retried_task_reattaches_to_its_job(stub, monkeypatch):
    submissions = []
    real_submit = API.run_workflow

    def submit_then_lose_the_answer(self, *args, **kwargs):
        result = real_submit(self, *args, **kwargs)
        submissions.append(result["jobid"])
        if len(submissions) == 1:
            raise ConnectionError("the answer was lost on the way back")
        return result

    monkeypatch.setattr(API, "run_workflow", submit_then_lose_the_answer)

    @flow
    def submit_with_retries():
        job_id = run_workflow.with_options(retries=2, retry_delay_seconds=0)(job("echo once"))
        return job_id, wait_for_job(job_id, poll_interval=0.5)

    job_id, postrun = submit_with_retries()
    assert submissions == [job_id]  # the retry re-attached instead of submitting again
    assert [r["jobid"] for r in all_jobs()] == [job_id]
    assert postrun["Job"]["JOBID"] == job_id


def test_run_and_wait_task_retries_reattach(stub, monkeypatch):
    real_read = API.log
    calls = []

    def flaky_log(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OSError("the log bucket did not answer")
        return real_read(self, *args, **kwargs)

    monkeypatch.setattr(API, "log", flaky_log)
    monkeypatch.setitem(flows.RETRIES, "retry_delay_seconds", 0)
    summary = run_and_wait(job("echo ok"), poll_interval=0.5)
    assert [r["jobid"] for r in all_jobs()] == [summary["jobid"]]


def test_a_flow_retry_reattaches_to_a_finished_job(stub):
    @flow(retries=1, retry_delay_seconds=0)
    def fails_after_the_job_once():
        job_id = run_workflow(job("echo done"))
        wait_for_job(job_id, poll_interval=0.5)
        if FlowRunContext.get().flow_run.run_count == 1:
            raise RuntimeError("lost after the job")
        return job_id

    job_id = fails_after_the_job_once()
    assert [(r["jobid"], r["status"]) for r in all_jobs()] == [(job_id, "SUCCEEDED")]


def test_a_flow_retry_after_a_failed_job_starts_a_fresh_one(stub, caplog):
    stub.script = Script.fails()
    with pytest.raises(AWSEMJobErrorException):
        run_and_wait.with_options(retries=1, retry_delay_seconds=0)(job("exit 1"), poll_interval=0.5)
    assert "Retry 1/2" not in caplog.text  # the tasks do not retry a failed job; the flow does
    rows = all_jobs()
    first = rows[-1]["jobid"]
    assert [(r["jobid"], r["status"]) for r in rows] == [(f"{first}-2", "FAILED"), (first, "FAILED")]
    assert API().backend.get(job_id=f"{first}-2").rerun_of == first


def test_a_parent_flow_retry_reattaches_to_the_job_of_its_subflow(stub):
    @flow(retries=1, retry_delay_seconds=0)
    def parent():
        summary = run_and_wait(job("echo once"), poll_interval=0.5)
        if FlowRunContext.get().flow_run.run_count == 1:
            raise RuntimeError("lost after the subflow")  # the retry runs run_and_wait as a new subflow run
        return summary["jobid"]

    job_id = parent()
    assert [(r["jobid"], r["status"]) for r in all_jobs()] == [(job_id, "SUCCEEDED")]


def test_a_parent_flow_retry_after_a_failed_job_starts_key_2(stub):
    stub.script = Script.fails()

    @flow(retries=1, retry_delay_seconds=0)
    def parent():
        return run_and_wait.with_options(retries=0)(job("exit 1"), poll_interval=0.5)

    with pytest.raises(AWSEMJobErrorException):
        parent()
    first = all_jobs()[-1]["jobid"]
    assert [(r["jobid"], r["status"]) for r in all_jobs()] == [(f"{first}-2", "FAILED"), (first, "FAILED")]
    assert API().backend.get(job_id=f"{first}-2").rerun_of == first


def test_a_key_of_yours_names_the_job_across_flow_runs(stub):
    stub.script = by_command({"exit 2": Script.fails(), "true": Script.succeeds()})

    @flow
    def nightly(command: str) -> str:
        job_id = run_workflow(job(command), key="nightly")
        wait_for_job(job_id, poll_interval=0.5, return_state=True)
        return job_id

    assert [nightly("exit 2"), nightly("true"), nightly("true")] == ["nightly", "nightly-2", "nightly-2"]
    assert [(r["jobid"], r["status"]) for r in all_jobs()] == [("nightly-2", "SUCCEEDED"), ("nightly", "FAILED")]
    assert API().backend.get(job_id="nightly-2").rerun_of == "nightly"


def test_the_hook_kills_the_jobs_of_a_flow_run_and_its_subflows(stub):
    stub.script = Script.runs()

    @flow
    def starts_two() -> tuple[str, str, UUID]:
        return run_workflow(job("sleep 30")), sub(), FlowRunContext.get().flow_run.id

    @flow
    def sub() -> str:
        return run_workflow(job("sleep 31"))

    outer, inner, flow_run_id = starts_two()
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)
    kill_flow_run_jobs(starts_two, flow_run, Cancelling())
    assert {r["jobid"]: r["status"] for r in all_jobs()} == {outer: "ABORTED", inner: "ABORTED"}
    kill_flow_run_jobs(starts_two, flow_run, Cancelling())  # finished jobs are left as they are


def test_different_calls_are_different_jobs_and_a_given_jobid_is_kept(stub):
    @flow
    def three():
        return [run_workflow(job("echo a")), run_workflow(job("echo b")),
                run_workflow(job("echo a"), jobid="mine-1")]

    first, second, mine = three()
    assert len({first, second}) == 2 and mine == "mine-1"
    assert len(first) == 12 and first.isalnum()
    assert sorted(r["jobid"] for r in all_jobs()) == sorted([first, second, mine])


def test_outside_a_task_run_each_call_is_a_new_job(stub):
    assert run_workflow.fn(job("true")) != run_workflow.fn(job("true"))


def test_settings_block_chooses_tibanna_home(home, tmp_path):
    other = tmp_path / "other-home"
    settings = TibannaSettings(backend="local", tibanna_home=str(other))
    summary = run_and_wait(job("echo x > /data1/out/x.txt", outputs={"file:///data1/out/x.txt": "x.txt"}),
                           settings=settings, poll_interval=0.5)
    assert read_object(other, DATA_BUCKET, "x.txt") == "x\n"
    assert all_jobs() == []  # nothing in the environment's TIBANNA_HOME
    assert API(home=other).check_status(job_id=summary["jobid"]) == "SUCCEEDED"
    kill.fn(summary["jobid"], settings=settings)  # a finished job is left as it is
    assert API(home=other).check_status(job_id=summary["jobid"]) == "SUCCEEDED"


def test_cost_tasks(home):
    @flow
    def costs():
        job_id = run_workflow(job("true"))
        wait_for_job(job_id, poll_interval=0.5)
        return cost(job_id), cost_estimate(job_id=job_id), cost_estimate(input_json=job("true"), hours=2)

    spent, (estimate, kind), (ahead, ahead_kind) = costs()
    assert spent >= 0 and estimate >= 0 and ahead >= 0
    assert isinstance(kind, str) and isinstance(ahead_kind, str)


def test_unknown_job_is_refused(home):
    with pytest.raises(TibannaError, match="no job nosuchjob"):
        wait_for_job.fn("nosuchjob")


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_waiting_backs_off_to_the_poll_interval_without_sleeping(stub, twin):
    """The watcher pauses on the stub's fake clock; after the third pause, the job is killed."""
    stub.script = Script.runs()
    job_id = run_workflow.fn(job("sleep 60"))
    stub.clock.at(stub.clock.now() + 0.5 + 1 + 2, lambda: API().kill(job_id=job_id))
    with pytest.raises(TibannaError, match=f"job {job_id} ABORTED"):
        if twin == "sync":
            wait_for_job.fn(job_id, poll_interval=2)
        else:
            asyncio.run(await_for_job.fn(job_id, poll_interval=2))
    assert stub.clock.sleeps == [0.5, 1.0, 2.0]
