"""Cheap measurements of a job's process tree: resource samples, top rows, folder sizes and devices.

One pass over the tree per tick (psutil's oneshot reads) feeds both the samples.tsv row (a
`tibanna.samples.Sample`) and the top snapshot. CPU is counted with the children's times of the
live processes, so the work of short-lived commands that a live shell has reaped is not lost
between ticks. A job's containers
are not in the tree (their processes are the runtime's): their CPU, memory and reads come from
the job's cgroup (cgroups.py), and their processes are listed in the top rows too.
"""
from __future__ import annotations

import math
import os
import pwd
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from tibanna.agent.cgroups import Cgroup
from tibanna.samples import Sample

MiB = 1024 * 1024
GiB = 1024 * MiB


@dataclass(frozen=True)
class ProcessRow:
    """What top shows for one process."""

    pid: int
    user: str
    nice: int
    virt_kib: int
    res_kib: int
    shr_kib: int
    state: str
    cpu_percent: float
    mem_percent: float
    cpu_seconds: float
    command: str


_STATE_LETTERS = {psutil.STATUS_RUNNING: "R", psutil.STATUS_SLEEPING: "S", psutil.STATUS_DISK_SLEEP: "D",
                  psutil.STATUS_STOPPED: "T", psutil.STATUS_TRACING_STOP: "t", psutil.STATUS_ZOMBIE: "Z",
                  psutil.STATUS_DEAD: "X", psutil.STATUS_IDLE: "I"}
_CONTROL_TO_SPACE = {code: " " for code in (*range(32), 127)}


def disk_bytes(path: Path) -> int:
    """Allocated bytes of `path` and everything under it, as `du -s` counts them (symlinks not followed)."""
    try:
        total = path.lstat().st_blocks * 512
    except OSError:
        return 0
    stack = [str(path)]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    total += entry.stat(follow_symlinks=False).st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                except OSError:
                    continue
    return total


def device_of(path: Path) -> str:
    """The device holding `path` (upstream records the data volume, e.g. /dev/nvme1n1)."""
    resolved = str(path.resolve())
    best = ("", "")
    for part in psutil.disk_partitions(all=True):
        mount = part.mountpoint.rstrip("/") or "/"
        inside = resolved == mount or resolved.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) > len(best[0]):
            best = (mount, part.device)
    return best[1]


def human_size(n: int) -> str:
    """A size as `du -h` prints it: '0', '512', '4.0K', '12K', '1.5M' (rounded up)."""
    if n < 1024:
        return str(n)
    value = float(n)
    for unit in "KMGTPE":
        value /= 1024
        if value < 10:
            tenths = math.ceil(value * 10) / 10
            if tenths < 10:
                return f"{tenths:.1f}{unit}"
        whole = math.ceil(value)
        if whole < 1024:
            return f"{whole}{unit}"
    return f"{math.ceil(value)}E"


