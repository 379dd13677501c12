"""What a job cost, or would cost: upstream's formulas over a price source.

The machine is priced per hour (on-demand or spot), the volumes per GB-month, provisioned IOPS
and gp3 throughput per unit-month, all prorated by the run time. Two upstream bugs are fixed:
the run time is not wrapped at 24 hours, and a gp3 data volume is priced as gp3 storage, not at
the root volume's price. Prices come from a `PriceSource`: `AwsPriceSource` (Pricing API and the
spot price history) or `LocalPriceSource` (a table, `TIBANNA_HOME/prices.json`, zero by default).
The actual cost on AWS comes from Cost Explorer (`cost_explorer_cost`).
"""
from __future__ import annotations

import abc
import datetime as _dt
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tibanna import protocol
from tibanna.exceptions import PricingRetrievalException
from tibanna.storage import ObjectStore

log = logging.getLogger(__name__)

NA = "NA"
IMMEDIATE = "immediate estimate"
RETROSPECTIVE = "retrospective estimate"
ACTUAL = "actual cost"
# An estimate made later than this after the job ended is retrospective (prices may have moved).
RETROSPECTIVE_AFTER = _dt.timedelta(days=10)

HOURS_PER_MONTH = 24.0 * 30.0
GP3_FREE_IOPS = 3000
GP3_FREE_THROUGHPUT = 125  # MiB/s
IO2_TIERS = (32000, 64000)
DEFAULT_ROOT_EBS_SIZE = 10
DEFAULT_EBS_SIZE = 10
DEFAULT_EBS_TYPE = "gp3"

REPORT_TSV = "metrics_report.tsv"
PRICES_FILE = "prices.json"


class PriceSource(abc.ABC):
    """Prices in USD: instances per hour, EBS per GB-month, IOPS per IOPS-month, throughput per
    MiB/s-month. A price that cannot be had raises PricingRetrievalException."""

    @abc.abstractmethod
    def on_demand(self, instance_type: str, region: str) -> float:
        """On-demand Linux price of an instance type."""

    @abc.abstractmethod
    def spot(self, instance_type: str, az: str) -> float:
        """Latest spot price of an instance type in an availability zone ('' when unknown)."""

    @abc.abstractmethod
    def ebs_storage(self, volume_type: str) -> float:
        """Storage price of a volume type."""

    @abc.abstractmethod
    def ebs_iops(self, volume_type: str) -> tuple[float, ...]:
        """Provisioned IOPS price; for io2 the three tier prices, highest first."""

    @abc.abstractmethod
    def ebs_throughput(self) -> float:
        """gp3 provisioned throughput price."""

    def by_resources(self, cpu: float, mem_gb: float, spot: bool) -> float:
        """Hourly price of a machine known only by its vCPUs and memory."""
        raise PricingRetrievalException("Instance type is not available for cost estimation")


# The formula ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Volumes:
    """The job's EBS volumes as the description's config declares them."""

    root_type: str
    root_size: float
    data_type: str
    data_size: float
    iops: float | None = None
    throughput: float | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any], root_type: str) -> Volumes:
        """Read a (filled-in) config; missing sizes count as upstream's defaults."""
        return cls(
            root_type=root_type,
            root_size=_number(config.get("root_ebs_size"), DEFAULT_ROOT_EBS_SIZE, "root_ebs_size"),
            data_type=config.get("ebs_type") or DEFAULT_EBS_TYPE,
            data_size=_number(config.get("ebs_size"), DEFAULT_EBS_SIZE, "ebs_size"),
            iops=_number(config.get("ebs_iops"), None, "ebs_iops"),
            throughput=_number(config.get("ebs_throughput"), None, "ebs_throughput"),
        )


def _number(value: Any, default: float | None, name: str) -> float | None:
    if value in (None, "", 0):
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise PricingRetrievalException(f"config.{name} {value!r} is not a number") from None


