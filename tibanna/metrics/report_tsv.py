"""metrics_report.tsv: the job's summary in upstream's rows, and the edits that put a cost in it.

`plot_metrics` writes it (`metrics_report_tsv`); `cost(update_tsv=True)`, `cost_estimate(update_tsv=
True)` and the cost updater edit it in place (`update_cost_tsv`, `update_cost_estimate_tsv`);
metrics.html is rendered from it (`read_report_tsv`).
"""
from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Mapping
from typing import Any

from tibanna import protocol
from tibanna.cost import ACTUAL, IMMEDIATE, NA, RETROSPECTIVE
from tibanna.storage import ObjectStore

log = logging.getLogger(__name__)

REPORT_TSV = "metrics_report.tsv"
REPORT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# summary key -> metrics_report.tsv row, in upstream's order
_REPORT_ROWS = (
    ("max_mem_used_MB", "Maximum_Memory_Used_Mb"),
    ("min_mem_available_MB", "Minimum_Memory_Available_Mb"),
    ("max_disk_space_used_GB", "Maximum_Disk_Used_Gb"),
    ("max_mem_utilization_percent", "Maximum_Memory_Utilization"),
    ("max_cpu_utilization_percent", "Maximum_CPU_Utilization"),
    ("max_disk_space_utilization_percent", "Maximum_Disk_Utilization"),
)
# How good a figure each Estimated_Cost_Type is: an estimate never replaces a better one.
_RANK = {NA: 0, RETROSPECTIVE: 1, IMMEDIATE: 2, ACTUAL: 3}


def metrics_report_tsv(summary: Mapping[str, Any], *, instance_type: str, start: _dt.datetime,
                       end: _dt.datetime, cost: str | float | None = None) -> str:
    """metrics_report.tsv in upstream's format; `Cost` is added when known."""
    rows = [("Metric", "Value")]
    rows += [(label, str(summary.get(key, ""))) for key, label in _REPORT_ROWS]
    rows += [
        ("Start_Time", start.strftime(REPORT_TIME_FORMAT)),
        ("End_Time", end.strftime(REPORT_TIME_FORMAT)),
        ("Instance_Type", instance_type),
        ("Estimated_Cost", str(summary.get("cost_estimate", 0.0))),
        ("Estimated_Cost_Type", str(summary.get("cost_estimate_type", NA))),
    ]
    if cost not in (None, ""):
        rows.append(("Cost", str(cost)))
    return "".join(f"{k}\t{v}\n" for k, v in rows)


def read_report_tsv(text: str | None) -> dict[str, str]:
    """metrics_report.tsv as {row name: value} (the header row left out)."""
    values: dict[str, str] = {}
    for line in (text or "").splitlines():
        name, _, value = line.partition("\t")
        if name and name != "Metric":
            values.setdefault(name, value)
    return values


def stored_estimate(report: Mapping[str, str]) -> tuple[float, str]:
    """`(Estimated_Cost, Estimated_Cost_Type)` of a read report; `(0.0, 'NA')` where missing."""
    return float(report.get("Estimated_Cost") or 0), report.get("Estimated_Cost_Type") or NA


# Cost edits ------------------------------------------------------------------------------------
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


def update_cost_estimate_tsv(store: ObjectStore, log_bucket: str, jobid: str,
                             estimate: float, estimate_type: str) -> bool:
    """Write an estimate into the job's metrics_report.tsv; False when there is none or it holds
    a more accurate figure."""
    key = protocol.metrics_key(jobid, REPORT_TSV)
    report = store.get_text(log_bucket, key)
    updated = None if report is None else with_cost_estimate(report, estimate, estimate_type)
    if updated is not None:
        store.put_text(log_bucket, key, updated)
    return updated is not None


def update_cost_tsv(store: ObjectStore, log_bucket: str, jobid: str, cost: float) -> bool:
    """Write the actual cost into the job's metrics_report.tsv; False when there is none."""
    key = protocol.metrics_key(jobid, REPORT_TSV)
    report = store.get_text(log_bucket, key)
    if report is not None:
        store.put_text(log_bucket, key, with_cost(report, cost))
    return report is not None
