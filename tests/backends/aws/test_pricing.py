"""AWS prices (the Pricing API, the spot price history) through recorded responses, and Cost Explorer."""
from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest
import requests
from botocore.stub import ANY, Stubber
from cost_builders import GOLDEN, SOON, postrun

from tibanna.backends.aws.pricing import AwsPriceSource, cost_explorer_cost
from tibanna.cost import IMMEDIATE, NA, estimate_job_cost
from tibanna.exceptions import PricingRetrievalException

# What every spot price query asks: Linux prices in effect now (StartTime), 1000 to a page.
SPOT_QUERY = {"InstanceTypes": ["t3.small"], "ProductDescriptions": ["Linux/UNIX"], "StartTime": ANY,
              "MaxResults": 1000}


def product(price: str, unit: str, family: str, **attributes: str) -> str:
    """A Pricing API PriceList entry, as the API returns it (a JSON string)."""
    sku = "JRTCKXETXF" + str(abs(hash((price, family))) % 1000)
    return json.dumps({
        "product": {"productFamily": family, "attributes": {"servicecode": "AmazonEC2", **attributes}, "sku": sku},
        "serviceCode": "AmazonEC2",
        "terms": {"OnDemand": {f"{sku}.JRTCKXETXF": {
            "priceDimensions": {f"{sku}.JRTCKXETXF.6YS6EN2CT7": {
                "unit": unit, "endRange": "Inf", "beginRange": "0", "appliesTo": [], "rateCode": "x",
                "description": f"${price} per {unit}", "pricePerUnit": {"USD": price}}},
            "sku": sku, "effectiveDate": "2024-03-01T00:00:00Z", "offerTermCode": "JRTCKXETXF", "termAttributes": {}}}},
        "version": "20240301000000", "publicationDate": "2024-03-01T00:00:00Z"})


def filters(**terms: str) -> dict:
    return {"ServiceCode": "AmazonEC2",
            "Filters": [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in terms.items()]}


def storage_query(volume: str) -> dict:
    return filters(regionCode="us-east-1", volumeApiName=volume, productFamily="Storage")


def gp3_storage() -> dict:
    return {"FormatVersion": "aws_v1", "PriceList": [
        product("0.0800000000", "GB-Mo", "Storage", volumeApiName="gp3", regionCode="us-east-1")]}


@pytest.fixture
def aws(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    pricing = boto3.client("pricing", region_name="us-east-1")
    ec2 = boto3.client("ec2", region_name="us-east-1")
    with Stubber(pricing) as p, Stubber(ec2) as e:
        yield AwsPriceSource(pricing, ec2, "us-east-1"), p, e
        p.assert_no_pending_responses()
        e.assert_no_pending_responses()


def test_aws_on_demand_golden_value(aws):
    prices, pricing, _ = aws
    pricing.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": [product(
        "0.0416000000", "Hrs", "Compute Instance", instanceType="t3.medium", operatingSystem="Linux")]},
        filters(instanceType="t3.medium", operatingSystem="Linux", regionCode="us-east-1", preInstalledSw="NA",
                capacitystatus="Used", tenancy="Shared"))
    pricing.add_response("get_products", gp3_storage(), storage_query("gp3"))
    pricing.add_response("get_products", gp3_storage(), storage_query("gp3"))
    job = postrun(instance_type="t3.medium", spot=False)
    assert estimate_job_cost(job, prices, region="us-east-1", now=SOON) == (0.004384172839506173, IMMEDIATE)


def test_aws_spot_and_io2_tiers_golden_value(aws):
    prices, pricing, ec2 = aws
    ec2.add_response("describe_spot_price_history", {"SpotPriceHistory": [{
        "AvailabilityZone": "us-east-1f", "InstanceType": "t3.small", "ProductDescription": "Linux/UNIX",
        "SpotPrice": "0.006400", "Timestamp": dt.datetime(2021, 3, 1, 21, 0, tzinfo=dt.timezone.utc)}]},
        {**SPOT_QUERY, "AvailabilityZone": "us-east-1f"})
    pricing.add_response("get_products", gp3_storage(), storage_query("gp3"))
    pricing.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": [
        product("0.1250000000", "GB-Mo", "Storage", volumeApiName="io2")]}, storage_query("io2"))
    pricing.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": [
        product(p, "IOPS-Mo", "System Operation", volumeApiName="io2") for p in ("0.0455", "0.03185", "0.065")]},
        filters(regionCode="us-east-1", volumeApiName="io2", productFamily="System Operation"))
    job, _, expected = GOLDEN["small_spot_io2_iops"]
    assert estimate_job_cost(job, prices, region="us-east-1", now=SOON) == (expected, IMMEDIATE)


def test_aws_throughput_and_gp3_iops_prices(aws):
    prices, pricing, _ = aws
    pricing.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": [
        product("40.0000000000", "GiBps-mo", "Provisioned Throughput", volumeApiName="gp3")]},
        filters(regionCode="us-east-1", volumeApiName="gp3", productFamily="Provisioned Throughput"))
    pricing.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": [
        product("0.0050000000", "IOPS-Mo", "System Operation", volumeApiName="gp3")]},
        filters(regionCode="us-east-1", volumeApiName="gp3", productFamily="System Operation"))
    assert prices.ebs_throughput() == pytest.approx(0.04)
    assert prices.ebs_iops("gp3") == (0.005,)


