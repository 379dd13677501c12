"""The API on the local backend: returns, idempotency, status, rerun and the admin verbs."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from jobhelpers import shell_job, wait_done
from tibanna.exceptions import TibannaError, MalFormattedInputJsonException, MissingFieldInInputJsonException, UserInputError


def test_dryrun_validates_and_writes_nothing(api, home):
    result = api.run_workflow(shell_job("true"), dryrun=True)
    assert result["config"]["log_bucket"] == "log-bucket"
    assert result["config"]["ebs_type"] == "gp3"  # parse-time defaults filled, as upstream
    assert result["_tibanna"]["exec_arn"].startswith("arn:aws:states:local:000000000000:execution:tibanna_unicorn:")
    assert not (home / "buckets").exists()
    assert api.stat() == []


@pytest.mark.parametrize("mutate, error", [
    (lambda j: j["args"].pop("output_S3_bucket"), MissingFieldInInputJsonException),
    (lambda j: j["config"].update(ebs_size="3y"), MalFormattedInputJsonException),
    (lambda j: j["args"].update(command=42), MalFormattedInputJsonException),
])
def test_bad_description_refused_before_anything_is_written(api, home, mutate, error):
    job = shell_job("true")
    mutate(job)
    with pytest.raises(error):
        api.run_workflow(job)
    with pytest.raises(error):
        api.run_batch_workflows([shell_job("true"), job])  # one bad description stops the whole batch
    assert not (home / "buckets").exists()
    assert api.stat() == []


def test_malformed_corpus_refused_through_the_api_with_nothing_written(api, home):
    from protocol.test_jobspec import ESCAPES, MALFORMED, variant

    for name, base, changes, *_ in MALFORMED + ESCAPES:
        for dryrun in (True, False):
            with pytest.raises(TibannaError) as info:
                api.run_workflow(variant(base, *changes), dryrun=dryrun)
            assert "\n" not in str(info.value) and ": " in str(info.value), name
    assert not (home / "buckets").exists()
    assert api.stat() == []


def test_password_never_written(api, home):
    job = shell_job("true")
    job["config"]["password"] = "s3cr3t-pass"
    result = api.run_workflow(job)
    wait_done(api, result["jobid"])
    assert "s3cr3t-pass" not in json.dumps(result)
    for path in (home / "buckets").rglob("*"):
        if path.is_file():
            assert b"s3cr3t-pass" not in path.read_bytes(), path
    assert b"s3cr3t-pass" not in (home / "index.sqlite").read_bytes()


def test_stat_columns_filters_and_log_kinds(api, home):
    ok = api.run_workflow(shell_job("echo fine"))["jobid"]
    bad = api.run_workflow(shell_job("exit 1"))["jobid"]
    assert wait_done(api, ok) == "SUCCEEDED" and wait_done(api, bad) == "FAILED"
    rows = api.stat()
    assert [r["jobid"] for r in rows] == [bad, ok]  # newest first
    assert set(rows[0]) == {"jobid", "status", "name", "start_time", "stop_time"}
    assert [r["jobid"] for r in api.stat(status="FAILED")] == [bad]
    assert len(api.stat(n=1)) == 1
    long_row = api.stat(verbose=True, job_ids=[ok])[0]
    assert {"instance_id", "instance_type", "instance_status", "ip", "key", "password"} <= set(long_row)
    with pytest.raises(UserInputError):
        api.stat(job_ids=[ok], status="FAILED")
    with pytest.raises(UserInputError):
        api.stat(status="DONE")
    assert "fine" in api.log(job_id=ok)
    exec_arn = api.info(ok) and api.backend.get(job_id=ok).exec_arn
    assert api.log(exec_arn=exec_arn) == api.log(job_id=ok)
    assert json.loads(api.log(job_id=ok, runjson=True))["Job"]["JOBID"] == ok
    assert json.loads(api.log(job_id=ok, postrunjson=True))["Job"]["JOBID"] == ok
    assert api.log(job_id=ok, top=True).startswith("Timestamp:") or api.log(job_id=ok, top=True) == ""
    assert api.log(job_id=ok, inputjson=True) == ""
    assert api.check_output(job_id=ok)["postrunjson"]["Job"]["JOBID"] == ok
    assert api.check_output(job_id=bad) is None
    assert api.check_status(exec_arn=exec_arn) == "SUCCEEDED"
    with pytest.raises(UserInputError):
        api.check_status(job_id="nosuchjob123")


def test_rerun_keeps_input_and_applies_overrides(api, home):
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
    assert api.rerun(job_id=first["jobid"], appname_filter="bwa-mem") is None
    once = api.rerun(job_id=first["jobid"], jobid="rerunOnce001")
    assert api.rerun(job_id=first["jobid"], jobid="rerunOnce001") == once  # idempotent with a jobid
    linked = api.run_workflow(shell_job("true"), rerun_of=first["jobid"])
    assert api.backend.get(job_id=linked["jobid"]).rerun_of == first["jobid"]
    wait_done(api, once["jobid"]), wait_done(api, linked["jobid"])
    wait_done(api, again["jobid"])


def test_rerun_many_uses_system_time_zone_and_offset(api, home, monkeypatch):
    failed = [api.run_workflow(shell_job("exit 1"))["jobid"] for _ in range(3)]
    for jobid in failed:
        wait_done(api, jobid)
    ok = api.run_workflow(shell_job("true"))["jobid"]
    wait_done(api, ok)
    now = dt.datetime.now()
    before = now - dt.timedelta(hours=2)
    reruns = api.rerun_many(stopdate=before.strftime("%d%b%Y"), stophour=before.hour, stopminute=before.minute)
    assert sorted(api.backend.get(job_id=r["jobid"]).rerun_of for r in reruns) == sorted(failed)
    # The same moment read three hours later (offset) is in the future: nothing to rerun.
    assert api.rerun_many(stopdate=before.strftime("%d%b%Y"), stophour=before.hour, stopminute=before.minute,
                          offset=3) == []
    for r in reruns:
        wait_done(api, r["jobid"])


def test_admin_verbs_have_effects_the_other_verbs_see(api, home):
    group = api.setup_tibanna_env(buckets="log-bucket,out-bucket", usergroup_tag="lab")
    assert group.startswith("lab_")
    assert api.setup_tibanna_env(buckets="log-bucket", usergroup_tag="fixed", no_randomize=True) == "fixed"
    sfn = api.deploy_unicorn(usergroup=group, no_setup=True, suffix="dev")
    assert sfn == f"tibanna_unicorn_{group}_dev"
    assert sfn in [s["name"] for s in api.list_sfns()]
    assert api.backend.default_sfn() == sfn  # recorded in TIBANNA_HOME/config, not ~/.bashrc
    assert json.loads((home / "config").read_text())["default_sfn"] == sfn
    api.add_user("alice", usergroup=group)
    api.add_user("bob", usegroup=group)
    assert {"user": "alice", "usergroup": group} in api.users()
    with pytest.raises(UserInputError):
        api.add_user("carol", usergroup="nosuchgroup")
    assert api.deploy_core("all", usergroup=group, suffix="dev") == [
        f"run_task_awsem_{group}_dev", f"check_task_awsem_{group}_dev"]
    with pytest.raises(UserInputError):
        api.deploy_core("all", usergroup="nosuchgroup")
    # The unicorn may use only its group's buckets, as IAM would allow.
    job = shell_job("true")
    job["args"]["input_files"] = {"x": "s3://forbidden-bucket/x"}
    with pytest.raises(UserInputError, match="forbidden-bucket"):
        api.run_workflow(job, sfn=sfn)
    jobid = api.run_workflow(shell_job("true"))["jobid"]  # the default is now the new unicorn
    assert wait_done(api, jobid) == "SUCCEEDED"
    counts = {s["name"]: s for s in api.list_sfns(numbers=True)}
    assert counts[sfn]["SUCCEEDED"] == 1
    with pytest.raises(UserInputError):
        api.run_workflow(shell_job("true"), sfn="tibanna_unicorn_nosuch")
    removed = api.cleanup(user_group_name=group, purge_history=True)
    assert sfn in removed and f"job {jobid}" in removed
    assert api.stat(job_ids=[jobid]) == []
    assert not list((home / "buckets/log-bucket").glob(f"{jobid}*"))
    assert sfn not in [s["name"] for s in api.list_sfns()]
    assert api.users() == []
    assert api.backend.default_sfn() == "tibanna_unicorn"
    with pytest.raises(UserInputError):
        api.cleanup(user_group_name="tibanna_" + group)
    with pytest.raises(UserInputError):
        api.cleanup(user_group_name="gone", ignore_errors=False)


def test_do_not_remove_group_keeps_users(api, home):
    group = api.setup_tibanna_env(buckets="b1", usergroup_tag="keep", no_randomize=True)
    api.deploy_unicorn(usergroup=group, no_setup=True, no_setenv=True)
    api.add_user("dana", usergroup=group)
    api.cleanup(user_group_name=group, do_not_remove_iam_group=True)
    assert api.users() == [{"user": "dana", "usergroup": "keep"}]
    assert api.backend.default_sfn() == "tibanna_unicorn"  # no_setenv left the default alone


def test_dependency_failed_and_succeeded(api, home):
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


def test_unknown_backend_refused(home):
    from tibanna.core import API

    with pytest.raises(UserInputError, match="backend"):
        API(backend="gcp")


def test_local_cost_by_cpu_and_memory(api, home):
    (home).mkdir(parents=True, exist_ok=True)
    (home / "prices.json").write_text(json.dumps({"vcpu_hour": 0.5, "gib_hour": 0.25}))
    job = shell_job("sleep 1.2")  # the postrun times have whole seconds: at least one passes
    job["config"].update(cpu=2, mem=4)
    jobid = api.run_workflow(job)["jobid"]
    assert wait_done(api, jobid) == "SUCCEEDED"
    postrun = json.loads(api.log(job_id=jobid, postrunjson=True))
    start, end = (dt.datetime.strptime(postrun["Job"][k], "%Y%m%d-%H:%M:%S-UTC") for k in ("start_time", "end_time"))
    hours = (end - start).total_seconds() / 3600
    assert hours > 0
    assert api.cost(jobid) == pytest.approx((2 * 0.5 + 4 * 0.25) * hours)
    assert api.cost_estimate(input_json=job, hours=3) == (pytest.approx(6.0), "immediate estimate")
