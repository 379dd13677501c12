"""The API on the AWS backend: submission, stat, kill, rerun, list_sfns; API calls counted."""
from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from tibanna.exceptions import UserInputError


class CallCounter:
    """Counts the AWS API calls made through one backend's clients (service.Operation -> n)."""

    def __init__(self, backend, services=("stepfunctions", "dynamodb", "ec2", "s3")) -> None:
        self.calls: Counter[str] = Counter()
        for service in services:
            backend.clients(service).meta.events.register("before-call", self._count)

    def _count(self, model, **_: object) -> None:
        self.calls[f"{model.service_model.service_id.hyphenize()}.{model.name}"] += 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def _submit_many(api, deployed, shell_job, n: int) -> list[dict]:
    return api.run_batch_workflows([shell_job(f"echo {i}") for i in range(n)], sfn=deployed["sfn"],
                                   open_browser=False)


def test_same_jobid_starts_one_execution(api, deployed, shell_job):
    first = api.run_workflow(shell_job("echo once"), sfn=deployed["sfn"], jobid="only-once-1")
    again = api.run_workflow(shell_job("echo twice"), sfn=deployed["sfn"], jobid="only-once-1")
    assert again["_tibanna"]["exec_arn"] == first["_tibanna"]["exec_arn"]
    assert again["args"]["command"] == "echo once"
    arn = api.backend.sfn_arn(deployed["sfn"])
    names = [e["name"] for p in boto3.client("stepfunctions").get_paginator("list_executions").paginate(
        stateMachineArn=arn) for e in p["executions"]]
    assert names.count(first["_tibanna"]["run_name"]) == 1


def test_a_taken_run_name_gets_a_fresh_one(api, deployed, shell_job):
    job = shell_job("echo named")
    job["config"]["run_name"] = "my-run"
    first = api.run_workflow(job, sfn=deployed["sfn"])
    second = api.run_workflow(job, sfn=deployed["sfn"])
    assert first["_tibanna"]["run_name"] == "my-run"
    assert second["_tibanna"]["run_name"].startswith("my-run-") and second["jobid"] != first["jobid"]
    assert api.info(second["jobid"])["Execution Name"] == second["_tibanna"]["run_name"]
    assert json.loads(api.log(job_id=second["jobid"], runjson=True))["config"]["run_name"] == second["config"]["run_name"]


def test_a_claimed_but_never_started_job_is_resumed(api, deployed, shell_job):
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H:%M:%S-UTC")
    api.backend.index.claim([{"Job Id": "lost-submit-1", "Execution Name": "lost-name", "Step Function": deployed["sfn"],
                              "Log Bucket": "log-bucket", "Time Stamp": stamp}])
    result = api.run_workflow(shell_job("echo resumed"), sfn=deployed["sfn"], jobid="lost-submit-1")
    assert result["_tibanna"]["run_name"] == "lost-name"
    assert api.check_status(job_id="lost-submit-1") == "RUNNING"


def test_unknown_sfn_and_foreign_bucket_are_refused(api, deployed, shell_job):
    with pytest.raises(UserInputError, match="does not exist"):
        api.run_workflow(shell_job("true"), sfn="tibanna_unicorn_nobody")
    job = shell_job("true")
    job["config"]["log_bucket"] = "someone-elses-bucket"
    with pytest.raises(UserInputError, match="may not use bucket"):
        api.run_workflow(job, sfn=deployed["sfn"])


def test_stat_costs_pages_not_jobs(api, deployed, shell_job):
    jobs = _submit_many(api, deployed, shell_job, 40)
    counter = CallCounter(api.backend)
    rows = api.stat(sfn=deployed["sfn"], verbose=True)
    assert {j["jobid"] for j in jobs} <= {r["jobid"] for r in rows}
    assert all(r["status"] == "RUNNING" for r in rows if r["jobid"] in {j["jobid"] for j in jobs})
    assert "sfn.DescribeExecution" not in counter.calls
    assert counter.total <= 4, counter.calls  # ListExecutions, Query, DescribeInstances (one page each)
    counter.calls.clear()
    picked = [jobs[3]["jobid"], jobs[0]["jobid"]]
    rows = api.stat(job_ids=picked)
    assert [r["jobid"] for r in rows] == picked
    assert counter.calls["dynamodb.BatchGetItem"] == 1 and "sfn.DescribeExecution" not in counter.calls
    assert len(api.stat(sfn=deployed["sfn"], n=5)) == 5


def test_stat_long_columns_and_list_sfns_counts(api, deployed, player, shell_job):
    done = api.run_workflow(shell_job("echo done"), sfn=deployed["sfn"])
    api.run_workflow(shell_job("echo still running"), sfn=deployed["sfn"])
    player.play(done["_tibanna"]["exec_arn"], on_retry=player.agent_on_boot)
    row = api.stat(job_ids=[done["jobid"]], verbose=True)[0]
    assert row["status"] == "SUCCEEDED" and row["instance_id"].startswith("i-")
    assert row["instance_type"] == "t3.micro" and row["instance_status"] in ("shutting-down", "terminated")
    assert row["ip"] == "-" and row["stop_time"] != "-"
    succeeded = api.stat(sfn=deployed["sfn"], status="SUCCEEDED")
    assert done["jobid"] in [r["jobid"] for r in succeeded] and {r["status"] for r in succeeded} == {"SUCCEEDED"}
    [sfn] = [s for s in api.list_sfns(numbers=True) if s["name"] == deployed["sfn"]]
    assert sfn["SUCCEEDED"] >= 1 and sfn["RUNNING"] >= 1