def machine_cost(hourly_price: float, hours: float, volumes: Volumes, prices: PriceSource) -> float:
    """The cost of a machine and its volumes over `hours` (terms added in upstream's order)."""
    cost = hourly_price * hours
    cost += prices.ebs_storage(volumes.root_type) * volumes.root_size * hours / HOURS_PER_MONTH
    cost += prices.ebs_storage(volumes.data_type) * volumes.data_size * hours / HOURS_PER_MONTH
    if volumes.data_type == "gp3" and volumes.throughput:
        extra = max(volumes.throughput - GP3_FREE_THROUGHPUT, 0)
        cost += prices.ebs_throughput() * extra * hours / HOURS_PER_MONTH
    if volumes.iops and volumes.data_type in ("io1", "gp3"):
        billed = max(volumes.iops - GP3_FREE_IOPS, 0) if volumes.data_type == "gp3" else volumes.iops
        cost += prices.ebs_iops(volumes.data_type)[0] * billed * hours / HOURS_PER_MONTH
    elif volumes.iops and volumes.data_type == "io2":
        tiers = prices.ebs_iops("io2")
        if len(tiers) != 3:
            raise PricingRetrievalException("EBS prices for io2 are incomplete")
        low, high = IO2_TIERS
        iops = volumes.iops
        cost += (tiers[0] * min(iops, low)
                 + tiers[1] * min(max(iops - low, 0), high - low)
                 + tiers[2] * max(iops - high, 0)) * hours / HOURS_PER_MONTH
    return cost


def _hourly_price(instance_type: str | list | None, config: Mapping[str, Any], prices: PriceSource,
                  region: str, az: str) -> float:
    """The machine's hourly price: by instance type (the first, for a list), else by cpu and mem."""
    if isinstance(instance_type, list):
        instance_type = instance_type[0] if instance_type else ""
    spot = bool(config.get("spot_instance"))
    if spot and config.get("spot_duration"):
        raise PricingRetrievalException("Pricing with spot_duration is not supported")
    if instance_type and instance_type != protocol.LOCAL_INSTANCE_TYPE:
        return prices.spot(instance_type, az) if spot else prices.on_demand(instance_type, region)
    cpu = _number(config.get("cpu"), None, "cpu")
    mem = _number(config.get("mem"), None, "mem")
    if cpu and mem:
        return prices.by_resources(cpu, mem, spot)
    raise PricingRetrievalException("Instance type is not available for cost estimation")


def estimate_job_cost(postrun: Mapping[str, Any], prices: PriceSource, *, region: str = "",
                      now: _dt.datetime | None = None) -> tuple[float, str]:
    """`(estimate, type)` for a finished job from its postrun JSON; `(0.0, 'NA')` when it cannot be had.

    The root volume is gp3 when the config names an `awsf_image` (upstream >= 1.0), else gp2.
    """
    job, config = postrun.get("Job") or {}, postrun.get("config") or {}
    if not job.get("end_time"):
        log.warning("job.end_time not available. Cannot calculate estimated cost.")
        return 0.0, NA
    try:
        start, end = protocol.parse_stamp(job["start_time"]), protocol.parse_stamp(job["end_time"])
        hours = (end - start).total_seconds() / 3600.0
        hourly = _hourly_price(job.get("instance_type") or config.get("instance_type"), config, prices,
                               region, job.get("instance_availablity_zone") or "")
        volumes = Volumes.from_config(config, "gp3" if config.get("awsf_image") else "gp2")
        cost = machine_cost(hourly, hours, volumes, prices)
    except Exception as err:  # upstream: any failure means "no estimate", never an error
        log.warning("Cost estimation error: %s", err)
        return 0.0, NA
    now = now or _dt.datetime.now(_dt.timezone.utc)
    return cost, RETROSPECTIVE if now - end > RETROSPECTIVE_AFTER else IMMEDIATE


def cost_estimate_for_description(description: Mapping[str, Any], hours: float, prices: PriceSource,
                                  *, region: str = "") -> tuple[float, str]:
    """What a job described by `description` would cost if it ran `hours`, before it runs.

    The machine is priced by `config.instance_type` (the first of a list), else by `cpu` and
    `mem`; the root volume is gp3, as we launch it. `(0.0, 'NA')` when it cannot be priced.
    """
    config = description.get("config") or {}
    try:
        hourly = _hourly_price(config.get("instance_type"), config, prices, region,
                               config.get("availability_zone") or "")
        cost = machine_cost(hourly, float(hours), Volumes.from_config(config, "gp3"), prices)
    except Exception as err:
        log.warning("Cost estimation error: %s", err)
        return 0.0, NA
    return cost, IMMEDIATE


