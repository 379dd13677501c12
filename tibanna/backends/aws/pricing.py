"""AWS prices and bills: the Pricing API, the spot price history and Cost Explorer.

`AwsPriceSource` is the AWS backend's `tibanna.cost.PriceSource` (the formula is there);
`spot_prices` is also what the catalogue ranks spot instance types by; `cost_explorer_cost` is
what a job was billed.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from tibanna import protocol
from tibanna.backends.aws import names
from tibanna.cost import PriceSource
from tibanna.exceptions import PricingRetrievalException
from tibanna.storage.s3 import Clients

log = logging.getLogger(__name__)

PRICING_REGION = "us-east-1"  # the Pricing API's endpoints live in us-east-1, eu-central-1 and ap-south-1
SPOT_PAGE_SIZE = 1000


def spot_prices(ec2: Any, instance_types: Iterable[str], zone: str = "") -> dict[tuple[str, str], float]:
    """The spot price in effect now of each (instance type, availability zone), Linux, from an `ec2` client.

    StartTime=now gives each pair's current price (the history's last change before now) and
    keeps the answer small; without it AWS pages through 90 days of history. Every page is read.
    """
    query: dict[str, Any] = {"InstanceTypes": list(instance_types), "ProductDescriptions": ["Linux/UNIX"],
                             "StartTime": _dt.datetime.now(_dt.timezone.utc),
                             "PaginationConfig": {"PageSize": SPOT_PAGE_SIZE}}
    if zone:
        query["AvailabilityZone"] = zone
    latest: dict[tuple[str, str], tuple[Any, float]] = {}
    for page in ec2.get_paginator("describe_spot_price_history").paginate(**query):
        for entry in page["SpotPriceHistory"]:
            where = (entry["InstanceType"], entry["AvailabilityZone"])
            if where not in latest or entry["Timestamp"] > latest[where][0]:
                latest[where] = (entry["Timestamp"], float(entry["SpotPrice"]))
    if not latest:
        raise PricingRetrievalException("Spot price could not be retrieved")
    return {where: price for where, (_when, price) in latest.items()}


class AwsPriceSource(PriceSource):
    """Prices from the AWS Pricing API (`pricing` client) and EC2's spot price history (`ec2`
    client of the job's region)."""

    def __init__(self, pricing_client: Any, ec2_client: Any, region: str) -> None:
        self.pricing = pricing_client
        self.ec2 = ec2_client
        self.region = region

    def _prices(self, what: str, **terms: str) -> list[float]:
        """USD prices of the EC2 products matching these attributes (one per product)."""
        filters = [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in terms.items()]
        found: list[float] = []
        kwargs: dict[str, Any] = {"ServiceCode": "AmazonEC2", "Filters": filters}
        while True:
            page = self.pricing.get_products(**kwargs)
            for item in page.get("PriceList", []):
                product = json.loads(item) if isinstance(item, str) else item
                term = next(iter(product["terms"]["OnDemand"].values()))
                dimension = next(iter(term["priceDimensions"].values()))
                found.append(float(dimension["pricePerUnit"]["USD"]))
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        if not found:
            raise PricingRetrievalException(f"We could not retrieve {what} prices from Amazon")
        return found

    def _one_price(self, what: str, **terms: str) -> float:
        found = self._prices(what, **terms)
        if len(found) > 1:
            raise PricingRetrievalException(f"{what} prices are ambiguous")
        return found[0]

    def on_demand(self, instance_type: str, region: str) -> float:
        return self._one_price("EC2", instanceType=instance_type, operatingSystem="Linux",
                               regionCode=region or self.region, preInstalledSw="NA",
                               capacitystatus="Used", tenancy="Shared")

    def spot(self, instance_type: str, az: str) -> float:
        """The zone's current spot price; with no zone (before a run) the dearest zone's, to be safe."""
        return max(spot_prices(self.ec2, [instance_type], az).values())

    def ebs_storage(self, volume_type: str) -> float:
        return self._one_price("EBS", regionCode=self.region, volumeApiName=volume_type, productFamily="Storage")

    def ebs_iops(self, volume_type: str) -> tuple[float, ...]:
        terms = dict(regionCode=self.region, volumeApiName=volume_type, productFamily="System Operation")
        if volume_type == "io2":
            return tuple(sorted(self._prices("EBS io2 IOPS", **terms), reverse=True))
        return (self._one_price("EBS IOPS", **terms),)

    def ebs_throughput(self) -> float:
        # Listed per GiBps-month; upstream divides by 1000 to get the MiB/s-month price.
        return self._one_price("EBS throughput", regionCode=self.region, volumeApiName="gp3",
                               productFamily="Provisioned Throughput") / 1000


def price_source(clients: Clients) -> AwsPriceSource:
    """Prices from the Pricing API (served from us-east-1; tried twice, not ten times) and the spot history."""
    pricing = clients.session.client(
        "pricing", region_name=PRICING_REGION, endpoint_url=clients.endpoint_url,
        config=clients.config.merge(Config(retries={"mode": "standard", "max_attempts": 2})))
    return AwsPriceSource(pricing, clients("ec2"), clients.region)


def cost_explorer_cost(ce_client: Any, postrun: Mapping[str, Any], *, today: _dt.date | None = None) -> float:
    """The billed cost of a job's instance (tag `Name=awsem-<jobid>`), from a boto3 `ce` client.

    Searches from the day before the start to the day after the end (or tomorrow, for a running
    job). Cost Explorer only filters by tags activated as cost allocation tags; an error gives 0.0.
    """
    job = postrun.get("Job") or {}
    start = protocol.parse_stamp(job["start_time"]).date() - _dt.timedelta(days=1)
    last = protocol.parse_stamp(job["end_time"]).date() if job.get("end_time") else (
        today or _dt.datetime.now(_dt.timezone.utc).date())
    query: dict[str, Any] = {
        "Filter": {"Tags": {"Key": "Name", "Values": [names.instance_name(job["JOBID"])]}},
        "Granularity": "DAILY",
        "TimePeriod": {"Start": start.isoformat(), "End": (last + _dt.timedelta(days=1)).isoformat()},
        "Metrics": ["BlendedCost"],
    }
    total = 0.0
    try:
        while True:
            page = ce_client.get_cost_and_usage(**query)
            total += sum(float(r["Total"]["BlendedCost"]["Amount"]) for r in page.get("ResultsByTime", []))
            if not page.get("NextPageToken"):
                return total
            query["NextPageToken"] = page["NextPageToken"]
    except ClientError as err:
        log.warning("Cost Explorer: %s", err)
        return 0.0
