"""Per-process CPU and memory from a job's `<jobid>.top`: upstream's top_cpu.tsv and top_mem.tsv.

`<jobid>.top` holds cumulative `top -b -n 1 -c` snapshots, each preceded by a line
`Timestamp: YYYY-MM-DD-HH:MM:SS`. The tables have one row per minute since the first snapshot
(`interval`, 1-based, minutes without a snapshot zero-filled) and one double-quoted column per
command, summing the command's processes.

Upstream's agent takes one snapshot a minute; ours may take several a second, so the snapshots
of a row (a minute in the tsvs; as little as a second in the report's charts) are combined: %CPU
by the mean (CPU is a rate: the mean is the CPU time used in that row, and means of different
processes add up to the machine's total, so the stacked chart stays honest), %MEM by the maximum
(memory is a level whose peak is what decides the machine size, and a mean would hide the spike
that got a job killed). A snapshot belongs to the row nearest to it, so one-a-minute snapshots
with some jitter still land one per row.
"""
from __future__ import annotations

import datetime as _dt
import logging
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

TIMESTAMP_FORMAT = "%Y-%m-%d-%H:%M:%S"
MAX_COMMANDS = 16
ALL_COMMANDS = "all_commands"
INTERVAL_COLUMN = "interval"

# Programs that are the machinery around a job, not the job (upstream's list, generalised to any
# path, plus our own agent and local supervisor).
_EXCLUDED_PROGRAMS = frozenset({
    "top", "cron", "crond", "mount-s3", "goofys", "goofys-latest", "cwltool", "awsf3",
    "unattended-upgrade",
})
_EXCLUDED_PROGRAM_PREFIXES = ("docker", "containerd")
_EXCLUDED_MODULES = ("tibanna.agent", "tibanna.backends", "cwltool", "awsf3")
_PYTHON = re.compile(r"^python[0-9.]*$")
_PYTHON_OPTIONS_WITH_VALUE = frozenset({"-X", "-W", "-Q"})


@dataclass(frozen=True)
class Process:
    """One row of a top snapshot."""

    cpu: float
    mem: float
    command: str


@dataclass(frozen=True)
class Snapshot:
    """One `top` run: when it was taken (naive UTC) and the job's processes it saw."""

    time: _dt.datetime
    processes: tuple[Process, ...]


def _program_and_args(words: list[str]) -> tuple[str, list[str]] | None:
    """The program a command line runs and its arguments, looking through a Python interpreter.

    None means inline Python (`python -c ...`), which is never machinery.
    """
    program, args = os.path.basename(words[0]), words[1:]
    if not _PYTHON.match(program):
        return program, args
    skip = False
    for i, word in enumerate(args):
        if skip:
            skip = False
        elif word == "-m":
            module = args[i + 1] if i + 1 < len(args) else ""
            return f"-m {module}", args[i + 2:]
        elif word == "-c":
            return None
        elif word in _PYTHON_OPTIONS_WITH_VALUE:
            skip = True
        elif not word.startswith("-"):
            return os.path.basename(word), args[i + 1:]
    return program, []


def is_excluded(command: str) -> bool:
    """Whether a command is Tibanna's or the system's own work rather than the job's.

    Excluded: top, docker*, containerd*, cron, mount-s3, cwltool, awsf3, `aws s3`, cromwell jars,
    kernel threads (`[kworker/0:1]`), and `python -m tibanna.agent` / the local supervisor.
    """
    words = command.split()
    if not words:
        return True
    if words[0].startswith("[") and words[0].endswith("]"):
        return True
    found = _program_and_args(words)
    if found is None:
        return False
    program, args = found
    if program.startswith("-m "):
        module = program[3:]
        return any(module == m or module.startswith(m + ".") for m in _EXCLUDED_MODULES)
    if program == "java" and "-jar" in args:
        jar = args[args.index("-jar") + 1] if args.index("-jar") + 1 < len(args) else ""
        name = os.path.basename(jar)
        return name.startswith("cromwell") and name.endswith(".jar")
    if program == "aws":
        return bool(args) and args[0] == "s3"
    return program in _EXCLUDED_PROGRAMS or program.startswith(_EXCLUDED_PROGRAM_PREFIXES)


