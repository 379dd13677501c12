"""IAM for one usergroup: policies scoped to its buckets, roles, instance profile, group.

Upstream's names. Re-running updates in place: a policy gets a new default
version (the oldest extra version is dropped at AWS's limit of five), roles and the group keep
their attachments. Nothing grants S3 beyond the usergroup's buckets.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Callable

from botocore.exceptions import ClientError

from tibanna.backends.aws import names
from tibanna.names import ALL_LAMBDAS, sfn_name
from tibanna.storage.s3 import Clients, error_code

log = logging.getLogger(__name__)

# Upstream uses these placeholders when a usergroup is set up without buckets.
PLACEHOLDER_BUCKETS = ("my-tibanna-test-bucket", "my-tibanna-test-input-bucket")
_MAX_POLICY_VERSIONS = 5


def _statement(actions: list[str], resources: list[str] | str, **extra: Any) -> dict:
    return {"Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def policy_documents(usergroup: str, buckets: list[str], region: str, account: str) -> dict[str, dict]:
    """Every policy of a usergroup by short name (bucket_access, dynamodb, ...)."""
    buckets = list(buckets) or list(PLACEHOLDER_BUCKETS)
    sfn_arn = names.state_machine_arn(region, account, sfn_name(usergroup))
    exec_arn = f"arn:aws:states:{region}:{account}:execution:{sfn_name(usergroup)}"
    table_arn = f"arn:aws:dynamodb:{region}:{account}:table/{names.TABLE}"
    lambda_arn = f"arn:aws:lambda:{region}:{account}:function:"
    statements: dict[str, list[dict]] = {
        "bucket_access": [
            _statement(["s3:ListBucket"], [f"arn:aws:s3:::{b}" for b in buckets]),
            _statement(["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:PutObjectAcl",
                        "s3:PutObjectTagging", "s3:AbortMultipartUpload"], [f"arn:aws:s3:::{b}/*" for b in buckets]),
        ],
        "ec2_termination": [_statement(["ec2:TerminateInstances"], "*",
                                       Condition={"StringEquals": {"ec2:ResourceTag/Type": names.INSTANCE_TYPE_TAG}})],
        "list_instanceprofiles": [_statement(["iam:ListInstanceProfiles"], "*")],
        "cloudwatchlogs": [_statement(["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                                       "logs:GetLogEvents", "logs:FilterLogEvents"],
                                      f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/*")],
        "iam_passrole_s3": [_statement(["iam:PassRole"],
                                       f"arn:aws:iam::{account}:role/{names.role_name(usergroup, names.EC2_ROLE)}")],
        "lambdainvoke": [_statement(["lambda:InvokeFunction"],
                                    [f"{lambda_arn}{kind}_{usergroup}*" for kind in ALL_LAMBDAS])],
        "cw_metric": [_statement(["cloudwatch:PutMetricData", "cloudwatch:GetMetricStatistics",
                                  "cloudwatch:GetMetricData", "cloudwatch:ListMetrics"], "*")],
        "dynamodb": [_statement(["dynamodb:DescribeTable", "dynamodb:PutItem", "dynamodb:GetItem",
                                 "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:UpdateItem"],
                                [table_arn, f"{table_arn}/index/*"])],
        "ec2_desc": [_statement(["ec2:DescribeInstances", "ec2:DescribeInstanceStatus", "ec2:DescribeInstanceTypes",
                                 "ec2:DescribeSpotPriceHistory", "ec2:DescribeSpotInstanceRequests",
                                 "ec2:DescribeTags"], "*")],
        "ec2_launch": [_statement(["ec2:CreateFleet", "ec2:DeleteFleets", "ec2:RunInstances", "ec2:CreateTags",
                                   "ec2:CreateLaunchTemplate", "ec2:DeleteLaunchTemplate",
                                   "ec2:DescribeLaunchTemplates", "ec2:DescribeImages", "ec2:DescribeSubnets",
                                   "ec2:DescribeSecurityGroups", "ec2:RequestSpotInstances"], "*"),
                       _statement(["ssm:GetParameter"], f"arn:aws:ssm:{region}::parameter/aws/service/*"),
                       _statement(["iam:CreateServiceLinkedRole"], "*",
                                  Condition={"StringLike": {"iam:AWSServiceName": "spot.amazonaws.com"}})],
        "pricing": [_statement(["pricing:GetProducts", "pricing:DescribeServices", "pricing:GetAttributeValues",
                                "ce:GetCostAndUsage"], "*")],
        "executions": [_statement(["states:StartExecution", "states:StopExecution", "states:ListExecutions",
                                   "states:DescribeStateMachine"], f"{sfn_arn}*"),
                       _statement(["states:DescribeExecution", "states:StopExecution",
                                   "states:GetExecutionHistory"], f"{exec_arn}*"),
                       _statement(["states:ListStateMachines"], "*")],
        "vpc_access": [_statement(["ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces",
                                   "ec2:DeleteNetworkInterface"], "*")],
        # The instance answers its execution's task token. These actions take no resource ARN (the
        # token is the capability), so the grant is by action alone, and only the instance role has it.
        "task_callback": [_statement(["states:SendTaskSuccess", "states:SendTaskFailure",
                                      "states:SendTaskHeartbeat"], "*")],
        "ecr_read": [_statement(["ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability",
                                 "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"], "*")],
    }
    return {kind: {"Version": "2012-10-17", "Statement": body} for kind, body in statements.items()}


def trust_document(service: str) -> dict:
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}


def policy_arn(account: str, usergroup: str, kind: str) -> str:
    return f"arn:aws:iam::{account}:policy/{names.policy_name(usergroup, kind)}"


def role_arn(account: str, usergroup: str, kind: str) -> str:
    return f"arn:aws:iam::{account}:role/{names.role_name(usergroup, kind)}"


def run_steps(steps: list[tuple[str, Callable[[], Any]]], ignore_errors: bool) -> list[str]:
    """Run labelled removal steps; returns the labels done. AWS errors stop it unless ignored."""
    done = []
    for label, step in steps:
        try:
            step()
            done.append(label)
        except ClientError as err:
            if not ignore_errors:
                raise
            log.debug("cleanup: %s: %s", label, err)
    return done


class UsergroupIAM:
    """Creates, updates, reads and removes one usergroup's IAM resources."""

    def __init__(self, clients: Clients, usergroup: str) -> None:
        self.clients, self.usergroup = clients, usergroup
        self.iam = clients("iam")

    def apply(self, buckets: list[str]) -> None:
        """Create or update every policy, role, the instance profile and the group."""
        account = self.clients.account
        for kind, document in policy_documents(self.usergroup, buckets, self.clients.region, account).items():
            self._put_policy(policy_arn(account, self.usergroup, kind), names.policy_name(self.usergroup, kind),
                             document)
        for kind, policies in names.ROLE_POLICIES.items():
            name = names.role_name(self.usergroup, kind)
            trust = json.dumps(trust_document(names.ROLE_SERVICES[kind]))
            try:
                self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)
            except ClientError as err:
                if error_code(err) != "EntityAlreadyExists":
                    raise
                self.iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust)
            for policy in policies:
                self.iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn(account, self.usergroup, policy))
        profile = names.role_name(self.usergroup, names.EC2_ROLE)
        try:
            self.iam.create_instance_profile(InstanceProfileName=profile)
        except ClientError as err:
            if error_code(err) != "EntityAlreadyExists":
                raise
        roles = self.iam.get_instance_profile(InstanceProfileName=profile)["InstanceProfile"]["Roles"]
        if not any(r["RoleName"] == profile for r in roles):
            self.iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=profile)
        self._wait_visible(profile)
        group = names.prefix(self.usergroup)
        try:
            self.iam.create_group(GroupName=group)
        except ClientError as err:
            if error_code(err) != "EntityAlreadyExists":
                raise
        for policy in names.GROUP_POLICIES:
            self.iam.attach_group_policy(GroupName=group, PolicyArn=policy_arn(account, self.usergroup, policy))
        log.info("IAM for usergroup %s: group %s, roles and policies scoped to %s", self.usergroup, group,
                 ", ".join(buckets) or "the placeholder buckets")

    def _wait_visible(self, profile: str) -> None:
        """Wait until IAM shows every role and the instance profile (new ones take a moment); Lambda and
        EC2 may see them later still, so CreateFunction and CreateFleet retry on their side."""
        for kind in names.ROLE_POLICIES:
            self.iam.get_waiter("role_exists").wait(RoleName=names.role_name(self.usergroup, kind),
                                                    WaiterConfig={"Delay": 2, "MaxAttempts": 30})
        self.iam.get_waiter("instance_profile_exists").wait(InstanceProfileName=profile,
                                                            WaiterConfig={"Delay": 2, "MaxAttempts": 30})

    def _put_policy(self, arn: str, name: str, document: dict) -> None:
        text = json.dumps(document)
        try:
            self.iam.create_policy(PolicyName=name, PolicyDocument=text)
            return
        except ClientError as err:
            if error_code(err) != "EntityAlreadyExists":
                raise
        versions = self.iam.list_policy_versions(PolicyArn=arn)["Versions"]
        if len(versions) >= _MAX_POLICY_VERSIONS:
            oldest = min((v for v in versions if not v["IsDefaultVersion"]), key=lambda v: v["CreateDate"])
            self.iam.delete_policy_version(PolicyArn=arn, VersionId=oldest["VersionId"])
        self.iam.create_policy_version(PolicyArn=arn, PolicyDocument=text, SetAsDefault=True)

    def buckets(self) -> list[str] | None:
        """The buckets the usergroup may use (from its bucket policy), or None when it cannot be read."""
        arn = policy_arn(self.clients.account, self.usergroup, "bucket_access")
        try:
            version = self.iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
            document = self.iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
        except ClientError as err:
            log.debug("cannot read %s: %s", arn, err)
            return None
        if isinstance(document, str):
            document = json.loads(document)
        for statement in document["Statement"]:
            if "s3:ListBucket" in statement["Action"]:
                return [r.split(":::", 1)[1] for r in statement["Resource"]]
        return []

    def remove(self, ignore_errors: bool) -> list[str]:
        """Delete roles (after detaching), the instance profile, the group (after removing users), policies."""
        account = self.clients.account
        profile = names.role_name(self.usergroup, names.EC2_ROLE)
        steps = [(f"instance profile {profile}", lambda: self._remove_profile(profile))]
        for kind in names.ROLE_POLICIES:
            role = names.role_name(self.usergroup, kind)
            steps.append((f"role {role}", lambda role=role: self._remove_role(role)))
        group = names.prefix(self.usergroup)
        steps.append((f"group {group}", lambda: self._remove_group(group)))
        for kind in names.POLICIES:
            arn = policy_arn(account, self.usergroup, kind)
            steps.append((f"policy {names.policy_name(self.usergroup, kind)}", lambda arn=arn: self._remove_policy(arn)))
        return run_steps(steps, ignore_errors)

    def _remove_profile(self, profile: str) -> None:
        for role in self.iam.get_instance_profile(InstanceProfileName=profile)["InstanceProfile"]["Roles"]:
            self.iam.remove_role_from_instance_profile(InstanceProfileName=profile, RoleName=role["RoleName"])
        self.iam.delete_instance_profile(InstanceProfileName=profile)

    def _remove_role(self, role: str) -> None:
        for policy in self.iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
            self.iam.detach_role_policy(RoleName=role, PolicyArn=policy["PolicyArn"])
        self.iam.delete_role(RoleName=role)

    def _remove_group(self, group: str) -> None:
        for user in self.iam.get_group(GroupName=group)["Users"]:
            self.iam.remove_user_from_group(GroupName=group, UserName=user["UserName"])
        for policy in self.iam.list_attached_group_policies(GroupName=group)["AttachedPolicies"]:
            self.iam.detach_group_policy(GroupName=group, PolicyArn=policy["PolicyArn"])
        self.iam.delete_group(GroupName=group)

    def _remove_policy(self, arn: str) -> None:
        for version in self.iam.list_policy_versions(PolicyArn=arn)["Versions"]:
            if not version["IsDefaultVersion"]:
                self.iam.delete_policy_version(PolicyArn=arn, VersionId=version["VersionId"])
        self.iam.delete_policy(PolicyArn=arn)
