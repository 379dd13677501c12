"""Top snapshots in upstream's `.top` format: `Timestamp: %F-%H:%M:%S`, then `top -b -n 1 -c` output.

The summary lines describe the machine (uptime, load, CPU, memory, swap); the Tasks line and the
rows describe the job's process tree. Clock times are UTC, as on a worker instance.
"""
from __future__ import annotations

import datetime as dt
import os
from typing import Any

import psutil

from tibanna.agent.sampling import MiB, ProcessRow

HEADER = "    PID USER      PR  NI    VIRT    RES    SHR S  %CPU  %MEM     TIME+ COMMAND"
_BOOT_TIME = psutil.boot_time()


def prime() -> None:
    """Start the machine's CPU accounting now, so that the first snapshot's %Cpu(s) covers the job."""
    psutil.cpu_times_percent(interval=None)


def snapshot(when: dt.datetime, rows: list[ProcessRow], memory: Any) -> str:
    """One snapshot, ending with a blank line; `memory` is psutil.virtual_memory()."""
    lines = [f"Timestamp: {when:%Y-%m-%d-%H:%M:%S}", _top_line(when), _tasks_line(rows), _cpu_line(),
             *_memory_lines(memory), "", HEADER, *(_row(row) for row in rows), ""]
    return "\n".join(lines) + "\n"


def _top_line(when: dt.datetime) -> str:
    up = max(int(when.timestamp() - _BOOT_TIME), 0)
    days, rest = divmod(up, 86400)
    hours, minutes = rest // 3600, rest % 3600 // 60
    uptime = f"{days} day{'s' if days != 1 else ''}, " if days else ""
    uptime += f"{hours:2d}:{minutes:02d}" if hours else f"{minutes} min"
    try:
        users = len(psutil.users())
    except OSError:
        users = 0
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return (f"top - {when:%H:%M:%S} up {uptime}, {users:2d} user{'s' if users != 1 else ''},  "
            f"load average: {load}")


def _tasks_line(rows: list[ProcessRow]) -> str:
    states = [row.state for row in rows]
    running = states.count("R")
    stopped = states.count("T") + states.count("t")
    zombie = states.count("Z")
    sleeping = len(states) - running - stopped - zombie
    return (f"Tasks: {len(states):3d} total, {running:3d} running, {sleeping:3d} sleeping, "
            f"{stopped:3d} stopped, {zombie:3d} zombie")


def _cpu_line() -> str:
    cpu = psutil.cpu_times_percent(interval=None)
    fields = (("us", cpu.user), ("sy", cpu.system), ("ni", cpu.nice), ("id", cpu.idle),
              ("wa", getattr(cpu, "iowait", 0.0)), ("hi", getattr(cpu, "irq", 0.0)),
              ("si", getattr(cpu, "softirq", 0.0)), ("st", getattr(cpu, "steal", 0.0)))
    return "%Cpu(s):" + ",".join(f"{value:5.1f} {name}" for name, value in fields)


def _memory_lines(memory: Any) -> list[str]:
    swap = psutil.swap_memory()
    cache = getattr(memory, "buffers", 0) + getattr(memory, "cached", 0)
    return [
        f"MiB Mem :{memory.total / MiB:9.1f} total,{memory.free / MiB:9.1f} free,"
        f"{memory.used / MiB:9.1f} used,{cache / MiB:9.1f} buff/cache",
        f"MiB Swap:{swap.total / MiB:9.1f} total,{swap.free / MiB:9.1f} free,"
        f"{swap.used / MiB:9.1f} used.{memory.available / MiB:9.1f} avail Mem",
    ]


def _row(row: ProcessRow) -> str:
    user = row.user if len(row.user) <= 8 else row.user[:7] + "+"
    minutes, seconds = divmod(row.cpu_seconds, 60)
    return (f"{row.pid:7d} {user:<8} {20 + row.nice:3d} {row.nice:3d} {row.virt_kib:7d} {row.res_kib:6d} "
            f"{row.shr_kib:6d} {row.state} {row.cpu_percent:5.1f} {row.mem_percent:5.1f} "
            f"{int(minutes):3d}:{seconds:05.2f} {row.command}")
