"""The AWS tests: every request checked, buckets and a unicorn deployed on the moto server
(`moto_endpoint`, tests/conftest.py)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("moto")
from aws_harness import Player, agent_bundle  # noqa: E402

BUCKETS = ("log-bucket", "out-bucket", "in-bucket")
USERGROUP = "tests"


@pytest.fixture(autouse=True)
def _requests_checked(aws_checks_requests: None) -> None:
    """Every test here has its AWS requests checked, whether or not it talks to moto."""


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