# Price sources ----------------------------------------------------------------------------------
class AwsPriceSource(PriceSource):
    """Prices from the AWS Pricing API (`pricing` client; its endpoints live in us-east-1,
    eu-central-1 and ap-south-1) and EC2's spot price history (`ec2` client of the job's region)."""

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
        query: dict[str, Any] = {"InstanceTypes": [instance_type], "ProductDescriptions": ["Linux/UNIX"]}
        if az:
            query.update(AvailabilityZone=az, MaxResults=1)  # most recent first
        history = self.ec2.describe_spot_price_history(**query)["SpotPriceHistory"]
        if not history:
            raise PricingRetrievalException("Spot price could not be retrieved")
        if az:
            return float(history[0]["SpotPrice"])
        # Zone not known yet (before a run): the dearest zone's latest price, to be safe.
        latest: dict[str, float] = {}
        for entry in sorted(history, key=lambda e: e["Timestamp"]):
            latest[entry["AvailabilityZone"]] = float(entry["SpotPrice"])
        return max(latest.values())

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


_SAID_NO_TABLE: set[str] = set()  # table locations already reported missing in this process


class LocalPriceSource(PriceSource):
    """Prices from a table, for the local backend and for "what if" estimates.

    The table (`TIBANNA_HOME/prices.json`, or a dict) looks like::

        {"instance_types": {"t3.medium": {"on_demand": 0.0416, "spot": 0.0125}, "c5.xlarge": 0.17},
         "vcpu_hour": 0.02, "gib_hour": 0.003,
         "ebs_storage": {"gp3": 0.08}, "ebs_iops": {"gp3": [0.005], "io2": [0.065, 0.0455, 0.03185]},
         "ebs_throughput": 0.04}

    An instance type's entry is a price or `{on_demand, spot}` (spot defaults to on-demand); a
    machine without a type is priced `cpu * vcpu_hour + mem * gib_hour`. Volume prices that the
    table leaves out are zero. With no table at all every price is zero, as the log says once per
    table location and process (no table is the usual case on a laptop, not a problem).
    """

    def __init__(self, table: Mapping[str, Any] | None = None, *, origin: str = "the given table") -> None:
        self.table = dict(table or {})
        self.origin = origin
        if not self.table and origin not in _SAID_NO_TABLE:
            _SAID_NO_TABLE.add(origin)
            log.info("No local price table (%s): local costs are 0.", origin)

    @property
    def is_empty(self) -> bool:
        """Whether there is no table, so every price is zero."""
        return not self.table

    @classmethod
    def from_home(cls, home: Path | str) -> LocalPriceSource:
        """The table in `<TIBANNA_HOME>/prices.json`; none there means zero prices."""
        path = Path(home) / PRICES_FILE
        try:
            table = json.loads(path.read_text())
        except FileNotFoundError:
            return cls({}, origin=f"{path} does not exist")
        except (OSError, ValueError) as err:
            raise PricingRetrievalException(f"cannot read the price table {path}: {err}") from err
        return cls(table, origin=str(path))

    def _instance(self, instance_type: str, kind: str) -> float:
        if self.is_empty:
            return 0.0
        entry = (self.table.get("instance_types") or {}).get(instance_type)
        if entry is None:
            raise PricingRetrievalException(f"{instance_type} has no price in {self.origin}")
        if isinstance(entry, (int, float)):
            return float(entry)
        return float(entry.get(kind, entry.get("on_demand", 0.0)))

    def on_demand(self, instance_type: str, region: str) -> float:
        return self._instance(instance_type, "on_demand")

    def spot(self, instance_type: str, az: str) -> float:
        return self._instance(instance_type, "spot")

    def ebs_storage(self, volume_type: str) -> float:
        return float((self.table.get("ebs_storage") or {}).get(volume_type, 0.0))

    def ebs_iops(self, volume_type: str) -> tuple[float, ...]:
        prices = (self.table.get("ebs_iops") or {}).get(volume_type)
        if prices is None:
            return (0.0, 0.0, 0.0) if volume_type == "io2" else (0.0,)
        return tuple(float(p) for p in (prices if isinstance(prices, list) else [prices]))

    def ebs_throughput(self) -> float:
        return float(self.table.get("ebs_throughput", 0.0))

    def by_resources(self, cpu: float, mem_gb: float, spot: bool) -> float:
        if not self.is_empty and "vcpu_hour" not in self.table and "gib_hour" not in self.table:
            raise PricingRetrievalException(f"no vcpu_hour/gib_hour prices in {self.origin} to price cpu and mem")
        return cpu * float(self.table.get("vcpu_hour", 0.0)) + mem_gb * float(self.table.get("gib_hour", 0.0))


