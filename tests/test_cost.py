"""Cost and cost estimate: upstream's golden values, the fixed bugs, price sources, Cost Explorer, tsv."""
from __future__ import annotations

import datetime as dt
import json
import logging

import boto3
import pytest
import requests
from botocore.stub import Stubber
from moto import mock_aws

from tibanna.cost import (
    ACTUAL,
    IMMEDIATE,
    NA,
    RETROSPECTIVE,
    AwsPriceSource,
    LocalPriceSource,
    cost_estimate_for_description,
    cost_explorer_cost,
    estimate_job_cost,
    update_cost_estimate_tsv,
    update_cost_tsv,
    with_cost,
    with_cost_estimate,
)
from tibanna.exceptions import PricingRetrievalException
from tibanna.storage import LocalStore

START, END = "20210301-16:58:05-UTC", "20210301-17:03:58-UTC"  # 353 s, as upstream's fixtures
SOON = dt.datetime(2021, 3, 2, tzinfo=dt.timezone.utc)


def postrun(*, instance_type: str = "t3.small", spot: bool = True, start: str = START, end: str = END,
            az: str = "us-east-1b", **config) -> dict:
    """A postrun JSON shaped like upstream's test fixtures (instance type in the config only)."""
    cfg = {"awsf_image": "aveit/tibanna-awsf:1.0.3.dev4", "ebs_size": 20, "ebs_type": "gp3", "ebs_iops": "",
           "root_ebs_size": 8, "spot_instance": spot, "spot_duration": "", "instance_type": instance_type,
           "cpu": "", "mem": 0, "log_bucket": "lb"}
    cfg.update(config)
    return {"Job": {"JOBID": "NgN7IOBXjgRH", "start_time": start, "end_time": end,
                    "instance_availablity_zone": az}, "config": cfg}


# Upstream's five golden values. Upstream priced a gp3 data volume at the root volume's price; here
# both are gp3 at 0.08, so the fixed formula and upstream's agree.
GP3 = {"ebs_storage": {"gp3": 0.08}}
GOLDEN = {
    "medium_nonspot": (postrun(instance_type="t3.medium", spot=False),
                       {"instance_types": {"t3.medium": {"on_demand": 0.0416}}, **GP3}, 0.004384172839506173),
    "small_spot": (postrun(), {"instance_types": {"t3.small": {"spot": 0.0064}}, **GP3}, 0.0009326172839506175),
    "small_spot_gp3_iops": (postrun(ebs_iops=3500),
                            {"instance_types": {"t3.small": {"spot": 0.0064}}, "ebs_iops": {"gp3": [0.005]}, **GP3},
                            0.0012730879629629633),
    "small_spot_gp3_iops_throughput": (
        postrun(ebs_iops=3500, ebs_throughput=200),
        {"instance_types": {"t3.small": {"spot": 0.0064}}, "ebs_iops": {"gp3": [0.005]}, "ebs_throughput": 0.04, **GP3},
        0.001681652777777778),
    "small_spot_io2_iops": (
        postrun(start="20210301-21:56:27-UTC", end="20210301-22:01:49-UTC", az="us-east-1f", ebs_type="io2",
                ebs_iops=3500),
        {"instance_types": {"t3.small": {"spot": 0.0064}}, "ebs_storage": {"gp3": 0.08, "io2": 0.125},
         "ebs_iops": {"io2": [0.065, 0.0455, 0.03185]}},
        0.029224481481481476),
}


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_values(name):
    job, table, expected = GOLDEN[name]
    assert estimate_job_cost(job, LocalPriceSource(table), now=SOON) == (expected, IMMEDIATE)


def test_runs_longer_than_a_day_are_not_wrapped():
    job = postrun(instance_type="t3.medium", spot=False, end="20210302-17:58:05-UTC")  # 25 hours
    estimate, _ = estimate_job_cost(job, LocalPriceSource({"instance_types": {"t3.medium": 0.0416}}), now=SOON)
    assert estimate == pytest.approx(0.0416 * 25)  # upstream: 0.0416 * 1


def test_gp3_data_volume_is_priced_as_gp3_not_at_the_root_price():
    job = postrun(instance_type="t3.medium", spot=False, awsf_image="")  # before awsf 1.0: gp2 root
    prices = LocalPriceSource({"instance_types": {"t3.medium": 0.0416}, "ebs_storage": {"gp2": 0.10, "gp3": 0.08}})
    hours = 353 / 3600
    expected = 0.0416 * hours + 0.10 * 8 * hours / 720 + 0.08 * 20 * hours / 720
    upstream = 0.0416 * hours + 0.10 * 8 * hours / 720 + 0.10 * 20 * hours / 720
    estimate, _ = estimate_job_cost(job, prices, now=SOON)
    assert estimate == pytest.approx(expected)
    assert estimate != pytest.approx(upstream)


