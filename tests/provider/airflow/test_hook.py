"""TibannaHook: settings from a connection (or the environment)."""
from __future__ import annotations

import json

import pytest
from airflow.sdk.exceptions import AirflowException

from jobhelpers import shell_job
from tibanna_provider.hooks.tibanna import TibannaHook, TibannaSettings


def test_settings_from_extras_in_both_spellings():
    extras = {"backend": "local", "extra__tibanna__tibanna_home": "/x", "sfn": "", "unrelated": 1}
    assert TibannaSettings.from_extras(extras) == TibannaSettings(backend="local", tibanna_home="/x")


def test_without_connection_the_environment_decides(home):
    hook = TibannaHook("no_such_connection")
    assert hook.settings == TibannaSettings()
    assert hook.api.backend.name == "local"
    assert hook.api.backend.home.root == home


def test_connection_extras_choose_backend_home_and_sfn(home, tmp_path, monkeypatch):
    other = tmp_path / "other-home"
    monkeypatch.setenv("AIRFLOW_CONN_TIBANNA_TEST", json.dumps(
        {"conn_type": "tibanna", "extra": {"backend": "local", "tibanna_home": str(other), "sfn": "tibanna_unicorn"}}))
    hook = TibannaHook("tibanna_test")
    assert hook.settings == TibannaSettings(backend="local", tibanna_home=str(other), sfn="tibanna_unicorn")
    assert hook.api.backend.home.root == other
    job = hook.api.submit_or_attach(shell_job("true"), "hook-key")
    jobid = job["jobid"]
    assert (jobid, job["sfn"], job["attached"]) == ("hook-key", "tibanna_unicorn", False)
    assert (other / "buckets" / "log-bucket" / f"{jobid}.run.json").exists()


def test_aws_settings_take_region_profile_and_endpoint_from_an_aws_connection(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AWS_TEST", json.dumps({"conn_type": "aws", "extra": {
        "region_name": "eu-west-1", "endpoint_url": "http://127.0.0.1:5000"}}))
    backend = TibannaSettings(backend="aws", aws_conn_id="aws_test").api().backend
    assert (backend.region, backend.clients.endpoint_url) == ("eu-west-1", "http://127.0.0.1:5000")
    assert TibannaSettings(backend="aws", aws_conn_id="aws_test", region="us-east-2").api().backend.region == "us-east-2"


def test_an_aws_connection_with_access_keys_is_refused(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AWS_KEYS", json.dumps({"conn_type": "aws", "login": "AKIA", "password": "x"}))
    with pytest.raises(AirflowException, match="holds access keys"):
        TibannaSettings(backend="aws", aws_conn_id="aws_keys").api()
