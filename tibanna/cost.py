"""What a job cost, or would cost: upstream's formulas over a price source.

The machine is priced per hour (on-demand or spot), the volumes per GB-month, provisioned IOPS
and gp3 throughput per unit-month, all prorated by the run time. Two upstream bugs are fixed:
the run time is not wrapped at 24 hours, and a gp3 data volume is priced as gp3 storage, not at
the root volume's price. Prices come from a `PriceSource`, one per backend: on AWS the Pricing
API and the spot price history (backends/aws/pricing.py, where Cost Explorer's actual cost is
read too), on local a table (backends/local/prices.py). The estimate's kind (`IMMEDIATE`, ...) is
what metrics_report.tsv records (metrics/report_tsv.py).
"""
from __future__ import annotations

import abc
import datetime as _dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tibanna import protocol
from tibanna.exceptions import PricingRetrievalException
from tibanna.jobspec import DEFAULT_ROOT_EBS_SIZE, MIN_EBS_SIZE_GB

log = logging.getLogger(__name__)

# The kinds of figure: metrics_report.tsv's Estimated_Cost_Type.
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
DEFAULT_EBS_TYPE = "gp3"


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
        """Read a (filled-in) config; missing sizes count as the parser's defaults."""
        return cls(
            root_type=root_type,
            root_size=_number(config.get("root_ebs_size"), DEFAULT_ROOT_EBS_SIZE, "root_ebs_size"),
            data_type=config.get("ebs_type") or DEFAULT_EBS_TYPE,
            data_size=_number(config.get("ebs_size"), MIN_EBS_SIZE_GB, "ebs_size"),
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
