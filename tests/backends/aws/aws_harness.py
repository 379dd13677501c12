"""Play the deployed state machine in-process, as Step Functions would, against a moto server.

moto records executions but runs none of them (and cannot run Lambda code without Docker), so
the player reads the deployed definition, calls our Lambda functions directly with the
deployed Lambdas' environment, applies each state's Retry rules on a fake clock (no sleeping)
and its Catch rules, can report Lambda's own failures (throttling, timeouts) instead of a call,
and finally sets the execution's status in moto, which is what Step Functions itself does.

A `.waitForTaskToken` state is played as Step Functions plays it: a fresh task token goes into
the Lambda's payload, then the state waits. SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat
calls (from the agent, through the backend's boto3 client) are seen before they reach moto: the
first answer ends the wait; a heartbeat or answer later than HeartbeatSeconds (or TimeoutSeconds)
after the last sign of life on the fake clock gets TaskTimedOut, as AWS answers, and so does any
token that is not waiting. A wait nobody answers times out with States.HeartbeatTimeout (or
States.Timeout) after that many fake seconds, and its Catch rules apply.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from botocore.awsrequest import AWSResponse
from moto.core.utils import utcnow
from moto.stepfunctions.models import stepfunctions_backends

from tibanna.agent import AgentDefaults, run_job
from tibanna.backends.aws import build, statemachine
from tibanna.backends.aws.backend import AWSBackend
from tibanna.backends.aws.lambdas import check_task_awsem, run_task_awsem

# Hook called when a state is about to be retried: (state name, error name, attempt, payload).
RetryHook = Callable[[str, str, int, dict], None]
# Called while a waitForTaskToken state waits: (state name, its input); the job lives here.
WaitHook = Callable[[str, dict], None]
# Asked before each Lambda call: (state name, call number, input) -> the name of an error Step
# Functions reports instead of the call's answer (e.g. Lambda.TooManyRequestsException), or None.
Injector = Callable[[str, int, dict], "str | None"]


class StepFunctionsError(Exception):
    """An error as Step Functions names it (a Lambda service failure, not an exception of ours)."""

    def __init__(self, name: str, cause: str) -> None:
        super().__init__(cause)
        self.name = name


def _matching(rules: list[dict], error: str) -> int | None:
    """The first Retry/Catch rule that applies to an error."""
    return next((i for i, r in enumerate(rules) if error in r["ErrorEquals"] or "States.ALL" in r["ErrorEquals"]),
                None)


def _path(payload: dict, path: str):
    """A `$.a.b` reference path's value."""
    value = payload
    for part in path.removeprefix("$").strip(".").split("."):
        value = value[part] if part else value
    return value


def _with_result(payload: dict, result_path: str | None, result: dict) -> dict:
    """ResultPath: `$` replaces the input, None keeps it, `$.x` sets a field of a copy of it."""
    if result_path is None:
        return payload
    if result_path == "$":
        return result
    updated = dict(payload)
    updated[result_path.removeprefix("$.")] = result
    return updated


def _parameters(template, payload: dict, context: dict):
    """A state's Parameters with its `key.$` paths resolved (`$$.` is the context object)."""
    if isinstance(template, dict):
        resolved = {}
        for key, value in template.items():
            if key.endswith(".$"):
                resolved[key[:-2]] = _path(context, value[1:]) if value.startswith("$$") else _path(payload, value)
            else:
                resolved[key] = _parameters(value, payload, context)
        return resolved
    return template


@dataclass
class Waiting:
    """A task token's wait: when it began and last heard of, and its answer once there is one."""

    since: dt.datetime
    limit: dt.timedelta
    answer: tuple[str, dict] | None = None
    timed_out: bool = False
    answered_at: float | None = None  # time.monotonic() of the answer (what the benchmark times)


@dataclass
class Outcome:
    status: str
    error: str | None = None
    cause: str | None = None
    output: dict | None = None
    retries: list[tuple[str, str]] = field(default_factory=list)



def melting_job(shell_job: Callable[..., dict]) -> dict:
    """A shell job whose command fails with a line its `custom_errors` label as `Melted`."""
    job = shell_job("echo 'sensor says: disk melted at 3pm' >&2; exit 3")
    job["args"]["custom_errors"] = [{"error_type": "Melted", "pattern": "disk melted at [0-9]+pm"}]
    return job


