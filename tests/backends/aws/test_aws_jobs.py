"""Whole jobs on the AWS backend: submission to SUCCEEDED (or each failure), state machine played in-process."""
from __future__ import annotations

import json

import boto3

from aws_harness import Injected


def test_shell_job_succeeds_with_outputs_in_s3(api, deployed, player, shell_job):
    job = shell_job("echo hello > /data1/out/hello.txt", outputs={"file:///data1/out/hello.txt": "greet/hello.txt"})
    submitted = api.run_workflow(job, sfn=deployed["sfn"], open_browser=False)
    jobid = submitted["jobid"]
    assert api.log(job_id=jobid, runjson=True)  # run.json is there before anything runs
    outcome = player.play(submitted["_tibanna"]["exec_arn"], on_retry=player.agent_on_boot)
    assert outcome.status == "SUCCEEDED", outcome
    assert outcome.retries == [("CheckTaskAwsem", "EC2StartingException")]
    assert api.check_status(job_id=jobid) == "SUCCEEDED"
    body = boto3.client("s3").get_object(Bucket="out-bucket", Key="greet/hello.txt")["Body"].read()
    assert body == b"hello\n"
    assert outcome.output["postrunjson"]["Job"]["JOBID"] == jobid
    assert api.check_output(job_id=jobid)["postrunjson"]["Job"]["status"] == "0"
    instance = api.info(jobid)["instance_id"]
    assert instance.startswith("i-")
    state = boto3.client("ec2").describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    assert state["State"]["Name"] in ("shutting-down", "terminated")
    tags = {t["Key"]: t["Value"] for t in state["Tags"]}
    assert tags == {"Name": f"awsem-{jobid}", "Type": "awsem"}
    assert json.loads(api.log(job_id=jobid, postrunjson=True))["Job"]["JOBID"] == jobid


def test_an_instance_not_yet_visible_after_the_fleet_is_not_a_failed_launch(api, deployed, player, shell_job):
    injected = Injected()
    injected.not_found(api.backend.clients("ec2"), times=2)
    submitted = api.run_workflow(shell_job("echo ok"), sfn=deployed["sfn"], open_browser=False)
    outcome = player.play(submitted["_tibanna"]["exec_arn"], on_retry=player.agent_on_boot)
    assert outcome.status == "SUCCEEDED", outcome
    assert injected.calls == 2 and outcome.retries == [("CheckTaskAwsem", "EC2StartingException")]
