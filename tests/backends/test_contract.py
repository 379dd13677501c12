"""The Backend contract (tibanna/backends/base.py) through the API, on the local backend and on the stub.

Each test runs twice: with real jobs on the local backend, and on a stub whose scripts give each
command the end it has for real (`SCRIPTS`). What the two share is what a pipeline may rely on.
"""
from __future__ import annotations

import json

import pytest

from jobhelpers import by_command, shell_job, wait_done
from tibanna import protocol
from tibanna.backends.stub import Script, StubBackend
from tibanna.core import API
from tibanna.exceptions import UserInputError

FAILING = "echo 'no reference genome' >&2; exit 3"
SCRIPTS = {
    "echo fine": Script.succeeds(after=0.5, log="fine\n"),
    "true": Script.succeeds(after=0.2),
    "sleep 0.3": Script.succeeds(after=0.3),
    "exit 1": Script.fails(after=0.2),
    FAILING: Script.fails(after=0.5, log="no reference genome\n"),
    "sleep 300": Script.runs(),
}


@pytest.fixture(params=["local", "stub"])
def api(request: pytest.FixtureRequest, home, tmp_path) -> API:
    if request.param == "local":
        return API()
    return API(backend=StubBackend(tmp_path / "stub", script=by_command(SCRIPTS)))


def markers(api: API, jobid: str) -> list[str]:
    return [m for m in protocol.TERMINAL_MARKERS if api.backend.store.exists("log-bucket", protocol.key(jobid, m))]


def test_submit_is_idempotent_per_job_id_and_run_json_comes_first(api):
    first = api.run_workflow(shell_job("sleep 300"), jobid="same-job-1")
    assert api.backend.store.exists("log-bucket", "same-job-1.run.json")
    run_json = json.loads(api.log(job_id="same-job-1", runjson=True))
    assert run_json["Job"]["JOBID"] == "same-job-1" and run_json["Job"]["App"]["command"] == "sleep 300"
    assert api.run_workflow(shell_job("echo fine"), jobid="same-job-1") == first  # the first submission, again
    assert [(r["jobid"], r["status"]) for r in api.stat()] == [("same-job-1", "RUNNING")]
    api.kill(job_id="same-job-1")


@pytest.mark.parametrize("command, kill, status, error, marker", [
    ("echo fine", None, "SUCCEEDED", None, protocol.SUCCESS),
    (FAILING, None, "FAILED", "AWSEMJobErrorException", protocol.ERROR),
    ("sleep 300", "plain", "ABORTED", "Aborted", protocol.ABORTED_MARKER),
    ("sleep 300", "soft", "FAILED", "JobAbortedException", protocol.ABORTED_MARKER),
])
def test_every_end_has_its_status_word_error_name_and_one_terminal_marker(api, command, kill, status, error, marker):
    jobid = api.run_workflow(shell_job(command))["jobid"]
    if kill:
        assert api.check_status(job_id=jobid) == "RUNNING"
        api.kill(job_id=jobid, soft=kill == "soft")
    assert wait_done(api, jobid) == status
    job = api.job(jobid)
    assert (job["status"], job["error"], bool(job["cause"])) == (status, error, error is not None)
    assert markers(api, jobid) == [marker]
    postrun = json.loads(api.log(job_id=jobid, postrunjson=True))
    assert postrun["Job"]["JOBID"] == jobid and postrun["Job"]["end_time"]
    assert postrun["Job"].get("error_name") == error
    assert job["stop_time"] >= job["start_time"]
    api.kill(job_id=jobid)  # an ended job is left as it is
    assert api.check_status(job_id=jobid) == status and markers(api, jobid) == [marker]


def test_a_failed_job_record_names_its_error_and_becomes_its_own_exception(api):
    jobid = api.run_workflow(shell_job(FAILING))["jobid"]
    assert wait_done(api, jobid) == "FAILED"
    job = api.job(jobid)
    assert api.jobs([jobid, "unknown"]) == [job] and api.job("unknown") is None
    error = api.job_failure(job)
    assert type(error).__name__ == "AWSEMJobErrorException"
    assert str(error).startswith(f"job {jobid} FAILED with AWSEMJobErrorException") and "no reference genome" in str(
        error)


