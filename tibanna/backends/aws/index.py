"""The job index: DynamoDB `tibanna-master`, hash key `Job Id`, upstream's item shape.

Items: `Job Id`, `Execution Name`, `Step Function`, `Log Bucket`, `Time Stamp` (upstream's
`%Y%m%d-%H:%M:%S-UTC`, which sorts by time), `instance_id`, and our `Rerun Of` (the first job
of a rerun chain). One addition to upstream's table: the global secondary index
`StepFunction-TimeStamp` (`Step Function`, `Time Stamp`), so a step function's jobs are read
newest first, a page at a time; upstream's existing table gains it in place.
Reads and writes are batched: 100 keys per BatchGetItem, 100 conditional puts per transaction.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Iterable, Iterator

from botocore.exceptions import ClientError

from tibanna.backends.aws import names
from tibanna.storage.s3 import Clients, error_code

log = logging.getLogger(__name__)

EXECUTION_NAME, SFN, LOG_BUCKET, TIME_STAMP = "Execution Name", "Step Function", "Log Bucket", "Time Stamp"
INSTANCE_ID, RERUN_OF = "instance_id", "Rerun Of"
_GET_BATCH = 100
_TRANSACTION = 100
_WRITE_BATCH = 25
ACTIVE_TIMEOUT = 900  # seconds: a new index on a big table backfills for minutes
_POLL_SECONDS = 5


def _flat(item: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {k: next(iter(v.values())) for k, v in item.items()}


def _typed(item: dict[str, str]) -> dict[str, dict[str, str]]:
    return {k: {"S": str(v)} for k, v in item.items() if v is not None}


class Index:
    """Reads and writes of `tibanna-master`."""

    def __init__(self, clients: Clients) -> None:
        self.ddb = clients("dynamodb")

    # Table ------------------------------------------------------------------------------------
    def ensure_table(self, timeout: float = ACTIVE_TIMEOUT) -> None:
        """Create the table (on demand billing) with its step-function index, or add the index to
        upstream's table; return once both are ACTIVE (the index is queried right after)."""
        gsi: dict[str, Any] = {"IndexName": names.SFN_INDEX, "Projection": {"ProjectionType": "ALL"},
                               "KeySchema": [{"AttributeName": SFN, "KeyType": "HASH"},
                                             {"AttributeName": TIME_STAMP, "KeyType": "RANGE"}]}
        attributes = [{"AttributeName": n, "AttributeType": "S"} for n in (names.TABLE_KEY, SFN, TIME_STAMP)]
        try:
            table = self.ddb.describe_table(TableName=names.TABLE)["Table"]
        except ClientError as err:
            if error_code(err) != "ResourceNotFoundException":
                raise
            self.ddb.create_table(TableName=names.TABLE, BillingMode="PAY_PER_REQUEST",
                                  KeySchema=[{"AttributeName": names.TABLE_KEY, "KeyType": "HASH"}],
                                  AttributeDefinitions=attributes, GlobalSecondaryIndexes=[gsi])
            log.info("created DynamoDB table %s", names.TABLE)
        else:
            if not any(i["IndexName"] == names.SFN_INDEX for i in table.get("GlobalSecondaryIndexes", [])):
                self._wait_active(timeout)  # UpdateTable needs an ACTIVE table
                if (table.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED") == "PROVISIONED":
                    throughput = table["ProvisionedThroughput"]
                    gsi["ProvisionedThroughput"] = {k: throughput[k] for k in ("ReadCapacityUnits",
                                                                                "WriteCapacityUnits")}
                self.ddb.update_table(TableName=names.TABLE, AttributeDefinitions=attributes,
                                      GlobalSecondaryIndexUpdates=[{"Create": gsi}])
                log.info("adding index %s to DynamoDB table %s", names.SFN_INDEX, names.TABLE)
        self._wait_active(timeout)

    def _wait_active(self, timeout: float) -> None:
        """Wait until the table and every index of it are ACTIVE (an index backfills after UpdateTable)."""
        deadline = time.monotonic() + timeout
        while True:
            table = self.ddb.describe_table(TableName=names.TABLE)["Table"]
            pending = [i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])
                       if i.get("IndexStatus", "ACTIVE") != "ACTIVE"]
            if table["TableStatus"] == "ACTIVE" and not pending:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"DynamoDB table {names.TABLE} is {table['TableStatus']}"
                                   + (f", index {', '.join(pending)} not ACTIVE" if pending else "")
                                   + f" after {timeout:.0f} s")
            log.info("waiting for DynamoDB table %s to be ACTIVE", names.TABLE)
            time.sleep(_POLL_SECONDS)

    # Writes -----------------------------------------------------------------------------------
    def claim(self, items: list[dict[str, str]]) -> set[str]:
        """Insert items whose `Job Id` is new, atomically per item; returns the ids already there."""
        taken: set[str] = set()
        pending = list(items)
        while pending:
            chunk, pending = pending[:_TRANSACTION], pending[_TRANSACTION:]
            puts = [{"Put": {"TableName": names.TABLE, "Item": _typed(item),
                             "ConditionExpression": "attribute_not_exists(#k)",
                             "ExpressionAttributeNames": {"#k": names.TABLE_KEY}}} for item in chunk]
            try:
                self.ddb.transact_write_items(TransactItems=puts)
            except ClientError as err:
                reasons = err.response.get("CancellationReasons")
                if error_code(err) != "TransactionCanceledException" or not reasons:
                    raise
                for item, reason in zip(chunk, reasons):
                    if reason.get("Code") == "ConditionalCheckFailed":
                        taken.add(item[names.TABLE_KEY])
                    else:  # cancelled with the others (or in conflict): try again
                        pending.append(item)
        return taken

    def update(self, jobid: str, **fields: str) -> None:
        """Set attributes of an item (by their item names, e.g. instance_id)."""
        keys = {f"#a{i}": name for i, name in enumerate(fields)}
        values = {f":v{i}": {"S": str(value)} for i, value in enumerate(fields.values())}
        self.ddb.update_item(TableName=names.TABLE, Key={names.TABLE_KEY: {"S": jobid}},
                             UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(fields))),
                             ExpressionAttributeNames=keys, ExpressionAttributeValues=values)

    def delete(self, jobids: Iterable[str]) -> None:
        jobids = list(jobids)
        for i in range(0, len(jobids), _WRITE_BATCH):
            requests = {names.TABLE: [{"DeleteRequest": {"Key": {names.TABLE_KEY: {"S": j}}}}
                                      for j in jobids[i:i + _WRITE_BATCH]]}
            while requests:
                requests = self.ddb.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}

    # Reads ------------------------------------------------------------------------------------
    def get(self, jobid: str) -> dict[str, str] | None:
        item = self.ddb.get_item(TableName=names.TABLE, Key={names.TABLE_KEY: {"S": jobid}},
                                 ConsistentRead=True).get("Item")
        return _flat(item) if item else None

    def get_many(self, jobids: Iterable[str]) -> dict[str, dict[str, str]]:
        """Items by job id, 100 keys per BatchGetItem (unprocessed keys asked again)."""
        unique = list(dict.fromkeys(jobids))
        found: dict[str, dict[str, str]] = {}
        for i in range(0, len(unique), _GET_BATCH):
            request = {names.TABLE: {"Keys": [{names.TABLE_KEY: {"S": j}} for j in unique[i:i + _GET_BATCH]]}}
            while request:
                response = self.ddb.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(names.TABLE, []):
                    flat = _flat(item)
                    found[flat[names.TABLE_KEY]] = flat
                request = response.get("UnprocessedKeys") or {}
        return found

    def by_sfn(self, sfn: str, since: str | None = None) -> Iterator[dict[str, str]]:
        """A step function's items, newest first; with `since`, only those stamped at or after it."""
        condition = "#s = :s" + (" AND #t >= :t" if since else "")
        values = {":s": {"S": sfn}} | ({":t": {"S": since}} if since else {})
        paginator = self.ddb.get_paginator("query")
        for page in paginator.paginate(TableName=names.TABLE, IndexName=names.SFN_INDEX,
                                       KeyConditionExpression=condition, ScanIndexForward=False,
                                       ExpressionAttributeNames={"#s": SFN} | ({"#t": TIME_STAMP} if since else {}),
                                       ExpressionAttributeValues=values):
            yield from (_flat(item) for item in page["Items"])