def test_io2_tiers_above_32000_and_64000_iops():
    job = postrun(ebs_type="io2", ebs_iops=70000, ebs_size=10, root_ebs_size=10)
    prices = LocalPriceSource({"instance_types": {"t3.small": 0.0}, "ebs_iops": {"io2": [0.065, 0.0455, 0.03185]}})
    hours = 353 / 3600
    expected = (0.065 * 32000 + 0.0455 * 32000 + 0.03185 * 6000) * hours / 720
    assert estimate_job_cost(job, prices, now=SOON)[0] == pytest.approx(expected)


def test_estimate_type_turns_retrospective_after_ten_days():
    job, table, _ = GOLDEN["small_spot"]
    end = dt.datetime(2021, 3, 1, 17, 3, 58, tzinfo=dt.timezone.utc)
    assert estimate_job_cost(job, LocalPriceSource(table), now=end + dt.timedelta(days=10))[1] == IMMEDIATE
    assert estimate_job_cost(job, LocalPriceSource(table), now=end + dt.timedelta(days=11))[1] == RETROSPECTIVE


@pytest.mark.parametrize("job", [
    postrun(end=""),                                             # still running
    postrun(spot_duration=60),                                   # retired spot blocks
    postrun(instance_type=""),                                   # neither a type nor cpu and mem
    postrun(instance_type="x9.huge"),                            # not in the table
    postrun(ebs_size="3x"),                                      # not filled in
])
def test_no_estimate_is_zero_na(job):
    table = {"instance_types": {"t3.small": 0.02}}
    assert estimate_job_cost(job, LocalPriceSource(table), now=SOON) == (0.0, NA)


# Local prices -----------------------------------------------------------------------------------
def test_local_estimate_is_price_times_hours():
    prices = LocalPriceSource({"instance_types": {"c5.xlarge": 0.17}})
    assert cost_estimate_for_description({"config": {"instance_type": "c5.xlarge"}}, 3, prices) == (
        pytest.approx(0.17 * 3), IMMEDIATE)
    listed = {"config": {"instance_type": ["c5.xlarge", "m5.xlarge"]}}
    assert cost_estimate_for_description(listed, 2, prices)[0] == pytest.approx(0.34)


def test_local_estimate_by_cpu_and_memory():
    prices = LocalPriceSource({"vcpu_hour": 0.02, "gib_hour": 0.003})
    description = {"args": {}, "config": {"cpu": 4, "mem": 16, "log_bucket": "lb"}}
    assert cost_estimate_for_description(description, 2, prices)[0] == pytest.approx((4 * 0.02 + 16 * 0.003) * 2)
    local_run = postrun(instance_type="", cpu=4, mem=16, spot=False, end="20210301-18:58:05-UTC")
    assert estimate_job_cost(local_run, prices, now=SOON)[0] == pytest.approx((4 * 0.02 + 16 * 0.003) * 2)
    assert cost_estimate_for_description(description, 2, LocalPriceSource({"instance_types": {}, "x": 1})) == (0.0, NA)


def test_before_a_run_volumes_count_too():
    prices = LocalPriceSource({"instance_types": {"t3.small": 0.02}, "ebs_storage": {"gp3": 0.08}})
    description = {"config": {"instance_type": "t3.small", "ebs_size": 50, "root_ebs_size": 10}}
    assert cost_estimate_for_description(description, 720, prices)[0] == pytest.approx(0.02 * 720 + 0.08 * 60)


