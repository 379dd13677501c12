"""The local backend's prices: a table in `TIBANNA_HOME/prices.json`, zero by default.

The formula is tibanna.cost's; this is the `PriceSource` it reads on local (and for "what if"
estimates from a table).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tibanna.cost import PriceSource
from tibanna.exceptions import PricingRetrievalException

log = logging.getLogger(__name__)

PRICES_FILE = "prices.json"
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
