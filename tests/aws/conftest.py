"""A moto server on loopback for the AWS tests (one per test process), and a deployed unicorn."""
from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Iterator

import pytest

pytest.importorskip("moto")
from moto.server import ThreadedMotoServer  # noqa: E402

from aws_harness import Player, agent_bundle  # noqa: E402
from service_models import Violations, strict_validation  # noqa: E402

BUCKETS = ("log-bucket", "out-bucket", "in-bucket")
USERGROUP = "tests"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def _strict_session() -> Iterator[Violations]:
    with strict_validation() as found:
        yield found


@pytest.fixture(autouse=True)
def aws_checks_requests(_strict_session: Violations) -> Iterator[None]:
    """Every request a test makes must be one AWS accepts (patterns, lengths, enums), even when
    the code under test caught the error."""
    _strict_session.clear()
    yield
    if _strict_session:
        pytest.fail("requests AWS would refuse:\n" + "\n".join(f"  {n}: {p}" for n, p in _strict_session),
                    pytrace=False)


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server on a free loopback port; every boto3 client goes there (AWS_ENDPOINT_URL)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
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


@pytest.fixture(scope="session")
def deployed(moto_endpoint: str) -> dict:
    """Buckets and a unicorn deployed the way a user does it; returns {api, sfn, usergroup}."""
    import boto3

    from tibanna.core import API

    s3 = boto3.client("s3")
    for bucket in BUCKETS:
        s3.create_bucket(Bucket=bucket)
    api = API(backend="aws")
    sfn = api.deploy_unicorn(buckets=",".join(BUCKETS), usergroup=USERGROUP, no_setenv=True, quiet=True)
    return {"api": api, "sfn": sfn, "usergroup": USERGROUP}


@pytest.fixture
def api(deployed: dict):
    from tibanna.core import API

    return API(backend="aws")


@pytest.fixture
def player(api, tmp_path: Path) -> Player:
    return Player(api.backend, agent_bundle(tmp_path), tmp_path / "instances")


def aws_shell_job(command, *, outputs: dict | None = None, **config) -> dict:
    """A shell job for the deployed unicorn's buckets."""
    return {"args": {"language": "shell", "container_image": "ubuntu:20.04", "command": command,
                     "output_S3_bucket": "out-bucket", "output_target": outputs or {}},
            "config": {"log_bucket": "log-bucket", "instance_type": "t3.micro", "ebs_size": 10, **config}}


@pytest.fixture
def shell_job():
    return aws_shell_job


os.environ.pop("TIBANNA_BACKEND", None)