def test_without_a_table_prices_are_zero_and_it_says_so_once(caplog, tmp_path):
    with caplog.at_level(logging.INFO, logger="tibanna.cost"):
        prices = LocalPriceSource.from_home(tmp_path)
        LocalPriceSource.from_home(tmp_path)  # every plot_metrics and cost asks again
    assert prices.is_empty
    said = [r for r in caplog.records if "local costs are 0" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.INFO and str(tmp_path / "prices.json") in caplog.text
    assert cost_estimate_for_description({"config": {"instance_type": "t3.small"}}, 5, prices) == (0.0, IMMEDIATE)
    assert cost_estimate_for_description({"config": {"cpu": 2, "mem": 4}}, 5, prices) == (0.0, IMMEDIATE)


def test_price_table_from_tibanna_home(tmp_path):
    table = {"instance_types": {"t3.small": {"on_demand": 0.02, "spot": 0.006}}}
    (tmp_path / "prices.json").write_text(json.dumps(table))
    prices = LocalPriceSource.from_home(tmp_path)
    assert (prices.on_demand("t3.small", ""), prices.spot("t3.small", "")) == (0.02, 0.006)
    assert prices.ebs_storage("gp3") == 0.0 and prices.ebs_iops("io2") == (0.0, 0.0, 0.0)
    (tmp_path / "prices.json").write_text("{not json")
    with pytest.raises(PricingRetrievalException, match="prices.json"):
        LocalPriceSource.from_home(tmp_path)


# AWS prices through recorded responses ----------------------------------------------------------
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
        {"InstanceTypes": ["t3.small"], "ProductDescriptions": ["Linux/UNIX"], "AvailabilityZone": "us-east-1f",
         "MaxResults": 1})
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
        {"InstanceTypes": ["t3.small"], "ProductDescriptions": ["Linux/UNIX"]})
    assert prices.spot("t3.small", "") == 0.0070  # latest per zone: 1a 0.0070, 1b 0.0065


# Cost Explorer -----------------------------------------------------------------------------------
@mock_aws
def test_cost_explorer_sums_the_blended_cost():
    day = {"TimePeriod": {"Start": "2021-03-01", "End": "2021-03-02"}, "Groups": [], "Estimated": False}
    queued = {"results": [{"ResultsByTime": [
        {**day, "Total": {"BlendedCost": {"Amount": "0.0101516483", "Unit": "USD"}}},
        {**day, "Total": {"BlendedCost": {"Amount": "0.02", "Unit": "USD"}}}]}]}
    assert requests.post("http://motoapi.amazonaws.com/moto-api/static/ce/cost-and-usage-results",
                         json=queued).status_code == 201
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


# metrics_report.tsv updates -----------------------------------------------------------------------
REPORT = ("Metric\tValue\nMaximum_Memory_Used_Mb\t713.4\nInstance_Type\tt3.small\n"
          "Estimated_Cost\t0.004\nEstimated_Cost_Type\timmediate estimate\n")


def test_estimates_never_downgrade():
    assert with_cost_estimate(REPORT, 0.005, RETROSPECTIVE) is None
    assert with_cost_estimate(REPORT, 0.0, NA) is None
    updated = with_cost_estimate(REPORT, 0.0045, IMMEDIATE)
    assert updated.endswith("Estimated_Cost\t0.0045\nEstimated_Cost_Type\timmediate estimate\n")
    actual = with_cost_estimate(updated, 0.0051, ACTUAL)
    assert actual == ("Metric\tValue\nMaximum_Memory_Used_Mb\t713.4\nInstance_Type\tt3.small\n"
                      "Cost\t0.0051\nEstimated_Cost\t0.0051\nEstimated_Cost_Type\tactual cost\n")
    assert with_cost_estimate(actual, 0.004, IMMEDIATE) is None
    assert with_cost_estimate(actual, 0.0052, ACTUAL).count("Cost\t0.0052\n") == 2


def test_cost_row_is_replaced():
    assert with_cost(REPORT, 0.01).endswith("Estimated_Cost_Type\timmediate estimate\nCost\t0.01\n")
    twice = with_cost(with_cost(REPORT, 0.01), 0.02)
    assert [line for line in twice.splitlines() if line.startswith("Cost\t")] == ["Cost\t0.02"]


def test_tsv_updates_in_a_store(tmp_path):
    store = LocalStore(tmp_path)
    key = "job1.metrics/metrics_report.tsv"
    assert update_cost_tsv(store, "lb", "job1", 0.1) is False
    assert update_cost_estimate_tsv(store, "lb", "job1", 0.1, IMMEDIATE) is False
    store.put_text("lb", key, REPORT)
    assert update_cost_estimate_tsv(store, "lb", "job1", 0.2, RETROSPECTIVE) is False
    assert store.get_text("lb", key) == REPORT
    assert update_cost_estimate_tsv(store, "lb", "job1", 0.3, ACTUAL) is True
    assert update_cost_tsv(store, "lb", "job1", 0.31) is True
    text = store.get_text("lb", key)
    assert "Cost\t0.31\n" in text and "Estimated_Cost_Type\tactual cost\n" in text