def test_aws_ambiguous_or_failing_prices_give_no_estimate(aws):
    prices, pricing, _ = aws
    two = {"FormatVersion": "aws_v1", "PriceList": [product("0.04", "Hrs", "Compute Instance"),
                                                    product("0.05", "Hrs", "Compute Instance")]}
    pricing.add_response("get_products", two)
    with pytest.raises(PricingRetrievalException, match="ambiguous"):
        prices.on_demand("t3.medium", "us-east-1")
    pricing.add_client_error("get_products", "ThrottlingException")
    assert estimate_job_cost(postrun(instance_type="t3.medium", spot=False), prices, now=SOON) == (0.0, NA)


def test_aws_spot_before_a_run_takes_the_dearest_zone(aws):
    prices, _, ec2 = aws
    t = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)
    history = [("us-east-1a", "0.0060", t), ("us-east-1a", "0.0070", t + dt.timedelta(hours=1)),
               ("us-east-1b", "0.0090", t), ("us-east-1b", "0.0065", t + dt.timedelta(hours=2))]
    ec2.add_response("describe_spot_price_history", {"SpotPriceHistory": [
        {"AvailabilityZone": z, "InstanceType": "t3.small", "ProductDescription": "Linux/UNIX", "SpotPrice": p,
         "Timestamp": when} for z, p, when in history]},
        SPOT_QUERY)
    assert prices.spot("t3.small", "") == 0.0070  # latest per zone: 1a 0.0070, 1b 0.0065


def test_aws_spot_reads_the_current_prices_over_every_page(aws):
    """StartTime is sent (now: the history's last change before it is the price in effect), so AWS
    does not page through 90 days of history; every page is read, the latest entry per zone kept."""
    prices, _, ec2 = aws
    sent: list[dict] = []
    prices.ec2.meta.events.register("provide-client-params.ec2.DescribeSpotPriceHistory",
                                    lambda params, **_: sent.append(dict(params)))
    t = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)

    def entry(zone: str, price: str, when: dt.datetime) -> dict:
        return {"AvailabilityZone": zone, "InstanceType": "t3.small", "ProductDescription": "Linux/UNIX",
                "SpotPrice": price, "Timestamp": when}

    ec2.add_response("describe_spot_price_history",
                     {"SpotPriceHistory": [entry("us-east-1b", "0.0050", t)], "NextToken": "page-2"},
                     {**SPOT_QUERY, "AvailabilityZone": "us-east-1b"})
    ec2.add_response("describe_spot_price_history",
                     {"SpotPriceHistory": [entry("us-east-1b", "0.0080", t + dt.timedelta(hours=3))]},
                     {**SPOT_QUERY, "AvailabilityZone": "us-east-1b", "NextToken": "page-2"})
    before = dt.datetime.now(dt.timezone.utc)
    assert prices.spot("t3.small", "us-east-1b") == 0.0080  # the later page holds the later price
    after = dt.datetime.now(dt.timezone.utc)
    assert len(sent) == 2 and all(before <= params["StartTime"] <= after for params in sent)


# Cost Explorer -----------------------------------------------------------------------------------
def test_cost_explorer_sums_the_blended_cost(moto_endpoint):
    day = {"TimePeriod": {"Start": "2021-03-01", "End": "2021-03-02"}, "Groups": [], "Estimated": False}
    queued = {"results": [{"ResultsByTime": [
        {**day, "Total": {"BlendedCost": {"Amount": "0.0101516483", "Unit": "USD"}}},
        {**day, "Total": {"BlendedCost": {"Amount": "0.02", "Unit": "USD"}}}]}]}
    assert requests.post(f"{moto_endpoint}/moto-api/static/ce/cost-and-usage-results", json=queued).status_code == 201
    ce = boto3.client("ce", region_name="us-east-1")
    assert cost_explorer_cost(ce, postrun()) == pytest.approx(0.0301516483)


def test_cost_explorer_query_is_upstreams(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    ce = boto3.client("ce", region_name="us-east-1")
    with Stubber(ce) as stub:
        stub.add_response("get_cost_and_usage", {"ResultsByTime": []}, {
            "Filter": {"Tags": {"Key": "Name", "Values": ["awsem-NgN7IOBXjgRH"]}}, "Granularity": "DAILY",
            "TimePeriod": {"Start": "2021-02-28", "End": "2021-03-02"}, "Metrics": ["BlendedCost"]})
        assert cost_explorer_cost(ce, postrun()) == 0.0
        stub.add_response("get_cost_and_usage", {"ResultsByTime": []}, {
            "Filter": {"Tags": {"Key": "Name", "Values": ["awsem-NgN7IOBXjgRH"]}}, "Granularity": "DAILY",
            "TimePeriod": {"Start": "2021-02-28", "End": "2021-03-11"}, "Metrics": ["BlendedCost"]})
        assert cost_explorer_cost(ce, postrun(end=""), today=dt.date(2021, 3, 10)) == 0.0
        stub.add_client_error("get_cost_and_usage", "AccessDeniedException")
        assert cost_explorer_cost(ce, postrun()) == 0.0


