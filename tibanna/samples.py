"""`<jobid>.metrics/samples.tsv`: the agent's resource samples, one row per tick.

The agent writes it (agent/monitor.py), the metrics read it (plots, metrics.tsv) and so does
`check_task_awsem` (idleness). Its columns are found by the header's names, so a reader copes
with columns added later; `-`, an empty field or `nan` mean "no value".
"""
from __future__ import annotations

import logging
import math
from dataclasses import astuple, dataclass

log = logging.getLogger(__name__)

SAMPLE_COLUMNS = ("time", "cpu_percent", "mem_used_bytes", "mem_available_bytes",
                  "disk_used_bytes", "disk_total_bytes", "read_bytes")
SAMPLES_HEADER = "\t".join(SAMPLE_COLUMNS) + "\n"
NO_VALUE = "-"


@dataclass(frozen=True)
class Sample:
    """One row: a moment of the job's machine (None where the sampler had no value).

    `time` is epoch seconds. `cpu_percent` is the job's CPU use as a percent of all the machine's
    CPUs (100 = every CPU busy), the scale of CloudWatch's machine-wide `cpu_usage_active`;
    `mem_used_bytes` is the resident memory of the job's processes and containers;
    `read_bytes` is a counter: bytes read since the job began.
    """

    time: float
    cpu_percent: float | None = None
    mem_used_bytes: float | None = None
    mem_available_bytes: float | None = None
    disk_used_bytes: float | None = None
    disk_total_bytes: float | None = None
    read_bytes: float | None = None

    def tsv(self) -> str:
        """The row as the agent appends it: time to the millisecond, CPU to 1/100 %, the rest as given."""
        first, cpu, *rest = astuple(self)
        fields = [f"{first:.3f}", NO_VALUE if cpu is None else f"{cpu:.2f}",
                  *(NO_VALUE if value is None else str(value) for value in rest)]
        return "\t".join(fields) + "\n"


def number_or_none(text: str) -> float | None:
    """A tsv field as a number; None for `-`, empty or `nan` (the metrics tsvs share this rule)."""
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value


def read_samples_tsv(text: str | None) -> list[Sample]:
    """The samples of a samples.tsv text, in time order; a row without a time is skipped."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return []
    header = lines[0].split("\t")
    if "time" not in header:
        raise ValueError(f"samples.tsv has no 'time' column: {lines[0]!r}")
    wanted = [(i, name) for i, name in enumerate(header) if name in SAMPLE_COLUMNS]
    samples = []
    for line in lines[1:]:
        fields = line.split("\t")
        values = {name: number_or_none(fields[i]) if i < len(fields) else None for i, name in wanted}
        if values["time"] is None:
            log.debug("skipping a sample without a time: %r", line)
            continue
        samples.append(Sample(**values))
    samples.sort(key=lambda s: s.time)
    return samples
