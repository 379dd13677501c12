"""Agent fixtures: a local store in tmp_path, a job runner."""
from __future__ import annotations

from pathlib import Path

import pytest

from agent_helpers import Runs
from tibanna.storage import LocalStore


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "buckets")


@pytest.fixture
def runs(store: LocalStore, tmp_path: Path) -> Runs:
    return Runs(store, tmp_path)
