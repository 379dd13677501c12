"""Instance types from the region's live catalogue: shapes, architectures, and the cheapest fit.

`describe_instance_types` gives every type the region offers (GPU and Arm included); prices come
from the Pricing API (on-demand) or the spot price history (spot). When prices cannot be had,
the smallest fitting types are used, smallest first, and the log says so.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable

from botocore.exceptions import BotoCoreError, ClientError

from tibanna.backends.aws.pricing import price_source, spot_prices
from tibanna.exceptions import EC2LaunchException, PricingRetrievalException
from tibanna.storage.s3 import Clients

log = logging.getLogger(__name__)

CHEAPEST = 10  # upstream's Benchmark returns the 10 cheapest fitting types
_PRICED_CANDIDATES = 30


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: int
    mem_gib: float
    arch: str  # 'x86' or 'Arm', the keys of config.ami_per_region
    ebs_optimized: str  # EbsOptimizedSupport: unsupported | supported | default
    spot: bool
    gpus: int


def _shape(entry: dict) -> InstanceType:
    archs = entry.get("ProcessorInfo", {}).get("SupportedArchitectures", [])
    return InstanceType(name=entry["InstanceType"], vcpus=int(entry["VCpuInfo"]["DefaultVCpus"]),
                        mem_gib=entry["MemoryInfo"]["SizeInMiB"] / 1024,
                        arch="Arm" if "arm64" in archs else "x86",
                        ebs_optimized=entry.get("EbsInfo", {}).get("EbsOptimizedSupport", "unsupported"),
                        spot="spot" in entry.get("SupportedUsageClasses", []),
                        gpus=sum(g.get("Count", 0) for g in entry.get("GpuInfo", {}).get("Gpus", [])))


class Catalogue:
    """One region's instance types, read once per process (a warm Lambda keeps it)."""

    _cache: dict[str, dict[str, InstanceType]] = {}

    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    def types(self, names: Iterable[str] | None = None) -> dict[str, InstanceType]:
        """Shapes by type name: the named ones (one call per 100), or the whole catalogue (cached)."""
        ec2 = self.clients("ec2")
        if names is not None:
            wanted = sorted(set(names))
            found: dict[str, InstanceType] = {}
            for i in range(0, len(wanted), 100):
                try:
                    response = ec2.describe_instance_types(InstanceTypes=wanted[i:i + 100])
                except ClientError as err:
                    raise EC2LaunchException(f"config.instance_type: {err.response['Error']['Message']}") from None
                found.update((e["InstanceType"], _shape(e)) for e in response["InstanceTypes"])
            return found
        region = self.clients.region
        if region not in self._cache:
            everything = {}
            for page in ec2.get_paginator("describe_instance_types").paginate():
                everything.update((e["InstanceType"], _shape(e)) for e in page["InstanceTypes"] if not e["BareMetal"])
            self._cache[region] = everything
        return self._cache[region]

    def cheapest(self, cpu: float, mem_gib: float, spot: bool, ebs_optimized: bool = False) -> list[str]:
        """The cheapest types with at least `cpu` vCPUs and `mem_gib` GiB (up to 10, cheapest first)."""
        fitting = sorted((t for t in self.types().values()
                          if t.vcpus >= cpu and t.mem_gib >= mem_gib and (t.spot or not spot)
                          and (not ebs_optimized or t.ebs_optimized != "unsupported")),
                         key=lambda t: (t.vcpus, t.mem_gib, t.gpus, t.name))
        if not fitting:
            raise EC2LaunchException("There are no EC2 instances that match the provided configuration.")
        candidates = [t.name for t in fitting[:_PRICED_CANDIDATES]]
        try:
            prices = self._spot_prices(candidates) if spot else self._on_demand_prices(candidates)
        except (PricingRetrievalException, ClientError, BotoCoreError) as err:
            log.warning("no prices (%s): using the smallest fitting instance types", err)
            return candidates[:CHEAPEST]
        return sorted(prices, key=lambda name: (prices[name], candidates.index(name)))[:CHEAPEST]

    def _spot_prices(self, candidates: list[str]) -> dict[str, float]:
        """The cheapest zone's current spot price per type."""
        prices: dict[str, float] = {}
        for (name, _zone), price in spot_prices(self.clients("ec2"), candidates).items():
            prices[name] = min(price, prices.get(name, price))
        return prices

    def _on_demand_prices(self, candidates: list[str]) -> dict[str, float]:
        source = price_source(self.clients)
        return {name: source.on_demand(name, self.clients.region) for name in candidates}