def assert_melted(outcome: Outcome) -> None:
    """A `melting_job`'s execution failed with its command's error, labelled as the job asked."""
    assert (outcome.status, outcome.error) == ("FAILED", "AWSEMJobErrorException"), outcome
    assert (outcome.cause or "").startswith(
        "Melted: disk melted at 3pm. For more info - check log using tibanna log"), outcome


class Player:
    """Plays executions of one backend's step functions."""

    def __init__(self, backend: AWSBackend, bundle_path: Path, workdir: Path) -> None:
        self.backend, self.bundle_path, self.workdir = backend, bundle_path, workdir
        self.offset = dt.timedelta()  # how far the fake clock is ahead of the real one (retry intervals)
        self.definition: dict = {}  # of the execution being played
        self.tokens: dict[str, Waiting] = {}
        self.heartbeats = 0
        self.closed_at: float | None = None  # time.monotonic() when the last execution was closed
        self.closed_at_epoch: float | None = None  # time.time() of the same moment
        self.current_token = ""  # of the waitForTaskToken state being played
        sfn = backend.clients("stepfunctions")
        for operation in ("SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat"):
            sfn.meta.events.register(f"before-call.sfn.{operation}", self._task_answer)
        _route_moto_answers(self)

    def now(self) -> dt.datetime:
        """The fake clock."""
        return dt.datetime.now(dt.timezone.utc) + self.offset

    def _task_answer(self, model, params: dict, **_: object):
        """SendTask* from this process: recorded for a waiting token (moto answers the call),
        TaskTimedOut otherwise."""
        if self.answer(model.name, json.loads(params["body"] or b"{}")):  # a JSON-protocol request body
            return None
        error = {"Error": {"Code": "TaskTimedOut", "Message": "Task Timed Out"},
                 "ResponseMetadata": {"HTTPStatusCode": 400}}
        return AWSResponse("https://injected", 400, {}, None), error

    def answer(self, operation: str, body: dict) -> bool:
        """A SendTask* call (`operation` by its API name) for a token; False when none waits for it."""
        waiting = self.tokens.get(body.get("taskToken", ""))
        now = self.now()
        if waiting is None or waiting.timed_out or waiting.answer is not None:
            return False
        if now - waiting.since > waiting.limit:
            waiting.timed_out = True
            return False
        if operation == "SendTaskHeartbeat":
            self.heartbeats += 1
            waiting.since = now
        else:
            waiting.answer, waiting.answered_at = (operation, body), time.monotonic()
        return True

    def answered(self) -> bool:
        """Whether the token being waited for has its answer (a loopback instance's agent called back)."""
        waiting = self.tokens.get(self.current_token)
        return waiting is not None and waiting.answer is not None

    def lambda_env(self, function: str) -> dict[str, str]:
        """The deployed Lambda's environment, with the bundle's path on this machine."""
        config = self.backend.clients("lambda").get_function_configuration(FunctionName=function)
        env = dict(config["Environment"]["Variables"])
        env[build.BUNDLE_PATH_ENV] = str(self.bundle_path)
        return env

    def play(self, exec_arn: str, on_retry: RetryHook | None = None, max_attempts: int = 60,
             inject: Injector | None = None, on_wait: WaitHook | None = None) -> Outcome:
        """Run the execution to its end: Task states with their Retry and Catch rules (first rule
        whose ErrorEquals names the error, or States.ALL), ResultPath, waitForTaskToken states
        (`on_wait` runs while one waits), and Fail states."""
        sfn = self.backend.sfn
        execution = sfn.describe_execution(executionArn=exec_arn)
        definition = json.loads(sfn.describe_state_machine(stateMachineArn=execution["stateMachineArn"])["definition"])
        self.definition = definition
        payload = json.loads(execution["input"])
        state, retries, calls = definition["StartAt"], [], 0
        while True:
            spec = definition["States"][state]
            if spec["Type"] == "Fail":
                error, cause = (_path(payload, spec[k]) if k in spec else spec.get(k[:-4])
                                for k in ("ErrorPath", "CausePath"))
                return self._finish(exec_arn, Outcome("FAILED", error, cause, retries=retries))
            function = spec["Resource"].rsplit(":", 1)[-1]
            attempts = [0] * len(spec.get("Retry", []))
            while True:
                calls += 1
                try:
                    injected = inject(state, calls, payload) if inject else None
                    if injected:
                        raise StepFunctionsError(injected, f"injected {injected}")
                    if spec["Resource"].endswith(".waitForTaskToken"):
                        result = self._wait_for_token(state, spec, payload, on_wait)
                    else:
                        result = self._call(function, payload)
                    payload = _with_result(payload, spec.get("ResultPath", "$"), result)
                    next_state = spec.get("Next")
                    break
                except Exception as err:  # noqa: BLE001 - Step Functions sees every error by its class name
                    name = err.name if isinstance(err, StepFunctionsError) else type(err).__name__
                    rule = _matching(spec.get("Retry", []), name)
                    if rule is not None and attempts[rule] < spec["Retry"][rule]["MaxAttempts"] \
                            and sum(attempts) < max_attempts:
                        attempts[rule] += 1
                        r = spec["Retry"][rule]
                        self.offset += dt.timedelta(
                            seconds=r["IntervalSeconds"] * r["BackoffRate"] ** (attempts[rule] - 1))
                        retries.append((state, name))
                        if on_retry:
                            on_retry(state, name, attempts[rule], payload)
                        continue
                    catch = _matching(spec.get("Catch", []), name)
                    if catch is None:
                        return self._finish(exec_arn, Outcome("FAILED", name, str(err), retries=retries))
                    rule_spec = spec["Catch"][catch]
                    payload = _with_result(payload, rule_spec.get("ResultPath", "$"), {"Error": name, "Cause": str(err)})
                    next_state = rule_spec["Next"]
                    break
            if next_state is None:
                return self._finish(exec_arn, Outcome("SUCCEEDED", output=payload, retries=retries))
            state = next_state

    def _wait_for_token(self, state: str, spec: dict, payload: dict, on_wait: WaitHook | None) -> dict:
        """A `.waitForTaskToken` task: invoke with a new token, wait, return the answer or raise."""
        token = uuid.uuid4().hex * 2
        parameters = _parameters(spec["Parameters"], payload, {"Task": {"Token": token}})
        limits = [spec[k] for k in ("HeartbeatSeconds", "TimeoutSeconds") if k in spec]
        self.current_token = token
        waiting = self.tokens[token] = Waiting(self.now(), dt.timedelta(seconds=min(limits) if limits else 10 ** 9))
        self._call(parameters["FunctionName"].rsplit(":", 1)[-1], parameters["Payload"])
        if on_wait:
            on_wait(state, payload)
        if waiting.answer is None or waiting.timed_out:
            waiting.timed_out = True
            self.offset += waiting.since + waiting.limit - self.now()
            timeout = "States.HeartbeatTimeout" if "HeartbeatSeconds" in spec else "States.Timeout"
            raise StepFunctionsError(timeout, f"no answer for {waiting.limit.total_seconds():.0f} s")
        operation, body = waiting.answer
        if operation == "SendTaskFailure":
            raise StepFunctionsError(body.get("error", "States.TaskFailed"), body.get("cause", ""))
        return json.loads(body["output"])

    def call_lambda(self, state: str, payload: dict) -> dict:
        """Call a state's Lambda of the execution being played, as the state would."""
        return self._call(self.definition["States"][state]["Resource"].rsplit(":", 1)[-1], payload)

    def _call(self, function: str, payload: dict) -> dict:
        saved = dict(os.environ)
        os.environ.update(self.lambda_env(function))
        try:
            now = dt.datetime.now(dt.timezone.utc) + self.offset
            if function.startswith("run_task_awsem"):
                return run_task_awsem.run_task(payload, self.backend, now=now)
            if statemachine.TASK_TOKEN_KEY in payload:
                return check_task_awsem.register_callback(payload, self.backend)
            if statemachine.FAILURE_KEY in payload:  # as check_task_awsem's handler dispatches
                return check_task_awsem.end_job(payload, self.backend)
            return check_task_awsem.check_task(payload, self.backend, now=now)
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def _finish(self, exec_arn: str, outcome: Outcome) -> Outcome:
        """Close the execution in moto as Step Functions would."""
        region, account = exec_arn.split(":")[3:5]
        execution = stepfunctions_backends[account][region].describe_execution(exec_arn)
        if execution.status == "RUNNING":
            execution.status, execution.stop_date = outcome.status, utcnow()
            execution.error, execution.cause = outcome.error, outcome.cause
            execution.output = json.dumps(outcome.output) if outcome.output is not None else None
        self.closed_at, self.closed_at_epoch = time.monotonic(), time.time()
        return outcome

    def run_agent(self, payload: dict) -> int:
        """Run the job's agent here, against S3, as the instance would."""
        return run_job(self.backend.store, payload["jobid"], payload["config"]["log_bucket"],
                       self.workdir / payload["jobid"], defaults=AgentDefaults(container_runtime="none"))

    def agent_on_wait(self, state: str, payload: dict) -> None:
        """A wait hook: the instance boots and its agent runs the job (and calls back)."""
        self.run_agent(payload)

    def agent_on_boot(self, state: str, error: str, attempt: int, payload: dict) -> None:
        """A retry hook: the instance boots (the agent runs) while check_task waits for it."""
        if error == "EC2StartingException" and attempt == 1:
            self.run_agent(payload)