# Cost Explorer ----------------------------------------------------------------------------------
def cost_explorer_cost(ce_client: Any, postrun: Mapping[str, Any], *, today: _dt.date | None = None) -> float:
    """The billed cost of a job's instance (tag `Name=awsem-<jobid>`), from a boto3 `ce` client.

    Searches from the day before the start to the day after the end (or tomorrow, for a running
    job). Cost Explorer only filters by tags activated as cost allocation tags; an error gives 0.0.
    """
    from botocore.exceptions import ClientError

    job = postrun.get("Job") or {}
    start = protocol.parse_stamp(job["start_time"]).date() - _dt.timedelta(days=1)
    last = protocol.parse_stamp(job["end_time"]).date() if job.get("end_time") else (
        today or _dt.datetime.now(_dt.timezone.utc).date())
    query: dict[str, Any] = {
        "Filter": {"Tags": {"Key": "Name", "Values": ["awsem-" + job["JOBID"]]}},
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


# metrics_report.tsv ----------------------------------------------------------------------------
_RANK = {NA: 0, RETROSPECTIVE: 1, IMMEDIATE: 2, ACTUAL: 3}


def _rows(report: str) -> list[list[str]]:
    return [line.split("\t") for line in report.splitlines() if line]


def _join(rows: list[list[str]]) -> str:
    return "".join("\t".join(row) + "\n" for row in rows)


def with_cost_estimate(report: str, estimate: float, estimate_type: str) -> str | None:
    """metrics_report.tsv text with a new `Estimated_Cost` and `Estimated_Cost_Type` (and `Cost`
    for an actual cost), or None when it holds a better kind of figure: an estimate never
    replaces a more accurate one (actual cost > immediate > retrospective > NA)."""
    rows = _rows(report)
    current = next((row[1] for row in rows if row[0] == "Estimated_Cost_Type" and len(row) > 1), NA)
    if _RANK.get(estimate_type, 0) < _RANK.get(current, 0):
        log.warning("There already is a probably more accurate estimate (%s) in the tsv. Not updating.", current)
        return None
    dropped = {"Estimated_Cost", "Estimated_Cost_Type"} | ({"Cost"} if estimate_type == ACTUAL else set())
    rows = [row for row in rows if row[0] not in dropped]
    if estimate_type == ACTUAL:
        rows.append(["Cost", str(estimate)])
    rows += [["Estimated_Cost", str(estimate)], ["Estimated_Cost_Type", estimate_type]]
    return _join(rows)


def with_cost(report: str, cost: float) -> str:
    """metrics_report.tsv text with its `Cost` row replaced or added."""
    return _join([row for row in _rows(report) if row[0] != "Cost"] + [["Cost", str(cost)]])


def _report_key(jobid: str) -> str:
    return f"{jobid}{protocol.METRICS_DIR}{REPORT_TSV}"


def update_cost_estimate_tsv(store: ObjectStore, log_bucket: str, jobid: str,
                             estimate: float, estimate_type: str) -> bool:
    """Write an estimate into the job's metrics_report.tsv; False when there is none or it holds
    a more accurate figure."""
    report = store.get_text(log_bucket, _report_key(jobid))
    updated = None if report is None else with_cost_estimate(report, estimate, estimate_type)
    if updated is not None:
        store.put_text(log_bucket, _report_key(jobid), updated)
    return updated is not None


def update_cost_tsv(store: ObjectStore, log_bucket: str, jobid: str, cost: float) -> bool:
    """Write the actual cost into the job's metrics_report.tsv; False when there is none."""
    report = store.get_text(log_bucket, _report_key(jobid))
    if report is not None:
        store.put_text(log_bucket, _report_key(jobid), with_cost(report, cost))
    return report is not None
