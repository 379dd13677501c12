"""The API's orchestrator-facing methods on the local backend: job records, submit-or-attach, links."""
from __future__ import annotations

import json

import pytest

from jobhelpers import shell_job, wait_done
from tibanna.core import API
from tibanna.exceptions import UserInputError


def test_from_settings_picks_backend_home_and_default_sfn(home, tmp_path):
    api = API.from_settings("local", home=str(tmp_path / "h"), region="ignored-on-local", sfn="tibanna_unicorn")
    assert (api.backend.name, api.backend.home.root, api.sfn) == ("local", tmp_path / "h", "tibanna_unicorn")
    assert API.from_settings().backend.home.root == home  # empty settings: the environment decides


def test_submit_or_attach_attaches_while_running_and_after_success_then_reruns_after_failure(api):
    first = api.submit_or_attach(shell_job("sleep 1"), "key-a")
    assert (first["jobid"], first["attached"], first["status"]) == ("key-a", False, "RUNNING")
    assert api.submit_or_attach(shell_job("sleep 1"), "key-a")["attached"] is True
    assert wait_done(api, "key-a") == "SUCCEEDED"
    assert api.submit_or_attach(shell_job("sleep 1"), "key-a") | {"attached": True} == api.job("key-a") | {
        "attached": True}
    failing = shell_job("exit 3")
    assert api.submit_or_attach(failing, "key-b")["jobid"] == "key-b"
    assert wait_done(api, "key-b") == "FAILED"
    second = api.submit_or_attach(failing, "key-b")
    assert (second["jobid"], second["rerun_of"], second["attached"]) == ("key-b-2", "key-b", False)
    assert wait_done(api, "key-b-2") == "FAILED"
    assert api.submit_or_attach(failing, "key-b")["jobid"] == "key-b-3"


def test_links_and_job_files_of_a_local_job(api, home):
    jobid = api.run_workflow(shell_job("echo hello"))["jobid"]
    assert wait_done(api, jobid) == "SUCCEEDED"
    links = api.links(jobid)
    assert links["log"] == (home / "buckets" / "log-bucket" / f"{jobid}.log").resolve().as_uri()
    assert links["postrun"].endswith(f"/log-bucket/{jobid}.postrun.json")
    assert links["metrics"].endswith(f"/log-bucket/{jobid}.metrics/metrics.html")
    assert links["execution"] == ""
    assert b"hello" in api.job_file(jobid, "log")
    assert json.loads(api.job_file(jobid, "postrun"))["Job"]["JOBID"] == jobid
    assert api.job_file(jobid, "metrics") is None  # until plot_metrics made it
    with pytest.raises(UserInputError, match="name: 'top' is not one of log, postrun, metrics"):
        api.job_file(jobid, "top")