def _route_moto_answers(player: Player) -> None:
    """SendTask* calls that reach the moto server from another process (a loopback instance's
    agent) go to `player` too: moto itself accepts them and does nothing."""
    from moto.stepfunctions.models import StepFunctionBackend

    StepFunctionBackend.send_task_success = lambda backend, task_token, outcome: player.answer(
        "SendTaskSuccess", {"taskToken": task_token, "output": outcome}) and None
    StepFunctionBackend.send_task_failure = lambda backend, task_token, error=None, cause=None: player.answer(
        "SendTaskFailure", {"taskToken": task_token, "error": error, "cause": cause or ""}) and None
    StepFunctionBackend.send_task_heartbeat = lambda backend, task_token: player.answer(
        "SendTaskHeartbeat", {"taskToken": task_token}) and None


def agent_bundle(tmp: Path) -> Path:
    """The agent's bundle, as deploy puts it in the Lambda."""
    built = build.agent_bundle()
    path = tmp / built.name
    path.write_bytes(built.data)
    return path


_OK = AWSResponse("https://injected", 200, {}, None)


class Injected:
    """Canned answers for botocore calls (before-call hooks), counting what they answered."""

    def __init__(self) -> None:
        self.calls = 0

    def capacity_errors(self, ec2, when: Callable[[dict], bool], code: str = "InsufficientInstanceCapacity") -> None:
        """CreateFleet answers with a capacity error among other overrides' errors (and DeleteFleets
        with success) while `when(body)`."""
        def create_fleet(params: dict, **_: object):
            if when(params["body"]):
                self.calls += 1
                return (_OK, {"FleetId": "fleet-injected", "Instances": [], "Errors": [
                    {"ErrorCode": "Unsupported", "ErrorMessage": "injected: type not offered in this zone"},
                    {"ErrorCode": code, "ErrorMessage": "injected"}]})
            return None

        def delete_fleets(params: dict, **_: object):
            if params["body"].get("FleetId.1") == "fleet-injected":
                return (_OK, {"SuccessfulFleetDeletions": [], "UnsuccessfulFleetDeletions": []})
            return None

        ec2.meta.events.register("before-call.ec2.CreateFleet", create_fleet)
        ec2.meta.events.register("before-call.ec2.DeleteFleets", delete_fleets)

    def not_found(self, ec2, times: int) -> None:
        """The first `times` DescribeInstances of one instance answer InvalidInstanceID.NotFound
        (as AWS may, right after CreateFleet)."""
        def describe(params: dict, **_: object):
            if self.calls < times and "InstanceId.1" in params["body"]:
                self.calls += 1
                error = {"Error": {"Code": "InvalidInstanceID.NotFound", "Message": "injected: not found"},
                         "ResponseMetadata": {"HTTPStatusCode": 400}}
                return AWSResponse("https://injected", 400, {}, None), error
            return None

        ec2.meta.events.register("before-call.ec2.DescribeInstances", describe)
