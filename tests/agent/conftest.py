"""Agent fixtures: a local store in tmp_path, a job runner, a stand-in docker."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest

from agent_helpers import Runs
from tibanna.storage import LocalStore


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "buckets")


@pytest.fixture
def runs(store: LocalStore, tmp_path: Path) -> Runs:
    return Runs(store, tmp_path)


_FAKE_DOCKER = r"""#!/bin/bash
{ printf '%s\n' "$@"; echo --end--; } >> RECORD
[ "$1" = run ] || exit 0
[ "$IMAGE_FAILS" = 1 ] && { echo "Unable to find image: pull access denied" >&2; exit 125; }
prev=""
for arg in "$@"; do
  case "$arg" in *:/data1:rw) data1="${arg%:/data1:rw}";; esac
  [ "$prev" = -w ] && workdir="$arg"
  prev="$arg"
done
cmd="${@: -1}"
cd "${workdir/\/data1/$data1}" && exec sh -c "${cmd//\/data1/$data1}"
"""


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[list[str]]]:
    """A stand-in `docker` first on PATH: records its arguments, then runs the `sh -c` command itself
    (the folder given with -v standing in for /data1). Returns a reader of the recorded calls."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    record = tmp_path / "docker-calls"
    script = bin_dir / "docker"
    script.write_text(_FAKE_DOCKER.replace("RECORD", str(record)))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def calls() -> list[list[str]]:
        text = record.read_text() if record.exists() else ""
        return [call.strip("\n").split("\n") for call in text.split("--end--\n") if call.strip()]
    return calls
