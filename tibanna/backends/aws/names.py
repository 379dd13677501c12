"""Upstream's resource names (docs/design.md 3.5): what users already see in their account.

The step function and Lambda names both backends share are in tibanna/names.py; these (IAM,
DynamoDB, tags, the bundles' prefix) only AWS has.
"""
from __future__ import annotations

from tibanna.names import ALL_LAMBDAS, CHECK_TASK, RUN_TASK, UPDATE_COST

TABLE = "tibanna-master"
TABLE_KEY = "Job Id"
# Our addition to upstream's table: jobs of a step function by submission time (stat, purge).
# Index names must match [a-zA-Z0-9_.-]+, so it cannot spell its key names with their spaces.
SFN_INDEX = "StepFunction-TimeStamp"
INSTANCE_NAME_PREFIX = "awsem-"
INSTANCE_TYPE_TAG = "awsem"
LAUNCH_TEMPLATE_PREFIX = "TibannaLaunchTemplate_"
BOOTSTRAP_PREFIX = "tibanna_bootstrap/"  # the agent bundles in a log bucket, by sha256
MAX_RUN_NAME = 80  # Step Functions' limit on an execution name

# Policies (tibanna_<group>_<name>); ec2_launch, lambdainvoke and ecr_read replace upstream's
# broad AWS-managed policies (AmazonEC2FullAccess, AWSLambdaRole, ECR read-only).
POLICIES = ("bucket_access", "ec2_termination", "list_instanceprofiles", "cloudwatchlogs", "iam_passrole_s3",
            "lambdainvoke", "cw_metric", "dynamodb", "ec2_desc", "ec2_launch", "pricing", "executions",
            "vpc_access", "ecr_read", "task_callback")
EC2_ROLE = "for_ec2"
STATES_ROLE = "states"
ROLE_POLICIES: dict[str, tuple[str, ...]] = {
    EC2_ROLE: ("bucket_access", "cw_metric", "ec2_desc", "ecr_read", "task_callback"),
    STATES_ROLE: ("lambdainvoke",),
    RUN_TASK: ("bucket_access", "list_instanceprofiles", "cloudwatchlogs", "iam_passrole_s3", "dynamodb",
               "executions", "ec2_desc", "ec2_launch", "pricing", "vpc_access"),
    CHECK_TASK: ("bucket_access", "cw_metric", "cloudwatchlogs", "ec2_desc", "ec2_termination", "dynamodb",
                 "pricing", "executions", "vpc_access"),
    UPDATE_COST: ("bucket_access", "cloudwatchlogs", "pricing", "executions", "vpc_access"),
}
GROUP_POLICIES = ("bucket_access", "ec2_desc", "cw_metric", "dynamodb", "ec2_termination", "pricing", "executions",
                  "cloudwatchlogs")
ROLE_SERVICES = {EC2_ROLE: "ec2.amazonaws.com", STATES_ROLE: "states.amazonaws.com",
                 **{kind: "lambda.amazonaws.com" for kind in ALL_LAMBDAS}}


def prefix(usergroup: str) -> str:
    """`tibanna_<group>`: the IAM group's name and the prefix of its roles and policies."""
    return f"tibanna_{usergroup}"


def role_name(usergroup: str, kind: str) -> str:
    return f"{prefix(usergroup)}_{kind}"


def policy_name(usergroup: str, kind: str) -> str:
    return f"{prefix(usergroup)}_{kind}"


def usergroup_of_role(role_arn: str) -> str | None:
    """The usergroup of a state machine's role ARN (`.../tibanna_<group>_states`), else None."""
    name = role_arn.rsplit("/", 1)[-1]
    if name.startswith("tibanna_") and name.endswith("_" + STATES_ROLE):
        return name[len("tibanna_"):-len(STATES_ROLE) - 1]
    return None


def instance_name(jobid: str) -> str:
    """The EC2 Name tag of a job's instance."""
    return INSTANCE_NAME_PREFIX + jobid


def state_machine_arn(region: str, account: str, name: str) -> str:
    """The ARN of a step function (a state machine) by name."""
    return f"arn:aws:states:{region}:{account}:stateMachine:{name}"
