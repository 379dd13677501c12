"""The AWS backend: Step Functions executions, the DynamoDB index, S3 log buckets, EC2 instances.

Reads cost pages, not jobs (docs/design.md 4): a listing is ListExecutions at 1,000 a page, joined to
the index read newest first through its step-function index; the instance columns come from
one paginated DescribeInstances over every `Type=awsem` instance. Submission, batched and
idempotent per job id, is `submission.Submitter`'s; the admin verbs are `deploy.Deployer`'s.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any, Iterable, Iterator

from botocore.exceptions import ClientError

from tibanna import protocol, settings
from tibanna.backends.aws import deploy, index as idx, names
from tibanna.backends.aws.iam import UsergroupIAM
from tibanna.backends.aws.pricing import AwsPriceSource, cost_explorer_cost, price_source
from tibanna.backends.aws.submission import Submitter, execution_input
from tibanna.backends.base import Backend, JobRecord, refuse_denied_buckets
from tibanna.exceptions import UserInputError
from tibanna.names import DEFAULT_SFN, SFN_PREFIX
from tibanna.storage.s3 import Clients, S3Store, error_code

log = logging.getLogger(__name__)

PAGE = 1000
# Index stamps come from the submitter's clock and execution starts from AWS's: allow for skew.
CLOCK_SLACK = dt.timedelta(minutes=15)


def _epoch(when: dt.datetime | None) -> float | None:
    return when.timestamp() if when else None


class AWSBackend(Backend):
    """Jobs as Step Functions executions of `tibanna_unicorn*` (docs/design.md 1, 3.4)."""

    name = "aws"

    def __init__(self, region: str | None = None, profile: str | None = None,
                 endpoint_url: str | None = None) -> None:
        self.clients = Clients(region, profile, endpoint_url)
        self.store = S3Store(self.clients)
        self.index = idx.Index(self.clients)
        self.submitter = Submitter(self.clients, self.store, self.index)
        self._sfn_buckets: dict[str, list[str] | None] = {}

    @property
    def region(self) -> str:  # type: ignore[override]
        return self.clients.region

    @property
    def account(self) -> str:  # type: ignore[override]
        return self.clients.account

    @property
    def sfn(self) -> Any:
        return self.clients("stepfunctions")

    def sfn_arn(self, sfn: str) -> str:
        return names.state_machine_arn(self.region, self.account, sfn)

    def exec_arn(self, sfn: str, run_name: str) -> str:
        return protocol.execution_arn(self.region, self.account, sfn, run_name)

    # Step functions ---------------------------------------------------------------------------
    def default_sfn(self) -> str:
        return settings.TIBANNA_DEFAULT_STEP_FUNCTION_NAME.get() or DEFAULT_SFN

    def check_sfn(self, sfn: str, buckets: Iterable[str]) -> None:
        """Refuse an unknown step function, or buckets its usergroup was not given (when IAM can tell)."""
        if sfn not in self._sfn_buckets:
            try:
                role = self.sfn.describe_state_machine(stateMachineArn=self.sfn_arn(sfn))["roleArn"]
            except ClientError as err:
                if error_code(err) == "StateMachineDoesNotExist":
                    raise UserInputError(f"sfn: step function {sfn!r} does not exist in {self.region}; "
                                         "deploy it with deploy_unicorn") from None
                raise
            usergroup = names.usergroup_of_role(role)
            self._sfn_buckets[sfn] = UsergroupIAM(self.clients, usergroup).buckets() if usergroup else None
        refuse_denied_buckets(sfn, buckets, self._sfn_buckets[sfn])

    # Submission -------------------------------------------------------------------------------
    def submit(self, jobs: list[dict], *, rerun_of: str | None = None,
               secrets: dict[str, dict[str, str]] | None = None) -> list[dict]:
        return self.submitter.submit(jobs, rerun_of, secrets or {})

    # Status -----------------------------------------------------------------------------------
    def get(self, job_id: str | None = None, exec_arn: str | None = None) -> JobRecord | None:
        item = None
        if job_id is not None:
            item = self.index.get(job_id)
            if item is None:
                return None
            exec_arn = self.exec_arn(item[idx.SFN], item[idx.EXECUTION_NAME])
        try:
            execution = self.sfn.describe_execution(executionArn=exec_arn)
        except ClientError as err:
            if error_code(err) in ("ExecutionDoesNotExist", "InvalidArn"):
                return None
            raise
        description = json.loads(execution.get("input") or "{}")
        if item is None and description.get("jobid"):
            item = self.index.get(description["jobid"])
        record = self._record(execution, item, description)
        record.description = description
        record.error, record.cause = execution.get("error"), execution.get("cause")
        self._add_instances([record])
        return record

    def get_many(self, job_ids: list[str]) -> list[JobRecord]:
        items = self.index.get_many(job_ids)
        by_sfn: dict[str, list[dict[str, str]]] = {}
        for item in items.values():
            by_sfn.setdefault(item[idx.SFN], []).append(item)
        records: dict[str, JobRecord] = {}
        for sfn, wanted in by_sfn.items():
            names_wanted = {item[idx.EXECUTION_NAME]: item for item in wanted}
            oldest = min(protocol.parse_stamp(item[idx.TIME_STAMP]) for item in wanted) - CLOCK_SLACK
            for execution in self._executions(sfn):
                item = names_wanted.pop(execution["name"], None)
                if item is not None:
                    records[item[names.TABLE_KEY]] = self._record(execution, item)
                if not names_wanted or execution["startDate"] < oldest:
                    break
            for item in names_wanted.values():  # outside the window (or never started): ask one by one
                record = self.get(job_id=item[names.TABLE_KEY])
                if record is not None:
                    records[record.jobid] = record
        found = [records[j] for j in job_ids if j in records]
        self._add_instances(found)
        return found

    def list(self, sfn: str, status: str | None = None, limit: int | None = None,
             stopped_after: float | None = None) -> list[JobRecord]:
        records: list[JobRecord] = []
        if limit == 0:
            return records
        resolver = _NameResolver(self.index.by_sfn(sfn))
        for execution in self._executions(sfn, status, limit):
            if stopped_after is not None and not (execution.get("stopDate")
                                                  and execution["stopDate"].timestamp() > stopped_after):
                continue
            item = resolver.find(execution["name"], execution["startDate"] - CLOCK_SLACK)
            records.append(self._record(execution, item) if item else self._unindexed(execution))
            if limit is not None and len(records) >= limit:
                break
        self._add_instances(records)
        return records

    def _executions(self, sfn: str, status: str | None = None, limit: int | None = None) -> Iterator[dict]:
        """ListExecutions of a step function, newest first, 1,000 a page (fewer when `limit` is smaller)."""
        kwargs: dict[str, Any] = {"stateMachineArn": self.sfn_arn(sfn),
                                  "PaginationConfig": {"PageSize": min(PAGE, limit or PAGE)}}
        if status:
            kwargs["statusFilter"] = status
        try:
            for page in self.sfn.get_paginator("list_executions").paginate(**kwargs):
                yield from page["executions"]
        except ClientError as err:
            if error_code(err) == "StateMachineDoesNotExist":
                raise UserInputError(f"sfn: step function {sfn!r} does not exist in {self.region}") from None
            raise

    def _record(self, execution: dict, item: dict[str, str] | None, description: dict | None = None) -> JobRecord:
        sfn, run_name = protocol.split_execution_arn(execution["executionArn"])
        item = item or {}
        config = (description or {}).get("config", {})
        return JobRecord(jobid=item.get(names.TABLE_KEY) or (description or {}).get("jobid", ""), sfn=sfn,
                         run_name=run_name, exec_arn=execution["executionArn"],
                         log_bucket=item.get(idx.LOG_BUCKET) or config.get("log_bucket", ""),
                         status=execution["status"], name=run_name, start_time=_epoch(execution.get("startDate")),
                         stop_time=_epoch(execution.get("stopDate")), instance_id=item.get(idx.INSTANCE_ID, ""),
                         rerun_of=item.get(idx.RERUN_OF) or None)

    def _unindexed(self, execution: dict) -> JobRecord:
        """An execution the index does not know (started by another client): its input names the job."""
        description = execution_input(self.sfn, execution["executionArn"]) or {}
        return self._record(execution, None, description)

    def _add_instances(self, records: list[JobRecord]) -> None:
        """Fill the instance columns from one paginated DescribeInstances over `Type=awsem` instances."""
        if not records:
            return
        latest: dict[str, dict] = {}
        paginator = self.clients("ec2").get_paginator("describe_instances")
        filters = [{"Name": "tag:Type", "Values": [names.INSTANCE_TYPE_TAG]}]
        if len(records) <= 200:  # a filter takes at most 200 values
            filters.append({"Name": "tag:Name", "Values": [names.instance_name(r.jobid) for r in records]})
        for page in paginator.paginate(Filters=filters, PaginationConfig={"PageSize": PAGE}):
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    name = next((t["Value"] for t in instance.get("Tags", []) if t["Key"] == "Name"), "")
                    jobid = name[len(names.INSTANCE_NAME_PREFIX):]
                    if jobid not in latest or instance["LaunchTime"] > latest[jobid]["LaunchTime"]:
                        latest[jobid] = instance
        for record in records:
            instance = latest.get(record.jobid)
            if instance is None:
                continue
            state = instance["State"]["Name"]
            alive = state not in ("shutting-down", "terminated")
            record.instance_id = instance["InstanceId"]
            record.instance_type = instance.get("InstanceType", "")
            record.instance_status = state
            record.instance_start_time = _epoch(instance.get("LaunchTime"))
            record.ip = instance.get("PublicIpAddress", "") if alive else ""
            record.key = instance.get("KeyName", "") if alive else ""

    # Control ----------------------------------------------------------------------------------
    def kill(self, record: JobRecord, soft: bool = False) -> None:
        """Terminate the instance, write `.aborted`; a plain kill also stops the execution (ABORTED)."""
        instance_id = record.instance_id or self._live_instance(record.jobid)
        if instance_id:
            self.clients("ec2").terminate_instances(InstanceIds=[instance_id])
        else:
            log.info("job %s has no instance (yet)", record.jobid)
        self.store.put_bytes(record.log_bucket, protocol.key(record.jobid, protocol.ABORTED_MARKER), b"")
        if not soft:
            self.sfn.stop_execution(executionArn=record.exec_arn, error="Aborted", cause="killed by user")

    def _live_instance(self, jobid: str) -> str | None:
        reservations = self.clients("ec2").describe_instances(Filters=[
            {"Name": "tag:Name", "Values": [names.instance_name(jobid)]},
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}])["Reservations"]
        return next((i["InstanceId"] for r in reservations for i in r["Instances"]), None)

    def list_sfns(self, counts: bool = False) -> list[dict[str, Any]]:
        rows = []
        for page in self.sfn.get_paginator("list_state_machines").paginate(PaginationConfig={"PageSize": PAGE}):
            for machine in page["stateMachines"]:
                if machine["name"].startswith(SFN_PREFIX):
                    rows.append({"name": machine["name"], "creation_date": _epoch(machine["creationDate"])})
        if counts:
            for row in rows:
                found = dict.fromkeys(protocol.STATUSES, 0)
                for execution in self._executions(row["name"]):
                    found[execution["status"]] = found.get(execution["status"], 0) + 1
                row.update(found)
        return rows

    # Metrics and cost -------------------------------------------------------------------------
    def price_source(self) -> AwsPriceSource:
        return price_source(self.clients)

    def actual_cost(self, postrun: dict) -> float:
        """The Cost Explorer cost of the job's instance (tag Name=awsem-<jobid>); 0.0 until billed."""
        return cost_explorer_cost(self.clients("ce"), postrun)

    def metric_series(self, record: JobRecord, postrun: dict | None, start: Any, end: Any,
                      instance_id: str = "") -> Any:
        """None (the agent's samples) when the job has them, else the instance's CloudWatch metrics."""
        instance_id = instance_id or record.instance_id
        if self.store.exists(record.log_bucket, protocol.key(record.jobid, protocol.METRICS_SAMPLES)) \
                or not instance_id:
            return None
        from tibanna.metrics.resources import read_cloudwatch  # on use: the unicorn's Lambdas never need it

        return read_cloudwatch(self.clients("cloudwatch"), instance_id, start, end)

    # Admin verbs ------------------------------------------------------------------------------
    def _deployer(self) -> deploy.Deployer:
        return deploy.Deployer(self.clients, self.store, self.index)

    def setup_tibanna_env(self, buckets: list[str], usergroup_tag: str = "default", no_randomize: bool = False,
                          do_not_delete_public_access_block: bool = False) -> str:
        return self._deployer().setup_tibanna_env(buckets, usergroup_tag, no_randomize,
                                                  do_not_delete_public_access_block)

    def deploy_unicorn(self, suffix: str | None = None, no_setup: bool = False, buckets: list[str] | None = None,
                       no_setenv: bool = False, usergroup: str = "", do_not_delete_public_access_block: bool = False,
                       deploy_costupdater: bool = False, subnets: list[str] | None = None,
                       security_groups: list[str] | None = None) -> str:
        return self._deployer().deploy_unicorn(suffix, no_setup, buckets or [], no_setenv, usergroup,
                                               do_not_delete_public_access_block, deploy_costupdater, subnets,
                                               security_groups)

    def deploy_core(self, name: str, suffix: str | None = None, usergroup: str = "",
                    subnets: list[str] | None = None, security_groups: list[str] | None = None) -> list[str]:
        return self._deployer().deploy_core(name, suffix, usergroup, subnets, security_groups)

    def users(self) -> list[dict[str, str]]:
        return self._deployer().users()

    def add_user(self, user: str, usergroup: str) -> None:
        self._deployer().add_user(user, usergroup)

    def cleanup(self, usergroup: str, suffix: str | None = None, ignore_errors: bool = True,
                do_not_remove_iam_group: bool = False, purge_history: bool = False) -> list[str]:
        return self._deployer().cleanup(usergroup, suffix, ignore_errors, do_not_remove_iam_group, purge_history)


class _NameResolver:
    """Execution name -> index item, reading a step function's items newest first, only as far as needed."""

    def __init__(self, items: Iterator[dict[str, str]]) -> None:
        self._items = items
        self._seen: dict[str, dict[str, str]] = {}
        self._oldest: dt.datetime | None = None
        self._done = False

    def find(self, run_name: str, not_before: dt.datetime) -> dict[str, str] | None:
        while run_name not in self._seen and not self._done and (self._oldest is None or self._oldest >= not_before):
            item = next(self._items, None)
            if item is None:
                self._done = True
                break
            self._seen[item[idx.EXECUTION_NAME]] = item
            self._oldest = protocol.parse_stamp(item[idx.TIME_STAMP])
        return self._seen.get(run_name)
