"""Upstream's resource names (docs/design.md 3.5): what users already see in their account."""
from __future__ import annotations

SFN_PREFIX = "tibanna_unicorn"
RUN_TASK = "run_task_awsem"
CHECK_TASK = "check_task_awsem"
UPDATE_COST = "update_cost_awsem"
LAMBDAS = (RUN_TASK, CHECK_TASK)  # the unicorn's, which deploy_core('all') deploys
ALL_LAMBDAS = (*LAMBDAS, UPDATE_COST)  # and the cost updater's (deploy_unicorn(deploy_costupdater=True))
COSTUPDATER_SUFFIX = "_costupdater"
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


def suffix(sfx: str | None, usergroup: str | None) -> str:
    """Upstream's create_tibanna_suffix: `_<group>_<suffix>`, `_<suffix>`, `_<group>` or ''."""
    return "".join(f"_{part}" for part in (usergroup, sfx) if part)


def sfn_name(usergroup: str | None, sfx: str | None = None) -> str:
    """`tibanna_unicorn[_<group>][_<suffix>]`."""
    return SFN_PREFIX + suffix(sfx, usergroup)


def costupdater_name(sfn: str) -> str:
    """`<sfn>_costupdater`: the cost updater of a unicorn."""
    return sfn + COSTUPDATER_SUFFIX


def lambda_name(kind: str, usergroup: str | None, sfx: str | None = None) -> str:
    """`run_task_awsem[_<group>][_<suffix>]`, `check_task_awsem...` or `update_cost_awsem...`."""
    return kind + suffix(sfx, usergroup)


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
