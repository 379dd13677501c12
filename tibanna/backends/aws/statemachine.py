"""The `tibanna_unicorn*` state machine: upstream's two Lambda states and retry rules (reference 3.1).

There is no Catch: any error not retried fails the execution, and its name is the Python
exception class the Lambda raised (AWSEMJobErrorException, EC2IdleException, ...).
"""
from __future__ import annotations

import json

from tibanna.backends.aws import names

LAMBDA_ERRORS = ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                 "Lambda.ResourceNotFoundException"]


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


def definition(region: str, account: str, usergroup: str, sfx: str | None) -> dict:
    """The ASL definition of `tibanna_unicorn<suffix>`."""
    def arn(kind: str) -> str:
        return f"arn:aws:lambda:{region}:{account}:function:{names.lambda_name(kind, usergroup, sfx)}"

    return {
        "Comment": "Start a workflow run on awsem and track it",
        "StartAt": "RunTaskAwsem",
        "States": {
            "RunTaskAwsem": {"Type": "Task", "Resource": arn(names.RUN_TASK), "Retry": RUN_TASK_RETRY,
                             "Next": "CheckTaskAwsem"},
            "CheckTaskAwsem": {"Type": "Task", "Resource": arn(names.CHECK_TASK), "Retry": CHECK_TASK_RETRY,
                               "End": True},
        },
    }


def definition_json(region: str, account: str, usergroup: str, sfx: str | None) -> str:
    """The definition as deployed (indent 4, sorted keys, as upstream)."""
    return json.dumps(definition(region, account, usergroup, sfx), indent=4, sort_keys=True)
