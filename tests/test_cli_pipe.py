"""`tibanna stat | head`: a reader that stops early ends the command quietly."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLI = str(Path(sys.executable).parent / "tibanna")


def test_a_closed_pipe_ends_the_command_quietly(api):
    for _ in range(3):
        api.run_workflow({"args": {"language": "shell", "command": "true", "container_image": "ubuntu:20.04",
                                   "output_S3_bucket": "out-bucket"},
                          "config": {"log_bucket": "log-bucket", "cpu": 1, "mem": 0.1}}, verbose=False)
    read_end, write_end = os.pipe()
    os.close(read_end)  # `head` has read all it wanted before the command writes
    proc = subprocess.run([CLI, "stat"], stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60,
                          env=os.environ.copy())
    os.close(write_end)
    assert proc.stderr == ""
    assert proc.returncode == 141
    assert subprocess.run(f"{CLI} stat | head -1", shell=True, capture_output=True, text=True,
                          timeout=60).stdout.startswith("jobid\tstatus")
