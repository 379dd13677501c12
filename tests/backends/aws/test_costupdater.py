"""The cost updater on AWS: deploy_unicorn(deploy_costupdater=True), its execution started with each
job, its state machine played in-process until Cost Explorer (moto's queued results) bills the job."""
from __future__ import annotations

import datetime as dt
import json
import urllib.request
from typing import Iterator

import boto3
import pytest

from aws_harness import Outcome, Player
from tibanna import names
from tibanna.backends.aws.backend import AWSBackend
from tibanna.backends.aws.lambdas.update_cost_awsem import handler, update_cost

SUFFIX = "cu"


@pytest.fixture(scope="module")
def sfn(deployed: dict) -> str:
    """A unicorn of the tests' usergroup with its cost updater (its own suffix: other tests' jobs start none)."""
    return deployed["api"].deploy_unicorn(suffix=SUFFIX, usergroup=deployed["usergroup"], no_setup=True,
                                          no_setenv=True, deploy_costupdater=True)


def play_costupdater(backend: AWSBackend, player: Player, exec_arn: str) -> Iterator[dict]:
    """Play a cost updater execution as Step Functions would, yielding each answer of its Lambda.

    Waits pass on a fake clock; the Lambda runs in-process, its answer goes to its ResultPath; the
    Choice is evaluated on the payload; at the end the execution is closed in moto as SUCCEEDED.
    """
    sfn = backend.sfn
    execution = sfn.describe_execution(executionArn=exec_arn)
    states = json.loads(sfn.describe_state_machine(stateMachineArn=execution["stateMachineArn"])["definition"])
    payload, now, state = json.loads(execution["input"]), dt.datetime.now(dt.timezone.utc), states["StartAt"]
    while True:
        spec = states["States"][state]
        if spec["Type"] == "Wait":
            now += dt.timedelta(seconds=spec["Seconds"])
        elif spec["Type"] == "Task":
            answer = update_cost(payload, backend, now=now)
            payload[spec["ResultPath"].removeprefix("$.")] = answer
            yield answer
        elif spec["Type"] == "Choice":
            def value(path: str) -> object:
                found: object = payload
                for part in path.removeprefix("$.").split("."):
                    found = found[part]  # type: ignore[index]
                return found
            state = next((c["Next"] for c in spec["Choices"] if value(c["Variable"]) == c["BooleanEquals"]),
                         spec["Default"])
            continue
        if spec.get("End"):
            player._finish(exec_arn, Outcome("SUCCEEDED", output=payload))
            return
        state = spec["Next"]


def queue_cost(endpoint: str, amount: str) -> None:
    """The next new Cost Explorer query gets this cost (moto's queue of canned results)."""
    body = {"results": [{"ResultsByTime": [{"TimePeriod": {"Start": "2024-01-01", "End": "2024-01-02"},
                                            "Total": {"BlendedCost": {"Amount": amount, "Unit": "USD"}},
                                            "Groups": [], "Estimated": False}]}]}
    request = urllib.request.Request(f"{endpoint}/moto-api/static/ce/cost-and-usage-results",
                                     data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request) as response:
        assert response.status == 201


def test_deploy_adds_upstreams_cost_updater(api, sfn: str) -> None:
    machines = {m["name"] for m in boto3.client("stepfunctions").list_state_machines()["stateMachines"]}
    assert f"{sfn}_costupdater" in machines and "tibanna_unicorn_tests_costupdater" not in machines
    arn = api.backend.sfn_arn(f"{sfn}_costupdater")
    states = json.loads(boto3.client("stepfunctions").describe_state_machine(stateMachineArn=arn)["definition"])
    assert states["StartAt"] == "Wait" and states["States"]["Wait"] == {
        "Type": "Wait", "Seconds": 43200, "Next": "UpdateCostAwsem"}
    task = states["States"]["UpdateCostAwsem"]
    assert task["Resource"].endswith(":function:update_cost_awsem_tests_cu") and task["ResultPath"] == "$.done"
    assert states["States"]["UpdateCostDone"] == {
        "Type": "Choice", "Choices": [{"Variable": "$.done.done", "BooleanEquals": True, "Next": "Done"}],
        "Default": "Wait"}
    assert states["States"]["Done"] == {"Type": "Pass", "End": True}
    function = boto3.client("lambda").get_function_configuration(FunctionName="update_cost_awsem_tests_cu")
    assert function["Handler"] == "tibanna.backends.aws.lambdas.update_cost_awsem.handler"
    assert function["Role"].endswith(":role/tibanna_tests_update_cost_awsem")


