"""A job's end reaches its execution by callback, at once; polling is the backstop when it cannot."""
from __future__ import annotations

import datetime as dt
import json

import boto3

from aws_harness import assert_melted, melting_job
from tibanna import protocol
from tibanna.agent.callback import Callback
from tibanna.backends.aws import iam, names, statemachine
from tibanna.backends.aws.lambdas import check_task_awsem


def _submit(api, deployed, job):
    return api.run_workflow(job, sfn=deployed["sfn"], open_browser=False)


def _delete_callback(api, payload):
    api.backend.store.delete("log-bucket", f"{payload['jobid']}{protocol.CALLBACK_JSON}")


def test_success_ends_the_execution_at_once_with_check_tasks_output(api, deployed, player, shell_job):
    job = shell_job("echo hello > /data1/out/hello.txt", outputs={"file:///data1/out/hello.txt": "greet/hello.txt"})
    submitted = _submit(api, deployed, job)
    jobid, exec_arn = submitted["jobid"], submitted["_tibanna"]["exec_arn"]
    started = player.now()
    outcome = player.play(exec_arn, on_wait=player.agent_on_wait)
    assert outcome.status == "SUCCEEDED" and outcome.retries == [], outcome
    assert player.now() - started < dt.timedelta(seconds=60)  # no retry interval, no timeout waited for
    # Seen at once by what stat, log, the Airflow trigger and the Prefect tasks read.
    assert api.check_status(job_id=jobid) == "SUCCEEDED"
    assert json.loads(api.log(job_id=jobid, postrunjson=True))["Job"]["status"] == "0"
    assert api.backend.get(job_id=jobid).status == "SUCCEEDED"
    # The same output check_task_awsem gives for this job.
    payload = {k: v for k, v in outcome.output.items() if k != "postrunjson"}
    assert outcome.output == check_task_awsem.check_task(payload, api.backend)
    assert api.check_output(job_id=jobid)["postrunjson"]["Job"]["JOBID"] == jobid


def test_failure_ends_the_execution_at_once_with_the_custom_label(api, deployed, player, shell_job):
    submitted = _submit(api, deployed, melting_job(shell_job))
    outcome = player.play(submitted["_tibanna"]["exec_arn"], on_wait=player.agent_on_wait)
    assert_melted(outcome)
    assert outcome.retries == []
    assert api.check_status(job_id=submitted["jobid"]) == "FAILED"
    instance_id = api.backend.index.get(submitted["jobid"])["instance_id"]  # EndJob terminated it
    state = boto3.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert state["State"]["Name"] in ("shutting-down", "terminated")


def test_an_agent_that_never_calls_back_ends_by_polling(api, deployed, player, shell_job):
    """An old agent (no callback): the wait times out, CheckTaskAwsem finds `.success`."""
    submitted = _submit(api, deployed, shell_job("echo ok"))

    def old_agent(state, payload):
        _delete_callback(api, payload)
        player.run_agent(payload)

    started = player.now()
    outcome = player.play(submitted["_tibanna"]["exec_arn"], on_wait=old_agent)
    assert outcome.status == "SUCCEEDED", outcome
    assert player.now() - started >= dt.timedelta(seconds=statemachine.HEARTBEAT_SECONDS)
    assert outcome.output["postrunjson"]["Job"]["JOBID"] == submitted["jobid"]


def test_a_stale_token_ends_by_polling(api, deployed, player, shell_job):
    submitted = _submit(api, deployed, shell_job("exit 3"))

    def stale(state, payload):
        key = f"{payload['jobid']}{protocol.CALLBACK_JSON}"
        api.backend.store.put_bytes("log-bucket", key, protocol.callback_document("0" * 64, payload))
        player.run_agent(payload)

    outcome = player.play(submitted["_tibanna"]["exec_arn"], on_wait=stale)
    assert (outcome.status, outcome.error) == ("FAILED", "AWSEMJobErrorException")
    assert outcome.cause.startswith("Job encountered an error")


def test_a_lost_instance_is_found_when_heartbeats_stop(api, deployed, player, shell_job):
    submitted = _submit(api, deployed, shell_job("sleep 1000"))

    def dies(state, payload):
        api.backend.store.put_bytes("log-bucket", f"{payload['jobid']}.job_started", b"")
        beats = Callback(api.backend.store, payload["jobid"], "log-bucket")
        assert beats._send("send_task_heartbeat")
        boto3.client("ec2").terminate_instances(InstanceIds=[payload["config"]["instance_id"]])

    started = player.now()
    outcome = player.play(submitted["_tibanna"]["exec_arn"], on_wait=dies)
    assert (outcome.error, outcome.cause) == (
        "EC2UnintendedTerminationException", f"EC2 is terminated unintendedly for job {submitted['jobid']} - please rerun.")
    waited = player.now() - started
    assert dt.timedelta(seconds=statemachine.HEARTBEAT_SECONDS) <= waited < dt.timedelta(minutes=10)


def test_heartbeats_keep_a_long_job_waiting(api, deployed, player, shell_job):
    """A job longer than HeartbeatSeconds, heartbeating, still ends by its callback."""
    submitted = _submit(api, deployed, shell_job("echo ok"))
    before = player.heartbeats

    def long_job(state, payload):
        beats = Callback(api.backend.store, payload["jobid"], "log-bucket")
        for _ in range(4):  # 4 x 200 s of work, a heartbeat after each
            player.offset += dt.timedelta(seconds=200)
            assert beats._send("send_task_heartbeat")
        player.run_agent(payload)

    outcome = player.play(submitted["_tibanna"]["exec_arn"], on_wait=long_job)
    assert outcome.status == "SUCCEEDED" and outcome.retries == [], outcome
    assert player.heartbeats - before >= 4


def test_a_late_heartbeat_is_refused_and_polling_takes_over(api, deployed, player, shell_job):
    submitted = _submit(api, deployed, shell_job("echo ok"))

    def late(state, payload):
        beats = Callback(api.backend.store, payload["jobid"], "log-bucket")
        player.offset += dt.timedelta(seconds=statemachine.HEARTBEAT_SECONDS + 1)
        assert not beats._send("send_task_heartbeat") and beats.stale
        player.run_agent(payload)

    outcome = player.play(submitted["_tibanna"]["exec_arn"], on_wait=late)
    assert outcome.status == "SUCCEEDED", outcome


def test_only_the_instance_role_may_answer_task_tokens():
    documents = iam.policy_documents("tests", ["log-bucket"], "us-east-1", "123456789012")
    actions = {a for s in documents["task_callback"]["Statement"] for a in s["Action"]}
    assert actions == {"states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"}
    holders = {role for role, policies in names.ROLE_POLICIES.items() if "task_callback" in policies}
    assert holders == {names.EC2_ROLE} and "task_callback" not in names.GROUP_POLICIES
