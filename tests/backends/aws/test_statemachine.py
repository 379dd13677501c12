"""The unicorn's state machine: valid ASL, Lambda's own failures retried, every failure ends the job."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import boto3
import pytest

from tibanna.backends.aws import statemachine

ASL_VALIDATOR = "asl-validator"  # .ci/run installs it: npm install -g asl-validator@4.0.0


def _instance_state(instance_id: str) -> str:
    reservations = boto3.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservations[0]["Instances"][0]["State"]["Name"]


def test_definitions_pass_the_asl_validator(tmp_path: Path):
    exe = shutil.which(ASL_VALIDATOR)
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{ASL_VALIDATOR} (npm) is not installed")
        pytest.skip(f"{ASL_VALIDATOR} (npm) is not installed")
    where = ("us-east-1", "123456789012", "tests", "sfx")
    for name, definition in (("unicorn", statemachine.definition(*where)),
                             ("costupdater", statemachine.costupdater_definition(*where))):
        path = tmp_path / f"{name}.json"
        path.write_text(statemachine.as_deployed(definition))
        result = subprocess.run([exe, "--json-path", str(path)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_task_that_can_fail_the_job_is_caught():
    states = statemachine.definition("us-east-1", "123456789012", "tests", None)["States"]
    for name, spec in states.items():
        if spec["Type"] != "Task":
            continue
        assert spec["Catch"][-1]["ErrorEquals"] == ["States.ALL"], name
        retried = {e for rule in spec["Retry"] for e in rule["ErrorEquals"]}
        assert {"Lambda.TooManyRequestsException", "Lambda.ClientExecutionTimeoutException", "Lambda.Unknown",
                "Lambda.ServiceException"} <= retried, name
    assert states["EndJob"]["Next"] == "JobFailed" and states["JobFailed"]["Type"] == "Fail"


def test_throttled_and_timed_out_lambdas_are_retried(api, deployed, player, shell_job):
    submitted = api.run_workflow(shell_job("echo ok"), sfn=deployed["sfn"], open_browser=False)
    errors = {1: "Lambda.TooManyRequestsException", 3: "Lambda.ClientExecutionTimeoutException", 4: "Lambda.Unknown"}
    outcome = player.play(submitted["_tibanna"]["exec_arn"], on_retry=player.agent_on_boot,
                          inject=lambda state, call, payload: errors.get(call))
    assert outcome.status == "SUCCEEDED", outcome
    assert [r for r in outcome.retries if r[1].startswith("Lambda.")] == [
        ("RunTaskAwsem", "Lambda.TooManyRequestsException"), ("WaitForJob", "Lambda.ClientExecutionTimeoutException"),
        ("WaitForJob", "Lambda.Unknown")]


def test_a_lambda_that_keeps_crashing_ends_the_job(api, deployed, player, shell_job):
    """check_task crashes every time: after its retries the job ends, its instance is terminated
    and `.error` holds the cause; the execution fails with Step Functions' error."""
    submitted = api.run_workflow(shell_job("echo ok"), sfn=deployed["sfn"], open_browser=False)
    outcome = player.play(submitted["_tibanna"]["exec_arn"],
                          inject=lambda state, call, payload: "Lambda.Unknown" if state == "CheckTaskAwsem" else None)
    assert (outcome.status, outcome.error) == ("FAILED", "Lambda.Unknown")
    assert outcome.retries.count(("CheckTaskAwsem", "Lambda.Unknown")) == 6
    jobid = submitted["jobid"]
    instance_id = api.backend.index.get(jobid)["instance_id"]
    assert _instance_state(instance_id) in ("shutting-down", "terminated")
    error = boto3.client("s3").get_object(Bucket="log-bucket", Key=f"{jobid}.error")["Body"].read().decode()
    assert error == "Lambda.Unknown: injected Lambda.Unknown\n"
    assert api.backend.get(job_id=jobid).status == "FAILED"


def test_end_job_terminates_an_instance_the_payload_does_not_name(api, deployed, player, shell_job):
    """run_task launched, then timed out before it answered: EndJob finds the instance by its tag."""
    submitted = api.run_workflow(shell_job("echo ok"), sfn=deployed["sfn"], open_browser=False)

    def launch_then_time_out(state, call, payload):
        if call == 1:
            player.call_lambda(state, payload)  # the launch happened; its answer is lost
            return "Lambda.Unknown"
        return None

    outcome = player.play(submitted["_tibanna"]["exec_arn"], inject=launch_then_time_out, max_attempts=0)
    assert outcome.retries == [] and outcome.error == "Lambda.Unknown"
    instance_id = api.backend.index.get(submitted["jobid"])["instance_id"]
    assert _instance_state(instance_id) in ("shutting-down", "terminated")
    payload = json.loads(api.backend.sfn.describe_execution(executionArn=submitted["_tibanna"]["exec_arn"])["input"])
    assert "instance_id" not in payload["config"]