class DiskMeter:
    """Bytes under a folder; re-walked only after 50x the last walk's duration, so big trees cost ~2%."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._value = 0
        self._next = 0.0

    def used(self) -> int:
        started = time.monotonic()
        if started >= self._next:
            self._value = disk_bytes(self.path)
            self._next = started + 50 * (time.monotonic() - started)
        return self._value


class TreeSampler:
    """Samples the tree rooted at `root_pid` (None: no process, only the machine and the folder)
    and the processes of `cgroup`, the job's containers, if any."""

    def __init__(self, root_pid: int | None, data1: Path, disk: DiskMeter, cgroup: Cgroup | None = None) -> None:
        self.data1, self.disk, self.cgroup = data1, disk, cgroup
        self._root = _process(root_pid)
        self._ncpu = psutil.cpu_count() or 1
        self._last_mono = time.monotonic()
        self._last_tree_cpu = self._last_container_cpu = 0.0
        self._own_cpu: dict[tuple[int, float], float] = {}
        self._reads = _Reads()  # the tree's processes
        self._container_reads = _Reads()  # the containers' processes, where the cgroup counts no reads
        self._users: dict[int, str] = {}
        self.memory = psutil.virtual_memory()

    def take(self) -> tuple[Sample, list[ProcessRow]]:
        """A sample of the tree and the machine, and the tree's top rows (highest %CPU first)."""
        mono, now = time.monotonic(), time.time()
        elapsed = max(mono - self._last_mono, 1e-6)
        self.memory = psutil.virtual_memory()
        rows: list[ProcessRow] = []
        tree_cpu, rss = 0.0, 0
        own_cpu: dict[tuple[int, float], float] = {}
        reads: dict[tuple[int, float], int] = {}
        container_reads: dict[tuple[int, float], int] = {}
        tree = self._tree()
        in_tree = {proc.pid for proc in tree}
        containers = [p for p in map(_process, self.cgroup.pids() if self.cgroup else []) if p and p.pid not in in_tree]
        for proc in [*tree, *containers]:
            in_container = proc.pid not in in_tree
            try:
                with proc.oneshot():
                    ident = (proc.pid, proc.create_time())
                    times = proc.cpu_times()
                    own = times.user + times.system
                    mem = proc.memory_info()
                    if in_container:  # counted by the cgroup, below
                        container_reads[ident] = _read_bytes(proc)
                    else:
                        tree_cpu += own + times.children_user + times.children_system
                        rss += mem.rss
                        reads[ident] = _read_bytes(proc)
                    before = self._own_cpu.get(ident)
                    # A process new since the last tick used its time within that tick (its
                    # create_time can be a second off: the kernel's boot time is whole seconds).
                    cpu_pct = ((own - before) / elapsed if before is not None
                               else own / min(max(now - ident[1], 1e-3), elapsed)) * 100
                    own_cpu[ident] = own
                    rows.append(ProcessRow(
                        pid=proc.pid, user=self._user(proc), nice=proc.nice(), virt_kib=mem.vms // 1024,
                        res_kib=mem.rss // 1024, shr_kib=getattr(mem, "shared", 0) // 1024,
                        state=_STATE_LETTERS.get(proc.status(), "?"), cpu_percent=max(cpu_pct, 0.0),
                        mem_percent=100 * mem.rss / self.memory.total, cpu_seconds=own,
                        command=_command_line(proc)))
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        read_bytes = self._reads.update(reads)
        container_read_bytes = self._container_reads.update(container_reads)
        busy = max(tree_cpu - self._last_tree_cpu, 0.0)  # the tree's total falls when its processes end
        if self.cgroup is not None:  # the cgroup's total only grows, also after its containers ended
            container_cpu = self.cgroup.cpu_seconds()
            busy += max(container_cpu - self._last_container_cpu, 0.0)
            self._last_container_cpu = container_cpu
            rss += self.cgroup.memory_bytes()
            read_bytes += max(self.cgroup.read_bytes(), container_read_bytes)
        self._own_cpu = own_cpu
        cpu_percent = busy / (elapsed * self._ncpu) * 100
        self._last_tree_cpu, self._last_mono = tree_cpu, mono
        sample = Sample(time=now, cpu_percent=cpu_percent, mem_used_bytes=rss,
                        mem_available_bytes=self.memory.available, disk_used_bytes=self.disk.used(),
                        disk_total_bytes=shutil.disk_usage(self.data1).total,
                        read_bytes=read_bytes)
        rows.sort(key=lambda row: (-row.cpu_percent, row.pid))
        return sample, rows

    def _tree(self) -> list[psutil.Process]:
        if self._root is None:
            return []
        try:
            return [self._root, *self._root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def _user(self, proc: psutil.Process) -> str:
        uid = proc.uids().real
        if uid not in self._users:
            try:
                self._users[uid] = pwd.getpwuid(uid).pw_name
            except KeyError:
                self._users[uid] = str(uid)
        return self._users[uid]


class _Reads:
    """Bytes read by a changing set of processes: those of ended ones are kept."""

    def __init__(self) -> None:
        self._live: dict[tuple[int, float], int] = {}
        self._retired = 0

    def update(self, live: dict[tuple[int, float], int]) -> int:
        """The total with `live` the processes seen now ((pid, create_time) -> read bytes)."""
        self._retired += sum(v for k, v in self._live.items() if k not in live)
        self._live = live
        return self._retired + sum(live.values())


class SampleSummary:
    """Running maxima of the samples: the postrun JSON's `Metrics` (upstream's TibannaResource names)."""

    def __init__(self) -> None:
        self.count = 0
        self.max_cpu = self.max_mem = self.max_disk = self.max_disk_percent = self.max_read_delta = 0.0
        self.min_available: float | None = None
        self._last_read: int | None = None

    def add(self, sample: Sample) -> None:
        self.count += 1
        self.max_cpu = max(self.max_cpu, sample.cpu_percent)
        self.max_mem = max(self.max_mem, sample.mem_used_bytes)
        self.max_disk = max(self.max_disk, sample.disk_used_bytes)
        if sample.disk_total_bytes:
            self.max_disk_percent = max(self.max_disk_percent, 100 * sample.disk_used_bytes / sample.disk_total_bytes)
        available = sample.mem_available_bytes
        self.min_available = available if self.min_available is None else min(self.min_available, available)
        if self._last_read is not None:
            self.max_read_delta = max(self.max_read_delta, sample.read_bytes - self._last_read)
        self._last_read = sample.read_bytes

    def as_metrics(self, total_mem_bytes: int) -> dict:
        return {
            "max_mem_used_MB": round(self.max_mem / MiB, 3),
            "min_mem_available_MB": round((self.min_available or 0) / MiB, 3),
            "total_mem_MB": round(total_mem_bytes / MiB, 3),
            "max_mem_utilization_percent": round(100 * self.max_mem / total_mem_bytes, 3),
            "max_cpu_utilization_percent": round(self.max_cpu, 3),
            "max_disk_space_utilization_percent": round(self.max_disk_percent, 3),
            "max_disk_space_used_GB": round(self.max_disk / GiB, 6),
            "max_ebs_read_bytes": int(self.max_read_delta),
        }


def _process(pid: int | None) -> psutil.Process | None:
    if pid is None:
        return None
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


def _read_bytes(proc: psutil.Process) -> int:
    try:
        return proc.io_counters().read_bytes
    except (psutil.AccessDenied, AttributeError, NotImplementedError):
        return 0


def _command_line(proc: psutil.Process) -> str:
    """The command line on one line: a newline in an argument (`python -c` code) would split its top row."""
    try:
        words = proc.cmdline()
    except (psutil.ZombieProcess, psutil.AccessDenied):
        words = []
    return " ".join(words).translate(_CONTROL_TO_SPACE) if words else f"[{proc.name()}]"
