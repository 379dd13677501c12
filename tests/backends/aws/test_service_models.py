"""The request checks themselves, and the job index under names AWS accepts."""
from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ParamValidationError

from tibanna.backends.aws import names
from tibanna.backends.aws.backend import AWSBackend


def test_a_name_aws_refuses_fails(moto_endpoint, _strict_session):
    ddb = boto3.client("dynamodb")
    with pytest.raises(ParamValidationError, match="does not match"):
        ddb.create_table(TableName="refused", BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                         GlobalSecondaryIndexes=[{"IndexName": "Step Function-Time Stamp",
                                                  "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
                                                  "Projection": {"ProjectionType": "ALL"}}])
    with pytest.raises(ParamValidationError, match="longer than 64"):
        boto3.client("iam").get_role(RoleName="r" * 65)
    with pytest.raises(ParamValidationError, match="not one of"):
        boto3.client("ec2").describe_instance_types(InstanceTypes=["t3.huge-and-made-up"])
    assert len(_strict_session) == 3
    _strict_session.clear()  # refused as expected: this test's violations are not the code's


def test_upstream_table_gains_the_index_in_place(moto_endpoint):
    """A table as upstream made it (hash key only, no index), with a job: deploy adds the index and
    the job is then found by its step function."""
    backend = AWSBackend(region="eu-west-1")
    ddb = backend.clients("dynamodb")
    ddb.create_table(TableName=names.TABLE, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": names.TABLE_KEY, "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": names.TABLE_KEY, "AttributeType": "S"}])
    item = {names.TABLE_KEY: "old-job", "Execution Name": "old-run", "Step Function": "tibanna_unicorn_old",
            "Log Bucket": "log-bucket", "Time Stamp": "20240101-00:00:00-UTC"}
    ddb.put_item(TableName=names.TABLE, Item={k: {"S": v} for k, v in item.items()})
    backend.index.ensure_table()
    backend.index.ensure_table()  # a second deploy changes nothing
    table = ddb.describe_table(TableName=names.TABLE)["Table"]
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == [names.SFN_INDEX]
    assert table["KeySchema"] == [{"AttributeName": names.TABLE_KEY, "KeyType": "HASH"}]
    assert list(backend.index.by_sfn("tibanna_unicorn_old")) == [item]
