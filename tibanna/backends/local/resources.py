"""What a local job reserves of this machine: vCPUs and memory (DESIGN 5)."""
from __future__ import annotations

import os
import re

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