def test_stat_columns_filters_and_log_kinds(api):
    ok = api.run_workflow(shell_job("echo fine"))["jobid"]
    bad = api.run_workflow(shell_job("exit 1"))["jobid"]
    assert wait_done(api, ok) == "SUCCEEDED" and wait_done(api, bad) == "FAILED"
    rows = api.stat()
    assert [r["jobid"] for r in rows] == [bad, ok]  # newest first
    assert set(rows[0]) == {"jobid", "status", "name", "start_time", "stop_time"}
    assert [r["jobid"] for r in api.stat(status="FAILED")] == [bad]
    assert len(api.stat(n=1)) == 1
    assert [r["jobid"] for r in api.stat(job_ids=[ok, "unknown", bad])] == [ok, bad]
    long_row = api.stat(verbose=True, job_ids=[ok])[0]
    assert {"instance_id", "instance_type", "instance_status", "ip", "key", "password"} <= set(long_row)
    with pytest.raises(UserInputError):
        api.stat(job_ids=[ok], status="FAILED")
    with pytest.raises(UserInputError):
        api.stat(status="DONE")
    assert "fine" in api.log(job_id=ok)
    exec_arn = api.backend.get(job_id=ok).exec_arn
    assert api.log(exec_arn=exec_arn) == api.log(job_id=ok)
    assert json.loads(api.log(job_id=ok, runjson=True))["Job"]["JOBID"] == ok
    assert json.loads(api.log(job_id=ok, postrunjson=True))["Job"]["JOBID"] == ok
    assert api.log(job_id=ok, top=True).startswith("Timestamp:") or api.log(job_id=ok, top=True) == ""
    assert api.log(job_id=ok, inputjson=True) == ""
    assert api.log(job_id="not-yet", logbucket="log-bucket") == ""  # '' while the object does not exist
    assert api.check_output(job_id=ok)["postrunjson"]["Job"]["JOBID"] == ok
    assert api.check_output(job_id=bad) is None
    assert api.check_status(exec_arn=exec_arn) == "SUCCEEDED"
    with pytest.raises(UserInputError):
        api.check_status(job_id="nosuchjob123")


def test_rerun_keeps_input_and_applies_overrides(api):
    first = api.run_workflow(shell_job("exit 1"))
    wait_done(api, first["jobid"])
    again = api.rerun(job_id=first["jobid"], instance_type="t3.large", ebs_size="2x", name="second-try",
                      shutdown_min=30)
    assert again["jobid"] != first["jobid"]
    assert again["args"]["command"] == "exit 1"
    assert again["config"]["instance_type"] == "t3.large"
    assert again["config"]["ebs_size"] == "2x"
    assert again["config"]["shutdown_min"] == 30
    assert again["_tibanna"]["run_name"] == "second-try"
    assert api.backend.get(job_id=again["jobid"]).rerun_of == first["jobid"]
    assert api.backend.get(job_id=again["jobid"]).description["config"]["instance_type"] == "t3.large"
    assert api.rerun(job_id=first["jobid"], appname_filter="bwa-mem") is None
    once = api.rerun(job_id=first["jobid"], jobid="rerunOnce001")
    assert api.rerun(job_id=first["jobid"], jobid="rerunOnce001") == once  # idempotent with a jobid
    linked = api.run_workflow(shell_job("true"), rerun_of=first["jobid"])
    assert api.backend.get(job_id=linked["jobid"]).rerun_of == first["jobid"]
    for jobid in (once["jobid"], linked["jobid"], again["jobid"]):
        wait_done(api, jobid)


def test_dependency_failed_and_succeeded(api):
    bad = api.run_workflow(shell_job("exit 1"))["jobid"]
    good = api.run_workflow(shell_job("sleep 0.3"))["jobid"]
    after_bad = shell_job("true")
    after_bad["dependency"] = {"job_id": [bad]}
    after_good = shell_job("true")
    after_good["args"]["dependency"] = {"job_id": [good]}
    j1 = api.run_workflow(after_bad)["jobid"]
    j2 = api.run_workflow(after_good)["jobid"]
    assert wait_done(api, j1) == "FAILED"
    assert api.backend.get(job_id=j1).error == "DependencyFailedException"
    assert wait_done(api, j2) == "SUCCEEDED"
    assert api.backend.get(job_id=j2).instance_start_time >= api.backend.get(job_id=good).stop_time - 0.1


def test_password_never_written(api):
    job = shell_job("true")
    job["config"]["password"] = "s3cr3t-pass"
    result = api.run_workflow(job)
    wait_done(api, result["jobid"])
    assert "s3cr3t-pass" not in json.dumps(result)
    assert "s3cr3t-pass" not in json.dumps(api.backend.get(job_id=result["jobid"]).description)
    for path in api.backend.store.root.rglob("*"):
        if path.is_file():
            assert b"s3cr3t-pass" not in path.read_bytes(), path


def test_metrics_and_cost_of_an_ended_job(api):
    jobid = api.run_workflow(shell_job("true"))["jobid"]
    assert api.cost(jobid) is None or api.cost(jobid) >= 0  # None until the job has a postrun JSON
    assert wait_done(api, jobid) == "SUCCEEDED"
    report = api.plot_metrics(jobid, open_browser=False)
    assert report.endswith(f"{jobid}.metrics/metrics.html")
    assert b"<html" in api.job_file(jobid, "metrics")
    cost, kind = api.cost_estimate(job_id=jobid)
    assert cost >= 0 and isinstance(kind, str)
    assert api.cost(jobid) >= 0