def _number(text: str) -> float:
    return float(text.replace(",", "."))


def parse_top(text: str) -> list[Snapshot]:
    """Parse `<jobid>.top` into snapshots of the job's processes, in time order.

    Excluded commands are dropped, and so are rows at 0 %CPU and 0 %MEM (they add nothing to
    either table; dropping them keeps idle system processes from crowding out the job's, as
    upstream's `top -i` did). Rows before any `Timestamp:` line cannot be placed and are skipped.
    """
    snapshots: list[Snapshot] = []
    when: _dt.datetime | None = None
    rows: list[Process] = []
    columns: tuple[int, int, int] | None = None  # indices of %CPU, %MEM, COMMAND in a row

    def close() -> None:
        if when is not None:
            snapshots.append(Snapshot(when, tuple(rows)))

    for line in text.splitlines():
        if line.startswith("Timestamp:"):
            close()
            rows, columns = [], None
            try:
                when = _dt.datetime.strptime(line.split(":", 1)[1].strip(), TIMESTAMP_FORMAT)
            except ValueError:
                log.debug("skipping a snapshot with an unreadable time stamp: %r", line)
                when = None
            continue
        header = line.split()
        if header[:1] == ["PID"] and {"%CPU", "%MEM", "COMMAND"} <= set(header):
            columns = (header.index("%CPU"), header.index("%MEM"), header.index("COMMAND"))
            continue
        if not header:
            columns = None
            continue
        if columns is None or when is None:
            continue
        cpu_at, mem_at, command_at = columns
        parts = line.split(None, command_at)
        if len(parts) <= command_at:
            continue
        try:
            cpu, mem = _number(parts[cpu_at]), _number(parts[mem_at])
        except ValueError:
            log.debug("skipping an unreadable top row: %r", line)
            continue
        command = " ".join(parts[command_at].split())
        if (cpu or mem) and not is_excluded(command):
            rows.append(Process(cpu, mem, command))
    close()
    snapshots.sort(key=lambda s: s.time)
    return snapshots


def _reducers(commands: set[str]) -> Iterable[Callable[[str], str]]:
    """Ever shorter prefixes, as upstream: words (longest first, down to two), then characters
    of the first word (down to two)."""
    most_words = max(len(c.split()) for c in commands)
    for n in range(most_words - 1, 1, -1):
        yield lambda c, n=n: " ".join(c.split()[:n])
    most_chars = max(len(c.split()[0]) for c in commands)
    for n in range(most_chars - 1, 1, -1):
        yield lambda c, n=n: c.split()[0][:n]


def collapse_commands(commands: Iterable[str], limit: int = MAX_COMMANDS) -> list[str]:
    """At most `limit` columns for these commands, in alphabetical order.

    More than `limit` distinct commands collapse to the longest common word prefixes that fit,
    then to first-word character prefixes, then to `all_commands`; a prefix shared by only one
    command is extended back to that command (upstream's rules).
    """
    distinct = set(commands)
    if len(distinct) <= limit:
        return sorted(distinct)
    for reduce in _reducers(distinct):
        prefixes = {reduce(c) for c in distinct}
        if len(prefixes) <= limit:
            columns = set()
            for prefix in prefixes:
                matching = [c for c in distinct if c.startswith(prefix)]
                columns.add(matching[0] if len(matching) == 1 else prefix)
            return sorted(columns)
    return [ALL_COMMANDS]


def _column_of(command: str, columns: Sequence[str]) -> str:
    """The column a command adds to: itself, else its longest prefix among the columns."""
    if columns == [ALL_COMMANDS]:
        return ALL_COMMANDS
    if command in columns:
        return command
    return max((c for c in columns if command.startswith(c)), key=len)