def test_a_jobs_cost_reaches_its_report_once_billed(api, sfn, player, shell_job, moto_endpoint) -> None:
    job = api.run_workflow(shell_job("echo costly"), sfn=sfn, open_browser=False)
    exec_arn, run_name = job["_tibanna"]["exec_arn"], job["_tibanna"]["run_name"]
    updater_arn = exec_arn.replace(f":{sfn}:", f":{sfn}_costupdater:")
    updater = api.backend.sfn.describe_execution(executionArn=updater_arn)
    assert updater["name"] == run_name and json.loads(updater["input"]) == {
        "sfn_arn": exec_arn, "log_bucket": "log-bucket", "job_id": job["jobid"], "aws_region": "us-east-1"}

    answers = play_costupdater(api.backend, player, updater_arn)
    assert next(answers) == {"done": False, "message": "Job is still running"}
    assert player.play(exec_arn, on_retry=player.agent_on_boot).status == "SUCCEEDED"
    assert next(answers) == {"done": False, "message": "Cost not yet available."}
    queue_cost(moto_endpoint, "0.0123")
    event = json.loads(updater["input"])  # billed, but with no report to write it into: asked again later
    assert update_cost(event, api.backend) == {
        "done": False, "message": "Cost 0.0123 is known, but the job has no metrics report yet to hold it."}
    api.plot_metrics(job["jobid"], open_browser=False)
    assert next(answers) == {"done": True, "message": "Cost updated: 0.0123"}
    assert next(answers, None) is None
    assert api.backend.sfn.describe_execution(executionArn=updater_arn)["status"] == "SUCCEEDED"
    store = api.backend.store
    assert "Cost\t0.0123" in store.get_text("log-bucket", f"{job['jobid']}.metrics/metrics_report.tsv").splitlines()
    assert "<td>Cost (USD)</td><td class=num>$0.01230</td>" in store.get_text(
        "log-bucket", f"{job['jobid']}.metrics/metrics.html")


def test_the_updater_stops_when_the_job_is_unknown_or_three_days_old(api, deployed, player, shell_job) -> None:
    job = api.run_workflow(shell_job("echo old"), sfn=deployed["sfn"], open_browser=False)
    player.play(job["_tibanna"]["exec_arn"], on_retry=player.agent_on_boot)
    event = {"sfn_arn": job["_tibanna"]["exec_arn"], "log_bucket": "log-bucket", "job_id": job["jobid"],
             "aws_region": "us-east-1"}
    stopped = api.backend.sfn.describe_execution(executionArn=event["sfn_arn"])["stopDate"]
    assert update_cost(event, api.backend, now=stopped + dt.timedelta(days=3, seconds=1)) == {
        "done": True, "message": "Cost could not be retrieved after 3 days. Stopping."}
    unknown = dict(event, sfn_arn=event["sfn_arn"] + "-unknown")
    assert handler(unknown) == {
        "done": True, "message": "Could not get information about the unicorn step function. Exiting."}


def test_a_unicorn_without_cost_updater_is_asked_once(api, deployed, shell_job) -> None:
    started: list[str] = []
    api.backend.clients("stepfunctions").meta.events.register(
        "before-parameter-build.sfn.StartExecution",
        lambda params, **_: started.append(params["stateMachineArn"].rsplit(":", 1)[-1]))
    for command in ("echo free", "echo free again"):
        api.run_workflow(shell_job(command), sfn=deployed["sfn"], open_browser=False)
    assert started == [deployed["sfn"], f"{deployed['sfn']}_costupdater", deployed["sfn"]]


def test_cleanup_removes_the_cost_updater(api, deployed) -> None:
    sfn = api.deploy_unicorn(buckets="log-bucket", usergroup="costly", no_setenv=True, deploy_costupdater=True)
    removed = api.cleanup("costly", ignore_errors=False)
    assert {f"state machine {sfn}", f"state machine {sfn}_costupdater", "Lambda run_task_awsem_costly",
            "Lambda check_task_awsem_costly", "Lambda update_cost_awsem_costly",
            f"role tibanna_costly_{names.UPDATE_COST}"} <= set(removed)
    machines = {m["name"] for m in boto3.client("stepfunctions").list_state_machines()["stateMachines"]}
    assert not {sfn, f"{sfn}_costupdater"} & machines
