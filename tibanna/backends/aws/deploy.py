"""The admin verbs on AWS: setup_tibanna_env, deploy_unicorn, deploy_core, users, add_user, cleanup.

Everything is created or updated in place under upstream's names: re-running a deploy updates
the policies, Lambdas (code and configuration) and state machine rather than deleting them.
The Lambdas carry this package and the agent's bundle, built reproducibly from the installed files.
"""
from __future__ import annotations

import functools
import logging
import os
import random
import time
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from tibanna import __version__
from tibanna.backends.aws import build, names, statemachine
from tibanna.backends.aws.iam import UsergroupIAM, role_arn, run_steps
from tibanna.backends.aws.index import Index
from tibanna.exceptions import UserInputError
from tibanna.storage.s3 import Clients, S3Store, error_code

log = logging.getLogger(__name__)

LAMBDA_TIMEOUT = 800  # upstream's
LAMBDA_MEMORY = 256
IAM_PROPAGATION_SECONDS = 120  # a new role can take this long to become assumable by Lambda
HANDLERS = {kind: f"tibanna.backends.aws.lambdas.{kind}.handler" for kind in names.ALL_LAMBDAS}


class Deployer:
    """One account and region's Tibanna resources."""

    def __init__(self, clients: Clients, store: S3Store, index: Index) -> None:
        self.clients, self.store, self.index = clients, store, index

    # Usergroups ---------------------------------------------------------------------------------
    def setup_tibanna_env(self, buckets: list[str], usergroup_tag: str = "default", no_randomize: bool = False,
                          do_not_delete_public_access_block: bool = False) -> str:
        """IAM for a usergroup scoped to `buckets`; returns the usergroup's name."""
        if not buckets:
            log.warning("no buckets given: the usergroup gets the placeholder buckets only")
        usergroup = usergroup_tag if no_randomize else f"{usergroup_tag}_{random.randint(0, 9999)}"
        if not do_not_delete_public_access_block:
            for bucket in buckets:
                try:
                    self.clients("s3").delete_public_access_block(Bucket=bucket)
                except ClientError as err:
                    log.warning("could not delete the public access block of %s: %s", bucket, err)
        UsergroupIAM(self.clients, usergroup).apply(buckets)
        return usergroup

    def deploy_unicorn(self, suffix: str | None, no_setup: bool, buckets: list[str], no_setenv: bool,
                       usergroup: str, do_not_delete_public_access_block: bool, deploy_costupdater: bool,
                       subnets: list[str] | None, security_groups: list[str] | None) -> str:
        """IAM (unless no_setup), the Lambdas, the state machine (and its cost updater with
        `deploy_costupdater`) and the index table; returns the sfn name."""
        if not no_setup:
            usergroup = self.setup_tibanna_env(buckets, usergroup or "default", no_randomize=bool(usergroup),
                                               do_not_delete_public_access_block=do_not_delete_public_access_block)
        elif not usergroup:
            raise UserInputError("usergroup: no_setup needs the usergroup of an existing set-up")
        kinds = names.ALL_LAMBDAS if deploy_costupdater else names.LAMBDAS
        self._put_functions(kinds, suffix, usergroup, subnets, security_groups)
        name = names.sfn_name(usergroup, suffix)
        where = (self.clients.region, self.clients.account, usergroup, suffix)
        self._put_state_machine(name, statemachine.definition(*where), usergroup)
        if deploy_costupdater:
            self._put_state_machine(names.costupdater_name(name), statemachine.costupdater_definition(*where),
                                    usergroup)
        self.index.ensure_table()
        if not no_setenv:
            _setenv(name)
        return name

    def _sfn_arn(self, name: str) -> str:
        return f"arn:aws:states:{self.clients.region}:{self.clients.account}:stateMachine:{name}"

    def _put_state_machine(self, name: str, definition: dict, usergroup: str) -> None:
        sfn = self.clients("stepfunctions")
        text = statemachine.as_deployed(definition)
        role = role_arn(self.clients.account, usergroup, names.STATES_ROLE)
        try:
            sfn.update_state_machine(stateMachineArn=self._sfn_arn(name), definition=text, roleArn=role)
            log.info("updated state machine %s", name)
        except ClientError as err:
            if error_code(err) != "StateMachineDoesNotExist":
                raise
            sfn.create_state_machine(name=name, definition=text, roleArn=role)
            log.info("created state machine %s", name)

    def deploy_core(self, name: str, suffix: str | None, usergroup: str,
                    subnets: list[str] | None, security_groups: list[str] | None) -> list[str]:
        """Create or update `run_task_awsem<suffix>` and `check_task_awsem<suffix>` ('all' or
        'unicorn'), or the one Lambda named (`update_cost_awsem` too)."""
        kinds = names.LAMBDAS if name in ("all", "unicorn") else (name,)
        if any(kind not in names.ALL_LAMBDAS for kind in kinds):
            raise UserInputError(f"name: {name!r} is not one of all, unicorn, {', '.join(names.ALL_LAMBDAS)}")
        return self._put_functions(kinds, suffix, usergroup, subnets, security_groups)

    def _put_functions(self, kinds: tuple[str, ...], suffix: str | None, usergroup: str,
                       subnets: list[str] | None, security_groups: list[str] | None) -> list[str]:
        """Create or update these Lambdas from one build of the package."""
        if not usergroup:
            raise UserInputError("usergroup: required to deploy the Lambdas (their roles belong to it)")
        bundle = build.agent_bundle()
        code = build.build_lambda_zip(bundle)
        environment = {"TIBANNA_VERSION": __version__,
                       "TIBANNA_DEFAULT_STEP_FUNCTION_NAME": names.sfn_name(usergroup, suffix),
                       "AWS_S3_ROLE_NAME": names.role_name(usergroup, names.EC2_ROLE),
                       build.BUNDLE_PATH_ENV: bundle.lambda_path,
                       build.BUNDLE_SHA256_ENV: bundle.sha256,
                       build.BUNDLE_ARCHES_ENV: ",".join(bundle.arches), build.BUNDLE_PYTHON_ENV: bundle.python}
        if subnets:
            environment["SUBNETS"] = ",".join(subnets)
        if security_groups:
            environment["SECURITY_GROUPS"] = ",".join(security_groups)
        vpc = {"SubnetIds": list(subnets or []), "SecurityGroupIds": list(security_groups or [])}
        deployed = []
        for kind in kinds:
            function = names.lambda_name(kind, usergroup, suffix)
            config: dict[str, Any] = {
                "FunctionName": function, "Runtime": build.LAMBDA_RUNTIME, "Handler": HANDLERS[kind],
                "Role": role_arn(self.clients.account, usergroup, kind), "Timeout": LAMBDA_TIMEOUT,
                "MemorySize": LAMBDA_MEMORY, "Environment": {"Variables": environment}}
            if subnets or security_groups:
                config["VpcConfig"] = vpc
            self._put_function(config, code)
            deployed.append(function)
        return deployed

    def _put_function(self, config: dict[str, Any], code: bytes) -> None:
        """Create or update a Lambda; return once it is Active with its last update applied."""
        client, function = self.clients("lambda"), config["FunctionName"]
        try:
            client.update_function_code(FunctionName=function, ZipFile=code, Architectures=[build.LAMBDA_ARCH])
        except ClientError as err:
            if error_code(err) != "ResourceNotFoundException":
                raise
            self._create_function(config, code)
            client.get_waiter("function_active_v2").wait(FunctionName=function)
            log.info("created Lambda %s", function)
            return
        client.get_waiter("function_updated_v2").wait(FunctionName=function)
        client.update_function_configuration(**config)
        client.get_waiter("function_updated_v2").wait(FunctionName=function)
        log.info("updated Lambda %s", function)

    def _create_function(self, config: dict[str, Any], code: bytes) -> None:
        """CreateFunction, retried while IAM has not propagated the new role to Lambda yet."""
        deadline = time.monotonic() + IAM_PROPAGATION_SECONDS
        delay = 1.0
        while True:
            try:
                self.clients("lambda").create_function(Code={"ZipFile": code}, Architectures=[build.LAMBDA_ARCH], **config)
                return
            except ClientError as err:
                message = err.response.get("Error", {}).get("Message", "")
                if error_code(err) != "InvalidParameterValueException" or "assume" not in message \
                        or time.monotonic() > deadline:
                    raise
                log.info("Lambda %s: its role is not assumable yet (IAM propagation); retrying in %.0f s",
                         config["FunctionName"], delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    # Users --------------------------------------------------------------------------------------
    def users(self) -> list[dict[str, str]]:
        """Members of every `tibanna_*` IAM group: one page of groups, then each group's members."""
        iam, rows = self.clients("iam"), []
        for page in iam.get_paginator("list_groups").paginate():
            for group in page["Groups"]:
                if not group["GroupName"].startswith("tibanna_"):
                    continue
                for members in iam.get_paginator("get_group").paginate(GroupName=group["GroupName"]):
                    rows += [{"user": u["UserName"], "usergroup": group["GroupName"][len("tibanna_"):]}
                             for u in members["Users"]]
        return sorted(rows, key=lambda r: (r["user"], r["usergroup"]))

    def add_user(self, user: str, usergroup: str) -> None:
        try:
            self.clients("iam").add_user_to_group(GroupName=names.prefix(usergroup), UserName=user)
        except ClientError as err:
            if error_code(err) == "NoSuchEntity":
                raise UserInputError(f"user or usergroup: {err.response['Error']['Message']}") from None
            raise

    # Removal ------------------------------------------------------------------------------------
    def cleanup(self, usergroup: str, suffix: str | None, ignore_errors: bool, do_not_remove_iam_group: bool,
                purge_history: bool) -> list[str]:
        """Remove the usergroup's state machines (one, with `suffix`) with their cost updaters, their
        Lambdas, IAM, history."""
        removed: list[str] = []
        for sfn, sfx, has_costupdater in self._state_machines(usergroup, suffix):
            if purge_history:
                removed += self._purge(sfn)
            machines = [sfn, names.costupdater_name(sfn)] if has_costupdater else [sfn]
            functions = [names.lambda_name(kind, usergroup, sfx)
                         for kind in (names.ALL_LAMBDAS if has_costupdater else names.LAMBDAS)]
            steps = [(f"state machine {machine}", functools.partial(
                self.clients("stepfunctions").delete_state_machine, stateMachineArn=self._sfn_arn(machine)))
                for machine in machines]
            steps += [(f"Lambda {function}", functools.partial(self.clients("lambda").delete_function,
                                                                FunctionName=function)) for function in functions]
            removed += run_steps(steps, ignore_errors)
        if not do_not_remove_iam_group:
            removed += UsergroupIAM(self.clients, usergroup).remove(ignore_errors)
        if not removed and not ignore_errors:
            raise UserInputError(f"user_group_name: nothing to remove for usergroup {usergroup!r}")
        return removed

    def _state_machines(self, usergroup: str, suffix: str | None) -> list[tuple[str, str | None, bool]]:
        """(name, suffix, has a cost updater) of the usergroup's unicorns: the one named, or all whose
        role is the group's."""
        sfn = self.clients("stepfunctions")
        listed = {machine["name"]: machine["stateMachineArn"]
                  for page in sfn.get_paginator("list_state_machines").paginate() for machine in page["stateMachines"]}
        base = names.sfn_name(usergroup)
        found: list[tuple[str, str | None]] = []
        if suffix:
            found.append((names.sfn_name(usergroup, suffix), suffix))
        else:
            for name, arn in listed.items():
                if (name != base and not name.startswith(base + "_")) or name.endswith(names.COSTUPDATER_SUFFIX):
                    continue
                if names.usergroup_of_role(sfn.describe_state_machine(stateMachineArn=arn)["roleArn"]) == usergroup:
                    found.append((name, name[len(base) + 1:] or None))
        return [(name, sfx, names.costupdater_name(name) in listed) for name, sfx in found]

    def _purge(self, sfn: str) -> list[str]:
        """Delete a step function's jobs: their `<jobid>.*` log-bucket objects and index items."""
        items = list(self.index.by_sfn(sfn))
        for item in items:
            bucket, jobid = item["Log Bucket"], item[names.TABLE_KEY]
            try:
                self.store.delete_many(bucket, self.store.list_keys(bucket, jobid + "."))
            except ClientError as err:
                log.warning("purge: cannot delete the logs of job %s in %s: %s", jobid, bucket, err)
        self.index.delete(item[names.TABLE_KEY] for item in items)
        return [f"job {item[names.TABLE_KEY]}" for item in items]


def _setenv(sfn: str) -> None:
    """Make `sfn` the default: in this process, and for new shells via ~/.bashrc (as upstream)."""
    os.environ["TIBANNA_DEFAULT_STEP_FUNCTION_NAME"] = sfn
    bashrc = Path.home() / ".bashrc"
    line = f"export TIBANNA_DEFAULT_STEP_FUNCTION_NAME={sfn}"
    lines = bashrc.read_text(encoding="utf-8").splitlines() if bashrc.exists() else []
    exports = [x for x in lines if x.startswith("export TIBANNA_DEFAULT_STEP_FUNCTION_NAME=")]
    if not exports or exports[-1] != line:  # the last export wins; do not pile up the same one
        with open(bashrc, "a", encoding="utf-8") as handle:
            handle.write(f"\n{line}\n")
    log.info("default step function is now %s (exported in %s)", sfn, bashrc)