@dataclass(frozen=True)
class TopTable:
    """%CPU and %MEM per command column; row i is interval i since the origin (upstream's tsvs:
    minute i since the first snapshot). `seen[i]` counts the snapshots of row i (0: a gap,
    zero-filled in the tsvs, left out of charts)."""

    commands: list[str]
    cpu: list[list[float]]
    mem: list[list[float]]
    seen: list[int] = field(default_factory=list)
    interval: float = 60.0

    def to_tsv(self, metric: str) -> str:
        """top_cpu.tsv (`metric='cpu'`) or top_mem.tsv (`'mem'`) in upstream's format."""
        rows = {"cpu": self.cpu, "mem": self.mem}[metric]
        lines = ["\t".join([INTERVAL_COLUMN] + [f'"{c}"' for c in self.commands])]
        for minute, values in enumerate(rows):
            lines.append("\t".join([str(minute + 1)] + [_format(v) for v in values]))
        return "\n".join(lines) + "\n"


def _format(value: float) -> str:
    return "0" if value == 0 else str(round(value, 2))


def top_table(snapshots: Sequence[Snapshot], max_commands: int = MAX_COMMANDS, *, interval: float = 60.0,
              origin: _dt.datetime | None = None) -> TopTable:
    """Combine snapshots into rows of `interval` seconds from `origin` (naive UTC, as the
    snapshots' times; default: the first snapshot; earlier snapshots are dropped), CPU by mean
    and memory by maximum (module doc)."""
    origin = origin or (snapshots[0].time if snapshots else None)
    snapshots = [s for s in snapshots if origin is not None and s.time >= origin]
    if not snapshots:
        return TopTable([], [], [], interval=interval)
    columns = collapse_commands((p.command for s in snapshots for p in s.processes), max_commands)
    per_row: dict[int, list[dict[str, tuple[float, float]]]] = {}
    for snapshot in snapshots:
        row = math.floor((snapshot.time - origin).total_seconds() / interval + 0.5)
        sums: dict[str, tuple[float, float]] = {}
        for p in snapshot.processes:
            col = _column_of(p.command, columns)
            cpu, mem = sums.get(col, (0.0, 0.0))
            sums[col] = (cpu + p.cpu, mem + p.mem)
        per_row.setdefault(row, []).append(sums)
    cpu_rows, mem_rows, seen = [], [], []
    for row in range(max(per_row) + 1):
        taken = per_row.get(row, [])
        cpu_rows.append([sum(s.get(c, (0.0, 0.0))[0] for s in taken) / len(taken) if taken else 0.0
                         for c in columns])
        mem_rows.append([max((s.get(c, (0.0, 0.0))[1] for s in taken), default=0.0) for c in columns])
        seen.append(len(taken))
    return TopTable(columns, cpu_rows, mem_rows, seen, interval)


def snapshots_from_tsvs(cpu_text: str, mem_text: str, origin: _dt.datetime) -> list[Snapshot]:
    """top_cpu.tsv and top_mem.tsv back into one snapshot a minute from `origin`, for charts
    where the `.top` file itself is gone."""
    commands, intervals, cpu_rows = read_top_tsv(cpu_text)
    mem_commands, mem_intervals, mem_rows = read_top_tsv(mem_text)
    mem = {(i, c): v for i, row in zip(mem_intervals, mem_rows, strict=True)
           for c, v in zip(mem_commands, row, strict=True)}
    return [Snapshot(origin + _dt.timedelta(minutes=i - 1),
                     tuple(Process(cpu, mem.get((i, c), 0.0), c) for c, cpu in zip(commands, row, strict=True)))
            for i, row in zip(intervals, cpu_rows, strict=True)]


def read_top_tsv(text: str) -> tuple[list[str], list[int], list[list[float]]]:
    """Read top_cpu.tsv / top_mem.tsv back: (commands, intervals, rows of values)."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return [], [], []
    commands = [c[1:-1] if len(c) >= 2 and c[0] == c[-1] == '"' else c for c in lines[0].split("\t")[1:]]
    intervals, rows = [], []
    for line in lines[1:]:
        fields = line.split("\t")
        intervals.append(int(fields[0]))
        rows.append([float(v) for v in fields[1:]])
    return commands, intervals, rows
