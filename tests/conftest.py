"""Shared fixtures: every test gets its own TIBANNA_HOME, and its supervisor is stopped after; a private
docker daemon and a moto server (one of each per test process) for the tests that ask."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pytest

from dockerd import DockerDaemon, DockerUnavailable
from jobhelpers import free_port, kill_supervisor

if TYPE_CHECKING:
    from service_models import Violations
    from tibanna.backends.stub import StubBackend

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
    kill_supervisor(root)


@pytest.fixture
def api(home: Path):
    from tibanna.core import API

    return API()


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[StubBackend]:
    """A stub backend on a fake clock behind every API the test makes, its hooks', operators' and
    tasks' too (`tibanna.backends.substitute`); its jobs succeed after a second unless the test
    sets `stub.script`."""
    from tibanna.backends import substitute
    from tibanna.backends.stub import StubBackend

    with substitute(StubBackend(tmp_path / "stub")) as backend:
        yield backend


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


@pytest.fixture(scope="session")
def _strict_session() -> Iterator[Violations]:
    from service_models import strict_validation

    with strict_validation() as found:
        yield found


@pytest.fixture
def aws_checks_requests(_strict_session: Violations) -> Iterator[None]:
    """Every request a test makes must be one AWS accepts (patterns, lengths, enums), even when
    the code under test caught the error. Used by every test of tests/backends/aws and tests/storage."""
    _strict_session.clear()
    yield
    if _strict_session:
        pytest.fail("requests AWS would refuse:\n" + "\n".join(f"  {n}: {p}" for n, p in _strict_session),
                    pytrace=False)


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server on a free loopback port; every boto3 client goes there (AWS_ENDPOINT_URL)."""
    moto_server = pytest.importorskip("moto.server")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_PROFILE", "AWS_REGION", "TIBANNA_AWS_REGION", "AWS_ACCOUNT_NUMBER",
                     "TIBANNA_DEFAULT_STEP_FUNCTION_NAME"):
            env.delenv(name, raising=False)
        env.setenv("AWS_ENDPOINT_URL", endpoint)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.setenv("HOME", str(tmp_path_factory.mktemp("home")))
        env.setenv("PIP_NO_INDEX", "1")  # deploy fetches no wheel for another architecture: offline, as always
        env.setenv("PIP_FIND_LINKS", "")
        yield endpoint
    server.stop()
