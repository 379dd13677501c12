"""The agent's samples mean what the report says: the whole job tree, CPU as a share of all CPUs,
and a first sample soon after the start."""
from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

from tibanna.agent.monitor import sample_gaps
from tibanna.agent.sampling import DiskMeter, MiB, TreeSampler

HOLD_MIB = 40
BURN_CPU_SECONDS = 0.6


def test_sampling_starts_fast_then_keeps_the_interval():
    assert list(itertools.islice(sample_gaps(60), 10)) == [0.25, 0.5, 1, 2, 4, 8, 16, 32, 60, 60]
    assert list(itertools.islice(sample_gaps(1), 4)) == [0.25, 0.5, 1, 1]
    assert list(itertools.islice(sample_gaps(0.2), 3)) == [0.2, 0.2, 0.2]


def test_a_sample_covers_the_whole_tree_and_cpu_is_a_share_of_all_cpus(tmp_path: Path):
    """Two children of a shell each hold 40 MiB; one burns 0.6 s of CPU in a program written on
    several lines (a top row must stay on one line)."""
    hold = f"import time; data = bytearray({HOLD_MIB} * 2**20); time.sleep(1.2)"
    burn = (f"import time\ndata = bytearray({HOLD_MIB} * 2**20)\nt = time.process_time()\n"
            f"while time.process_time() - t < {BURN_CPU_SECONDS}: pass\ntime.sleep(0.5)")
    python = sys.executable
    shell = subprocess.Popen(["bash", "-c", f"{python} -c '{hold}' & {python} -c '{burn}'; wait"])
    sampler = TreeSampler(shell.pid, tmp_path, DiskMeter(tmp_path))
    cpu_seconds, peak, commands = 0.0, 0, set()
    last = time.monotonic()
    while shell.poll() is None:
        time.sleep(0.1)
        sample, rows = sampler.take()
        now = time.monotonic()
        cpu_seconds += sample.cpu_percent / 100 * (os.cpu_count() or 1) * (now - last)
        last, peak = now, max(peak, sample.mem_used_bytes)
        commands |= {row.command for row in rows}
    assert peak >= 2 * HOLD_MIB * MiB
    assert 0.7 * BURN_CPU_SECONDS <= cpu_seconds <= BURN_CPU_SECONDS + 0.6  # plus two interpreters' start
    assert f"{python} -c {burn.replace(chr(10), ' ')}" in commands
    assert all("\n" not in command for command in commands)
