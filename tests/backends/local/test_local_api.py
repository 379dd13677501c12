"""The API on the local backend: dry runs, refusals, rerun_many, the admin verbs and local prices.

What every backend promises (status, logs, rerun, dependencies) is in tests/backends/test_contract.py,
run on this backend and on the stub."""
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
