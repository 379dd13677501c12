"""TibannaJobTrigger: serialisation round trips, and runs under plain asyncio with a shared poller, on the
stub backend's fake clock."""
from __future__ import annotations

import asyncio
from unittest import mock

from jobhelpers import shell_job
from tibanna.backends.stub import Script
from tibanna.core import API
from tibanna_provider.triggers.tibanna import StatusPoller, TibannaJobTrigger


def first_event(trigger: TibannaJobTrigger, timeout: float = 30) -> dict:
    async def run() -> dict:
        return (await asyncio.wait_for(trigger.run().__anext__(), timeout)).payload

    return asyncio.run(run())


def test_serialize_round_trips_directly_through_serde_and_the_trigger_table():
    from airflow.models.trigger import Trigger
    from airflow.sdk._shared.module_loading import import_string
    from airflow.sdk.serde import deserialize, serialize

    owner = {"dag_id": "d", "task_id": "t", "run_id": "r", "map_index": 3}
    trigger = TibannaJobTrigger(["a", "b"], "my_conn", poll_interval=5, forward_log=False, log_offsets={"a": 10},
                                owner=owner, not_before=1.5)
    classpath, kwargs = trigger.serialize()
    assert classpath == "tibanna_provider.triggers.tibanna.TibannaJobTrigger"
    for copy in (import_string(classpath)(**kwargs), import_string(classpath)(**deserialize(serialize(kwargs))),
                 import_string(classpath)(**Trigger.from_object(trigger).kwargs)):
        assert copy.serialize() == (classpath, kwargs)
    assert TibannaJobTrigger("a").serialize()[1]["job_ids"] == ["a"]


def test_success_event_with_statuses_and_forwarded_log(stub, capfd):
    stub.script = Script.succeeds(after=90, log=[(0, "from-the-job\n"), (60, "still at it\n")])
    jobid = API().run_workflow(shell_job("echo from-the-job"))["jobid"]
    event = first_event(TibannaJobTrigger([jobid], poll_interval=30))
    assert event == {"status": "success", "job_ids": [jobid], "statuses": {jobid: "SUCCEEDED"}}
    assert stub.clock.now() - stub.clock.start >= 90  # not before the job ended
    task_log = capfd.readouterr().out  # the trigger's log (structlog, as in the triggerer)
    assert f"[{jobid}] from-the-job" in task_log and f"[{jobid}] still at it" in task_log


def test_error_events_for_a_failed_job_and_an_unknown_one(stub):
    stub.script = Script.fails(after=60, log="disk full\n")
    jobid = API().run_workflow(shell_job("echo 'disk full' >&2; exit 1"))["jobid"]
    event = first_event(TibannaJobTrigger([jobid], poll_interval=30))
    assert event["status"] == "error"
    assert event["message"].startswith(f"job {jobid} FAILED with AWSEMJobErrorException")
    assert "disk full" in event["message"]
    unknown = first_event(TibannaJobTrigger(["no-such-job"], poll_interval=30))
    assert unknown["status"] == "error" and "no job no-such-job" in unknown["message"]


def test_many_deferred_waits_share_one_status_query_per_interval(stub):
    api = API()
    jobids = []
    for seconds in (30, 60, 90):
        stub.script = Script.succeeds(after=seconds)
        jobids.append(api.run_workflow(shell_job(f"sleep {seconds}"))["jobid"])
    triggers = [TibannaJobTrigger([jobid], poll_interval=10, forward_log=False) for jobid in jobids * 4]
    triggers.append(TibannaJobTrigger(jobids, poll_interval=10, forward_log=False))
    queried: list[list[str]] = []
    real = API.jobs

    def counting(self: API, job_ids) -> list[dict]:
        queried.append(sorted(job_ids))
        return real(self, job_ids)

    async def run_all() -> list[dict]:
        async def one(trigger: TibannaJobTrigger) -> dict:
            return (await trigger.run().__anext__()).payload

        events = await asyncio.wait_for(asyncio.gather(*map(one, triggers)), timeout=30)
        await asyncio.sleep(0.3)  # the poller notices it has no watchers left
        assert StatusPoller._by_loop.get(asyncio.get_running_loop(), {}) == {}
        return events

    with mock.patch.object(API, "jobs", counting):
        events = asyncio.run(run_all())
    assert {e["status"] for e in events} == {"success"}
    assert queried[0] == sorted(jobids)  # every watched job in one query
    waited = stub.clock.now() - stub.clock.start
    assert 90 <= waited and len(queried) <= waited / 10 + 2, queried  # one query per interval, not one per trigger


def test_a_failed_status_query_reaches_every_watcher_as_an_error_event(home):
    def broken(self: API, job_ids) -> list[dict]:
        raise RuntimeError("index unreachable")

    async def run_two() -> list[dict]:
        triggers = [TibannaJobTrigger([name], poll_interval=0.05) for name in ("a", "b")]
        return [event.payload for event in await asyncio.gather(*(t.run().__anext__() for t in triggers))]

    with mock.patch.object(API, "jobs", broken):
        events = asyncio.run(run_two())
    assert [e["message"] for e in events] == ["RuntimeError: index unreachable"] * 2


def test_on_kill_ends_the_jobs_only_of_a_trigger_that_owns_them(stub):
    stub.script = Script.runs()
    api = API()
    jobid = api.run_workflow(shell_job("sleep 300"))["jobid"]
    asyncio.run(TibannaJobTrigger([jobid]).on_kill())  # a sensor's trigger: the job is not its own
    assert api.check_status(job_id=jobid) == "RUNNING"
    owner = {"dag_id": "d", "task_id": "t", "run_id": "r", "map_index": -1}
    # no Airflow to ask whether the task runs again: a user's kill ends the job
    asyncio.run(TibannaJobTrigger([jobid], owner=owner).on_kill())
    assert api.check_status(job_id=jobid) == "ABORTED"


def test_no_event_before_not_before(stub):
    stub.script = Script.succeeds(after=0)
    jobid = API().run_workflow(shell_job("true"))["jobid"]
    not_before = stub.clock.now() + 15
    event = first_event(TibannaJobTrigger([jobid], poll_interval=30, not_before=not_before))
    assert event["status"] == "success" and stub.clock.now() >= not_before
    assert stub.clock.sleeps[0] == 15  # held until then, at once