def test_rerun_by_job_id_keeps_the_input_and_links_to_the_first(api, deployed, shell_job):
    first = api.run_workflow(shell_job("echo again"), sfn=deployed["sfn"])
    api.kill(job_id=first["jobid"])
    rerun = api.rerun(job_id=first["jobid"], instance_type="t3.small")
    assert rerun["args"]["command"] == "echo again" and rerun["config"]["instance_type"] == "t3.small"
    rerun2 = api.rerun(job_id=rerun["jobid"])
    assert api.backend.get(job_id=rerun2["jobid"]).rerun_of == first["jobid"]
    reruns = api.rerun_many(sfn=deployed["sfn"], status="ABORTED", stopdate="01Jan2020")
    assert first["jobid"] not in {r["jobid"] for r in reruns} and len(reruns) >= 1


def test_kill_all_soft_marks_every_running_job(api, deployed, shell_job):
    jobs = _submit_many(api, deployed, shell_job, 3)
    killed = api.kill_all(sfn=deployed["sfn"], soft=True)
    assert {j["jobid"] for j in jobs} <= set(killed)
    for job in jobs:
        assert api.backend.store.exists("log-bucket", job["jobid"] + ".aborted")


def test_log_and_info(api, deployed, shell_job):
    job = api.run_workflow(shell_job("echo x"), sfn=deployed["sfn"])
    assert api.log(job_id=job["jobid"]) == ""
    assert json.loads(api.log(job_id=job["jobid"], runjson=True))["Job"]["JOBID"] == job["jobid"]
    info = api.info(job["jobid"])
    assert info["Step Function"] == deployed["sfn"] and info["Log Bucket"] == "log-bucket"
    assert api.info("no-such-job") is None


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: object):
        yield self.body


class Throttler:
    """Answers `limit` calls of one operation, after the first `skip`, with a throttling error.

    Throttling comes when a client sends fast; botocore's adaptive mode then lowers its rate to a
    share of the rate it measured, so the errors are injected once there is a rate to measure.
    """

    BODIES = {"s3": (503, b"<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>"),
              "json": (400, b'{"__type":"ThrottlingException","message":"Rate exceeded"}')}

    def __init__(self, client, operation: str, kind: str, limit: int, skip: int = 0) -> None:
        self.limit, self.skip, self.seen, self.injected = limit, skip, 0, 0
        self.status, self.body = self.BODIES[kind]
        client.meta.events.register(f"before-send.{client.meta.service_model.service_id.hyphenize()}.{operation}",
                                    self._before_send)

    def _before_send(self, request, **_: object):
        self.seen += 1
        if self.seen > self.skip and self.injected < self.limit:
            self.injected += 1
            return AWSResponse(request.url, self.status, {}, _Raw(self.body))
        return None


def test_throttling_is_survived_and_nothing_is_lost(api, deployed, shell_job):
    backend = api.backend
    throttlers = [Throttler(backend.clients("stepfunctions"), "StartExecution", "json", limit=2, skip=27),
                  Throttler(backend.clients("dynamodb"), "TransactWriteItems", "json", limit=1),
                  Throttler(backend.clients("s3"), "PutObject", "s3", limit=2, skip=27)]
    jobs = _submit_many(api, deployed, shell_job, 30)
    assert [t.injected for t in throttlers] == [2, 1, 2]
    ids = [j["jobid"] for j in jobs]
    assert len(set(ids)) == 30
    assert [r.jobid for r in api.__class__(backend="aws").backend.get_many(ids)] == ids  # fresh, unthrottled clients
    keys = {o["Key"] for p in boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket="log-bucket")
            for o in p.get("Contents", [])}
    assert {j + ".run.json" for j in ids} <= keys
    arn = backend.sfn_arn(deployed["sfn"])
    started = Counter(e["name"] for p in boto3.client("stepfunctions").get_paginator("list_executions").paginate(
        stateMachineArn=arn) for e in p["executions"])
    assert all(started[j["_tibanna"]["run_name"]] == 1 for j in jobs)


@pytest.mark.parametrize("field, change", [
    ("config.kms_key_id", lambda job: job["config"].update(kms_key_id="alias/mine")),
    ("config.encrypt_s3_upload", lambda job: job["config"].update(encrypt_s3_upload=True)),
    ("config.public_postrun_json", lambda job: job["config"].update(public_postrun_json=True)),
    ("args.input_files.in1.mount", lambda job: job["args"].update(
        input_files={"in1": {"bucket_name": "in-bucket", "object_key": "a.txt", "mount": True}})),
    ("args.output_target.file:///data1/out/a.tag", lambda job: job["args"].update(
        output_target={"file:///data1/out/a": {"object_key": "a", "tag": "project=x"}})),
])
def test_upstream_options_not_carried_out_are_refused(api, deployed, shell_job, field, change):
    job = shell_job("true")
    change(job)
    jobid = "refused-" + field.rsplit(".", 1)[-1].replace("_", "-")
    with pytest.raises(UserInputError, match=f"^{re.escape(field)}: .* not supported"):
        api.run_workflow(job, sfn=deployed["sfn"], jobid=jobid)
    assert api.backend.index.get(jobid) is None
    assert not list(api.backend.store.list_keys("log-bucket", jobid + "."))
