"""A job's containers measured from their cgroup: CPU, memory, disk reads and processes.

A container's processes are children of the runtime's shim, not of the `docker run` client the
agent starts, so the agent's process tree misses them. Every container of a job is started
under one cgroup parent named after the job; its counters are hierarchical and outlive each
container, so totals stay readable after the last one exits (the parent is removed afterwards).

Both layouts are read: cgroup v1 (a folder per controller, e.g. /sys/fs/cgroup/cpuacct/<parent>)
and v2 (one folder, e.g. /sys/fs/cgroup/<parent> or .../tibanna.slice/tibanna-<job>.slice under
the systemd driver) with cpu.stat, memory.current, memory.peak and io.stat.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

MOUNTS = Path("/proc/self/mounts")


def cgroup_mounts(mounts: Path = MOUNTS) -> tuple[dict[str, Path], Path | None]:
    """The v1 hierarchies (each controller, and each of their mount options, -> folder) and the v2
    mount, from /proc/self/mounts."""
    v1: dict[str, Path] = {}
    v2: Path | None = None
    try:
        lines = mounts.read_text().splitlines()
    except OSError:
        return v1, v2
    for line in lines:
        fields = line.split()
        if len(fields) < 4:
            continue
        point = Path(fields[1].replace("\\040", " "))
        if fields[2] == "cgroup2":
            v2 = point
        elif fields[2] == "cgroup":
            for option in fields[3].split(","):  # the hierarchy's controllers among its mount options
                v1.setdefault(option, point)
    return v1, v2


def parent_path(parent: str, driver: str) -> str:
    """The folder (relative to a hierarchy's root) of a cgroup parent as the runtime names it.

    cgroupfs: `/tibanna-<job>` is that path. systemd: a slice `a-b.slice` lives in
    `a.slice/a-b.slice`, each dash opening one more level.
    """
    if driver != "systemd":
        return parent.strip("/")
    stem = parent.removesuffix(".slice")
    parts = stem.split("-")
    return "/".join("-".join(parts[:i]) + ".slice" for i in range(1, len(parts) + 1))


@dataclass(frozen=True)
class Cgroup:
    """One cgroup, v1 (`cpu`, `memory`, `io` are the controllers' folders) or v2 (all one folder)."""

    version: int
    cpu: Path
    memory: Path
    io: Path

    @classmethod
    def of_parent(cls, parent: str, driver: str, version: int, mounts: Path = MOUNTS) -> Cgroup | None:
        """The job's cgroup parent on this machine, or None where its hierarchy is not mounted."""
        v1, v2 = cgroup_mounts(mounts)
        rel = parent_path(parent, driver)
        if version == 2:
            return None if v2 is None else cls(2, v2 / rel, v2 / rel, v2 / rel)
        if "cpuacct" not in v1 or "memory" not in v1:
            return None
        return cls(1, v1["cpuacct"] / rel, v1["memory"] / rel, v1.get("blkio", v1["cpuacct"]) / rel)

    def cpu_seconds(self) -> float:
        """CPU time used by everything that ran in it (0 before the first container starts)."""
        if self.version == 1:
            return _int(self.cpu / "cpuacct.usage") / 1e9
        return _keyed(self.cpu / "cpu.stat").get("usage_usec", 0) / 1e6

    def memory_bytes(self) -> int:
        """Memory in use without the inactive page cache (what `docker stats` shows)."""
        if self.version == 1:
            usage = _int(self.memory / "memory.usage_in_bytes")
            inactive = _keyed(self.memory / "memory.stat").get("total_inactive_file", 0)
        else:
            usage = _int(self.memory / "memory.current")
            inactive = _keyed(self.memory / "memory.stat").get("inactive_file", 0)
        return max(usage - inactive, 0)

    def peak_bytes(self) -> int:
        """The highest memory use so far, page cache included (v1 max_usage_in_bytes, v2 memory.peak)."""
        return _int(self.memory / ("memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"))

    def read_bytes(self) -> int:
        """Bytes read from block devices (v1 counts them only on throttled devices, a kernel limit)."""
        if self.version == 2:
            total = 0
            for line in _lines(self.io / "io.stat"):
                for field in line.split()[1:]:
                    key, _, value = field.partition("=")
                    if key == "rbytes" and value.isdigit():
                        total += int(value)
            return total
        best = 0
        for name in ("blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_service_bytes",
                     "blkio.io_service_bytes_recursive"):
            total = sum(int(f[2]) for f in (line.split() for line in _lines(self.io / name))
                        if len(f) == 3 and f[1] == "Read" and f[2].isdigit())
            best = max(best, total)
        return best

    def pids(self) -> list[int]:
        """Every process in it or in any cgroup below it."""
        found: list[int] = []
        for folder, _dirs, _files in os.walk(self.cpu):
            found += [int(line) for line in _lines(Path(folder) / "cgroup.procs") if line.strip().isdigit()]
        return found

    def exists(self) -> bool:
        return self.cpu.is_dir()


def remove_parent(parent: str, driver: str, mounts: Path = MOUNTS) -> list[Path]:
    """rmdir the parent (cgroupfs driver) in every hierarchy that has it; the folders left that are
    still busy (a container's cgroup not yet deleted). One this user may not remove (the daemon,
    as root, made it) is logged and left."""
    if driver == "systemd":  # systemd owns its slices and removes them
        return []
    v1, v2 = cgroup_mounts(mounts)
    rel = parent_path(parent, driver)
    left = []
    for root in {*v1.values(), *([v2] if v2 else [])}:
        folder = root / rel
        if folder.is_dir():
            try:
                folder.rmdir()
            except PermissionError:
                logger.warning("cannot remove cgroup %s (made by the container runtime as root); "
                               "it is empty and may be removed by root", folder)
            except OSError:
                left.append(folder)
    return left


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except OSError:
        return []


def _int(path: Path) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _keyed(path: Path) -> dict[str, int]:
    """A `key value` per line file (cpu.stat, memory.stat) as a dict of ints."""
    out = {}
    for line in _lines(path):
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            out[key] = int(value)
    return out
