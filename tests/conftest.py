"""Shared fixtures: every test gets its own TIBANNA_HOME, and its supervisor is stopped after."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from dockerd import DockerDaemon, DockerUnavailable
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


@pytest.fixture(scope="session")
def docker_daemon():
    """A private dockerd for this test session (one per xdist worker) with `local/busybox:1` built.

    Skips where no daemon can be started (not root, docker.io not installed); under CI=true that
    is a failure, so the container suite never silently stops running. Tests that use it get
    DOCKER_HOST pointing at it (see `_docker_host`); others do not see it.
    """
    try:
        daemon = DockerDaemon().start()
    except DockerUnavailable as err:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs a docker daemon: {err}")
        pytest.skip(f"no private docker daemon: {err}")
    try:
        daemon.build_busybox_image()
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(autouse=True)
def _docker_host(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """DOCKER_HOST set to the private daemon for the tests that use `docker_daemon`, and only for them."""
    if "docker_daemon" in request.fixturenames:
        daemon = request.getfixturevalue("docker_daemon")
        monkeypatch.setenv("DOCKER_HOST", daemon.host)
        monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
