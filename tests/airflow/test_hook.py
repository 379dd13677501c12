"""TibannaHook: settings from a connection (or the environment), and the shared job-watching steps."""
from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowException

from jobhelpers import shell_job
from tibanna_provider.hooks.tibanna import TibannaHook, TibannaJobFailed, TibannaSettings


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
    jobid = hook.submit(shell_job("true"))["jobid"]
    assert hook.submission(jobid)["_tibanna"]["sfn"] == "tibanna_unicorn"
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


class FakeAPI:
    """Statuses and logs that a test scripts."""

    def __init__(self, statuses: dict[str, str], logs: dict[str, str]) -> None:
        self.statuses, self.logs = statuses, logs
        self.backend = SimpleNamespace(name="fake", get=lambda job_id: SimpleNamespace(
            status=self.statuses[job_id], error="AWSEMJobErrorException", cause="exit code 3"))

    def stat(self, job_ids: list[str]) -> list[dict]:
        return [{"jobid": j, "status": self.statuses[j]} for j in job_ids if j in self.statuses]

    def log(self, job_id: str, quiet: bool) -> str:
        return self.logs.get(job_id, "")


def fake_hook(statuses: dict[str, str], logs: dict[str, str] | None = None) -> TibannaHook:
    hook = TibannaHook(settings=TibannaSettings())
    hook.api = FakeAPI(statuses, logs or {})
    return hook


def test_check_forwards_whole_new_lines_then_the_rest_at_the_end(caplog):
    hook = fake_hook({"j": "RUNNING"}, {"j": "one\ntw"})
    offsets: dict[str, int] = {}
    logger = logging.getLogger("forward-test")
    with caplog.at_level(logging.INFO, logger="forward-test"):
        assert hook.check(["j"], offsets, logger) is None
        hook.api.logs["j"] = "one\ntwo\nthree"
        hook.api.statuses["j"] = "SUCCEEDED"
        assert hook.check(["j"], offsets, logger) == {"j": "SUCCEEDED"}
    assert [r.getMessage() for r in caplog.records] == ["[j] one", "[j] two", "[j] three"]
    assert offsets == {"j": len("one\ntwo\nthree")}


def test_check_raises_with_error_name_cause_and_log_tail():
    log_text = "".join(f"line {i}\n" for i in range(30))
    hook = fake_hook({"ok": "SUCCEEDED", "bad": "FAILED"}, {"bad": log_text})
    with pytest.raises(TibannaJobFailed) as failure:
        hook.check(["ok", "bad"], None, logging.getLogger())
    message = str(failure.value)
    assert message.startswith("Tibanna job bad FAILED: AWSEMJobErrorException: exit code 3")
    assert "line 29" in message and "line 10" in message and "line 9\n" not in message


def test_unknown_job_is_an_error():
    with pytest.raises(AirflowException, match="no Tibanna job nope"):
        fake_hook({}).check(["nope"], None, logging.getLogger())


def test_wait_gives_up_after_timeout_and_says_the_job_is_left_running():
    hook = fake_hook({"j": "RUNNING"})
    with pytest.raises(AirflowException, match="still RUNNING after 0 s; left running"):
        hook.wait(["j"], poll_interval=0.01, timeout=0.05, logger=logging.getLogger(), log_offsets=None)


def test_links_of_a_local_job(home):
    hook = TibannaHook()
    submission = hook.submit(shell_job("true"))
    links = hook.links(submission)
    jobid = submission["jobid"]
    assert links["log"] == (home / "buckets" / "log-bucket" / f"{jobid}.log").resolve().as_uri()
    assert links["metrics"].endswith(f"/log-bucket/{jobid}.metrics/metrics.html")
    assert links["execution"] == ""
