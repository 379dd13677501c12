"""What the stub backend adds to the contract (tests/backends/test_contract.py): scripts, playing on the
clock, the endings a real job cannot be told to have, and its place behind every API (`substitute`)."""
from __future__ import annotations

import json
import threading

import pytest

from jobhelpers import by_command, shell_job
from tibanna import protocol
from tibanna.backends import substitute, substituted
from tibanna.backends.stub import Ending, Script, StubBackend
from tibanna.core import API


@pytest.fixture
def stub(tmp_path) -> StubBackend:
    return StubBackend(tmp_path)


def log_objects(stub: StubBackend, jobid: str) -> list[str]:
    return [key[len(jobid):] for key in stub.store.list_keys("log-bucket", jobid + ".")]


def test_a_job_plays_its_script_as_the_clock_moves_with_no_one_reading(stub):
    stub.script = Script.succeeds(start=10, after=30, log=[(10, "staging\n"), (20, "running\n")])
    jobid = API(backend=stub).run_workflow(shell_job("true"))["jobid"]
    assert log_objects(stub, jobid) == [".run.json"]
    stub.clock.sleep(10)
    assert log_objects(stub, jobid) == [".job_started", ".log", ".postrun.json", ".run.json"]
    assert stub.store.get_text("log-bucket", f"{jobid}.log") == "staging\n"
    stub.clock.sleep(15)
    assert stub.store.get_text("log-bucket", f"{jobid}.log") == "staging\nrunning\n"
    assert not stub.store.exists("log-bucket", f"{jobid}.success")
    stub.clock.sleep(5)
    assert stub.store.exists("log-bucket", f"{jobid}.success")
    record = stub.get(job_id=jobid)
    assert (record.status, record.instance_start_time - record.start_time, record.stop_time - record.start_time) == (
        "SUCCEEDED", 10, 30)
    postrun = json.loads(stub.store.get_text("log-bucket", f"{jobid}.postrun.json"))
    assert protocol.parse_stamp(postrun["Job"]["end_time"]).timestamp() == record.stop_time


@pytest.mark.parametrize("script, status, error, marker", [
    (Script.killed(after=5), "ABORTED", "Aborted", protocol.ABORTED_MARKER),
    (Script.killed(after=5, soft=True), "FAILED", "JobAbortedException", protocol.ABORTED_MARKER),
    (Script.times_out(after=5), "TIMED_OUT", "States.Timeout", protocol.ERROR),
    (Script.fails(after=5, error="EC2IdleException", cause="idle for 30 min"), "FAILED", "EC2IdleException",
     protocol.ERROR),
])
def test_endings_a_real_job_cannot_be_told_to_have(stub, script, status, error, marker):
    stub.script = script
    api = API(backend=stub)
    jobid = api.run_workflow(shell_job("true"))["jobid"]
    stub.clock.sleep(5)
    job = api.job(jobid)
    assert (job["status"], job["error"]) == (status, error)
    assert [m for m in protocol.TERMINAL_MARKERS if stub.store.exists("log-bucket", jobid + m)] == [marker]
    assert type(api.job_failure(job)).__name__ in (error, "TibannaError")


def test_the_script_function_sees_the_parsed_description_with_its_jobid(stub):
    seen = []
    stub.script = lambda job: seen.append((job["jobid"], job["config"]["ebs_size"])) or Script.runs()
    API(backend=stub).run_workflow(shell_job("true"), jobid="given-1")
    assert seen == [("given-1", 10)]
    stub.script = by_command({})
    with pytest.raises(AssertionError, match="scripted no job with command 'true'"):
        API(backend=stub).run_workflow(shell_job("true"))


def test_a_dependency_named_by_execution_arn_and_one_that_does_not_exist(stub):
    stub.script = by_command({"first": Script.succeeds(after=20), "then": Script.succeeds(start=5, after=10)})
    api = API(backend=stub)
    first = api.run_workflow(shell_job("first"))
    then = shell_job("then")
    then["dependency"] = {"exec_arn": [first["_tibanna"]["exec_arn"]]}
    orphan = shell_job("then")
    orphan["dependency"] = {"job_id": ["no-such-job"]}
    then_id, orphan_id = api.run_workflow(then)["jobid"], api.run_workflow(orphan)["jobid"]
    stub.clock.sleep(29)
    assert api.check_status(job_id=then_id) == "RUNNING"  # its 10 s count from its dependency's end
    stub.clock.sleep(1)
    assert api.check_status(job_id=then_id) == "SUCCEEDED"
    assert stub.get(job_id=then_id).instance_start_time == stub.get(job_id=first["jobid"]).stop_time + 5
    failed = api.job(orphan_id)
    assert (failed["status"], failed["error"]) == ("FAILED", "DependencyFailedException")
    assert "no-such-job" in failed["cause"]


def test_step_function_counts_and_a_purge_of_its_history(stub):
    stub.script = by_command({"true": Script.succeeds(), "sleep 300": Script.runs()})
    api = API(backend=stub)
    sfn = api.deploy_unicorn(usergroup="lab", buckets="log-bucket,out-bucket", no_setenv=True)
    done = api.run_workflow(shell_job("true"), sfn=sfn)["jobid"]
    running = api.run_workflow(shell_job("sleep 300"), sfn=sfn)["jobid"]
    stub.clock.sleep(1)
    counts = {row["name"]: row for row in api.list_sfns(numbers=True)}
    assert (counts[sfn]["SUCCEEDED"], counts[sfn]["RUNNING"]) == (1, 1)
    removed = api.cleanup(user_group_name="lab", purge_history=True)
    assert f"job {done}" in removed and sfn in removed and f"job {running}" not in removed
    assert api.stat(job_ids=[done, running]) == [api.stat(job_ids=[running])[0]]
    assert log_objects(stub, done) == []


def test_scripts_that_cannot_happen_are_refused():
    with pytest.raises(ValueError, match="Script.end"):
        Script.succeeds(start=5, after=1)
    with pytest.raises(ValueError, match="Script.log"):
        Script.succeeds(after=1, log=[(2, "late\n")])
    with pytest.raises(ValueError, match="Ending.status"):
        Ending("DONE")
    with pytest.raises(ValueError, match="Ending.error"):
        Ending("FAILED")


def test_substitute_puts_the_stub_behind_every_api_made_by_name_in_every_thread(stub, home):
    assert substituted() is None
    with substitute(stub):
        in_thread: list[API] = []
        thread = threading.Thread(target=lambda: in_thread.append(API()))
        thread.start()
        thread.join()
        for api in (API(), API("local"), API.from_settings("aws", region="eu-west-1", sfn="tibanna_unicorn"),
                    in_thread[0]):
            assert api.backend is stub and api.backend_name == "stub" and api.clock is stub.clock
        assert API.from_settings(sfn="tibanna_unicorn_x").sfn == "tibanna_unicorn_x"  # the settings' sfn still
        other = StubBackend(home / "other")
        with substitute(other):
            assert API().backend is other
        assert API().backend is stub
    assert API().backend_name == "local" and substituted() is None
