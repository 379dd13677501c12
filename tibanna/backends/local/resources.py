"""What a local job reserves of this machine (vCPUs and memory), and the ledger of what is reserved."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import psutil

# GiB of memory per vCPU by instance family letter (the general pattern of EC2's catalogue).
_MEM_PER_VCPU = {"c": 2.0, "m": 4.0, "r": 8.0, "x": 16.0, "z": 8.0, "i": 8.0, "d": 8.0, "g": 4.0, "p": 8.0}
_SIZE_VCPUS = {"nano": 2, "micro": 2, "small": 2, "medium": 2, "large": 2, "xlarge": 4}
_T_MEM = {"nano": 0.5, "micro": 1.0, "small": 2.0, "medium": 4.0, "large": 8.0, "xlarge": 16.0}
_TYPE = re.compile(r"^(?P<family>[a-z]+)(?P<gen>\d+)[a-z-]*\.(?P<mult>\d*)(?P<size>nano|micro|small|medium|large|xlarge|metal)$")


def instance_shape(instance_type: str) -> tuple[float, float] | None:
    """(vCPUs, GiB) of an EC2 instance type name, derived from its family and size; None if unknown."""
    match = _TYPE.match(instance_type or "")
    if not match or match["size"] == "metal":
        return None
    family, size, mult = match["family"], match["size"], int(match["mult"] or 1)
    vcpus = _SIZE_VCPUS[size] * (mult if size == "xlarge" else 1)
    if family == "t":
        return float(vcpus), _T_MEM[size] * (mult if size == "xlarge" else 1)
    if size in ("nano", "micro", "small", "medium"):
        return float(_SIZE_VCPUS[size] // 2 or 1), _MEM_PER_VCPU.get(family[0], 4.0)
    return float(vcpus), vcpus * _MEM_PER_VCPU.get(family[0], 4.0)


def machine_capacity() -> tuple[float, float]:
    """(vCPUs, GiB) this machine offers to jobs."""
    return float(os.cpu_count() or 1), psutil.virtual_memory().total / 2**30


def reservation(config: dict, capacity: tuple[float, float] | None = None) -> tuple[float, float]:
    """A job's (vCPUs, GiB): config cpu/mem, else its instance type's, else 1 vCPU; capped to the machine."""
    cpus, mem = capacity or machine_capacity()
    want_cpu = float(config.get("cpu") or 0)
    want_mem = float(config.get("mem") or 0)
    if not want_cpu and not want_mem:
        types = config.get("instance_type") or ""
        first = types[0] if isinstance(types, list) and types else types
        shape = instance_shape(first) if isinstance(first, str) else None
        if shape:
            want_cpu, want_mem = shape
    return min(want_cpu or 1.0, cpus), min(want_mem, mem)


@dataclass
class Reservations:
    """What the running jobs hold of the machine. The scheduler asks `fits` before it `reserve`s,
    and `release`s when a job ends; a job may always start on an idle machine, so one job larger
    than the machine still runs, alone."""

    capacity: tuple[float, float]
    held: dict[str, tuple[float, float, str]] = field(default_factory=dict)  # jobid -> (vCPUs, GiB, sfn)

    def used(self) -> tuple[float, float]:
        return sum(h[0] for h in self.held.values()), sum(h[1] for h in self.held.values())

    def fits(self, cpu: float, mem: float) -> bool:
        """Whether a job of this size may start now."""
        used_cpu, used_mem = self.used()
        return not self.held or (used_cpu + cpu <= self.capacity[0] + 1e-9
                                 and used_mem + mem <= self.capacity[1] + 1e-9)

    def running(self, sfn: str) -> int:
        """How many of a step function's jobs hold a reservation."""
        return sum(1 for h in self.held.values() if h[2] == sfn)

    def reserve(self, jobid: str, cpu: float, mem: float, sfn: str, adopted: bool = False) -> None:
        """Hold a job's share; an adopted job (already running) is held whether it fits or not."""
        assert jobid not in self.held, f"{jobid} is reserved twice"
        assert adopted or self.fits(cpu, mem), f"{jobid} does not fit"
        self.held[jobid] = (cpu, mem, sfn)

    def release(self, jobid: str) -> None:
        assert jobid in self.held, f"{jobid} holds no reservation"
        del self.held[jobid]
