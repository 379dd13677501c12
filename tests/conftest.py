"""Shared fixtures: every test gets its own TIBANNA_HOME, and its supervisor is stopped after."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from jobhelpers import shell_job, wait_done, wait_for  # noqa: F401  (re-exported for older imports)

os.environ.setdefault("TIBANNA_SUPERVISOR_IDLE_SECONDS", "3")
os.environ.pop("TIBANNA_BACKEND", None)
os.environ.pop("TIBANNA_DEFAULT_STEP_FUNCTION_NAME", None)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh TIBANNA_HOME; its supervisor (if one started) is ended at teardown."""
    root = tmp_path / "tibanna-home"
    monkeypatch.setenv("TIBANNA_HOME", str(root))
    monkeypatch.delenv("TIBANNA_DEFAULT_STEP_FUNCTION_NAME", raising=False)  # no test sees another's default
    yield root
    pid_file = root / "supervisor.pid"
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


@pytest.fixture
def api(home: Path):
    from tibanna.core import API

    return API()
