"""The state machines: `tibanna_unicorn*`, upstream's two Lambda states and retry rules, and its
optional cost updater `<unicorn>_costupdater`.

Lambda's own failures (throttling, client timeouts, crashes, service errors) are retried with
backoff. Any error that is not retried, or is retried no more, is caught: the `EndJob` state asks
`check_task_awsem` to end the job (terminate its instance, write `.error` with the cause), and
`JobFailed` then fails the execution with the original error and cause, so no instance outlives
its execution. The error's name is the Python exception class the Lambda raised
(AWSEMJobErrorException, EC2IdleException, ...) or Step Functions' name for a Lambda failure.

A job's end is seen by callback, not by polling: `WaitForJob` hands its task token to the job
(`check_task_awsem` writes it to the log bucket) and waits; the agent sends heartbeats and, with
the job's terminal marker, SendTaskSuccess (the execution's output) or SendTaskFailure (the
error and cause `check_task_awsem` would raise). When the heartbeats stop (the instance is
gone, the agent killed, or an agent that never calls back), the state times out and
`CheckTaskAwsem` polls as upstream does, which finds the job's true state.
"""
from __future__ import annotations

import json

from tibanna import names

LAMBDA_ERRORS = ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                 "Lambda.ResourceNotFoundException", "Lambda.TooManyRequestsException",
                 "Lambda.ClientExecutionTimeoutException", "Lambda.Unknown"]
FAILURE_KEY = "failure"
FAILURE_PATH = f"$.{FAILURE_KEY}"  # where a caught error's {Error, Cause} goes in the state's input
END_JOB, JOB_FAILED = "EndJob", "JobFailed"
WAIT_FOR_JOB, CHECK_TASK = "WaitForJob", "CheckTaskAwsem"
TASK_TOKEN_KEY = "task_token"  # in check_task_awsem's event: hand this token to the job
STATE_INPUT_KEY = "state_input"
# No heartbeat for this long: the job is checked by polling from then on. It is also the boot
# allowance (the agent's first heartbeat comes once it is installed); upstream's poll interval,
# so a lost instance is found no later than upstream finds it.
HEARTBEAT_SECONDS = 300
CALLBACK_INTEGRATION = "arn:aws:states:::lambda:invoke.waitForTaskToken"
TIMEOUT_ERRORS = ["States.HeartbeatTimeout", "States.Timeout"]


def _retry(errors: list[str], interval: int, attempts: int, backoff: float) -> dict:
    return {"ErrorEquals": errors, "IntervalSeconds": interval, "MaxAttempts": attempts, "BackoffRate": backoff}


LAMBDA_RETRY = _retry(LAMBDA_ERRORS, 60, 6, 2.0)
RUN_TASK_RETRY = [
    _retry(["DependencyStillRunningException"], 600, 10000, 1.0),
    _retry(["EC2InstanceLimitWaitException"], 300, 2016, 1.0),
    LAMBDA_RETRY,
]
CHECK_TASK_RETRY = [
    _retry(["EC2StartingException"], 300, 25, 1.0),
    _retry(["StillRunningException"], 300, 100000, 1.0),
    LAMBDA_RETRY,
]
COSTUPDATER_WAIT_SECONDS = 43200  # upstream's: try every 12 hours


def lambda_arn(region: str, account: str, kind: str, usergroup: str, sfx: str | None) -> str:
    """The ARN of a state's Lambda, e.g. `...:function:run_task_awsem_<group>`."""
    return f"arn:aws:lambda:{region}:{account}:function:{names.lambda_name(kind, usergroup, sfx)}"


def _catch(next_state: str, result_path: str | None) -> list[dict]:
    return [{"ErrorEquals": ["States.ALL"], "ResultPath": result_path, "Next": next_state}]


def definition(region: str, account: str, usergroup: str, sfx: str | None) -> dict:
    """The ASL definition of `tibanna_unicorn<suffix>`."""
    check_task = lambda_arn(region, account, names.CHECK_TASK, usergroup, sfx)
    return {
        "Comment": "Start a workflow run on awsem and track it",
        "StartAt": "RunTaskAwsem",
        "States": {
            "RunTaskAwsem": {"Type": "Task", "Resource": lambda_arn(region, account, names.RUN_TASK, usergroup, sfx),
                             "Retry": RUN_TASK_RETRY, "Catch": _catch(END_JOB, FAILURE_PATH),
                             "Next": WAIT_FOR_JOB},
            WAIT_FOR_JOB: {"Type": "Task", "Resource": CALLBACK_INTEGRATION,
                           "Parameters": {"FunctionName": check_task,
                                          "Payload": {f"{TASK_TOKEN_KEY}.$": "$$.Task.Token",
                                                      f"{STATE_INPUT_KEY}.$": "$"}},
                           "HeartbeatSeconds": HEARTBEAT_SECONDS, "Retry": [LAMBDA_RETRY],
                           "Catch": [{"ErrorEquals": TIMEOUT_ERRORS, "ResultPath": None, "Next": CHECK_TASK},
                                     *_catch(END_JOB, FAILURE_PATH)],
                           "End": True},
            CHECK_TASK: {"Type": "Task", "Resource": check_task, "Retry": CHECK_TASK_RETRY,
                               "Catch": _catch(END_JOB, FAILURE_PATH), "End": True},
            # check_task_awsem ends a job whose input has `failure`; its answer is not kept.
            END_JOB: {"Type": "Task", "Resource": check_task, "ResultPath": None, "Retry": [LAMBDA_RETRY],
                      "Catch": _catch(JOB_FAILED, None), "Next": JOB_FAILED},
            JOB_FAILED: {"Type": "Fail", "ErrorPath": f"{FAILURE_PATH}.Error", "CausePath": f"{FAILURE_PATH}.Cause"},
        },
    }


def costupdater_definition(region: str, account: str, usergroup: str, sfx: str | None) -> dict:
    """The ASL definition of `tibanna_unicorn<suffix>_costupdater`: wait, ask `update_cost_awsem`
    (its answer goes to `$.done`), stop once `$.done.done` is true, else wait again. Upstream's,
    plus the Lambda service retry that the unicorn's states have."""
    return {
        "Comment": "Update costs for a workflow run",
        "StartAt": "Wait",
        "States": {
            "Wait": {"Type": "Wait", "Seconds": COSTUPDATER_WAIT_SECONDS, "Next": "UpdateCostAwsem"},
            "UpdateCostAwsem": {"Type": "Task",
                                "Resource": lambda_arn(region, account, names.UPDATE_COST, usergroup, sfx),
                                "ResultPath": "$.done", "Retry": [LAMBDA_RETRY], "Next": "UpdateCostDone"},
            "UpdateCostDone": {"Type": "Choice",
                               "Choices": [{"Variable": "$.done.done", "BooleanEquals": True, "Next": "Done"}],
                               "Default": "Wait"},
            "Done": {"Type": "Pass", "End": True},
        },
    }


def as_deployed(definition: dict) -> str:
    """A definition as deployed (indent 4, sorted keys, as upstream)."""
    return json.dumps(definition, indent=4, sort_keys=True)
