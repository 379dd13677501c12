"""Prefect tests: one test server for the session (prefect_test_harness, for the modules that use the
`prefect_server` fixture; deployment/ starts a real `prefect server` of its own); each test has its own TIBANNA_HOME.

Use the `home` fixture (tests/conftest.py) in every test that runs real jobs: with no settings
block, the tasks' `API()` finds TIBANNA_HOME in the environment, which Prefect's worker threads
share. Use `stub` instead for a test whose jobs need only a chronology: the stub backend is then
behind every API the tasks make, in every thread.
"""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no telemetry, no "database is locked"
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")  # `.fn` calls and lone tasks

from prefect.testing.utilities import prefect_test_harness  # noqa: E402  (after the settings above)


@pytest.fixture(scope="session")
def prefect_server():
    with prefect_test_harness(server_startup_timeout=60):
        yield
