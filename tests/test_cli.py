"""The `tibanna` command: upstream's verbs and flags, output shapes, one-line errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from jobhelpers import shell_job, wait_done

CLI = str(Path(sys.executable).parent / "tibanna")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60, env=os.environ.copy())


def test_version_and_help_on_every_verb():
    assert run("-v").stdout.strip().startswith("tibanna ")
    verbs = ["run_workflow", "run_batch_workflows", "stat", "kill", "kill_all", "log", "info", "add_user", "users",
             "list_sfns", "rerun", "rerun_many", "setup_tibanna_env", "deploy_unicorn", "deploy_core", "cleanup",
             "plot_metrics", "cost", "cost_estimate", "job_schema"]
    for verb in verbs:
        p = run(verb, "--help")
        assert p.returncode == 0 and "usage: tibanna " + verb in p.stdout, verb


def test_run_stat_log_info(home, api, tmp_path):
    path = tmp_path / "job.json"
    path.write_text(json.dumps(shell_job("echo from-cli")))
    p = run("run_workflow", "-i", str(path), "-j", "cliJob000001", "-B")
    assert p.returncode == 0, p.stderr
    assert "JOBID cliJob000001 submitted" in p.stdout
    assert wait_done(api, "cliJob000001") == "SUCCEEDED"
    lines = run("stat").stdout.splitlines()
    assert lines[0].split("\t") == ["jobid", "status", "name", "execution_start_time", "execution_stop_time"]
    assert lines[1].split("\t")[:2] == ["cliJob000001", "SUCCEEDED"]
    assert len(run("stat", "-l").stdout.splitlines()[0].split("\t")) == 12
    assert "from-cli" in run("log", "-j", "cliJob000001").stdout
    assert json.loads(run("log", "-j", "cliJob000001", "-p").stdout)["Job"]["JOBID"] == "cliJob000001"
    assert json.loads(run("info", "-j", "cliJob000001").stdout)["Job Id"] == "cliJob000001"
    report = run("plot_metrics", "-j", "cliJob000001", "-B").stdout.strip()
    assert report.startswith("file://") and report.endswith("cliJob000001.metrics/metrics.html")
    assert run("cost", "-j", "cliJob000001").stdout.strip() == "0.0"  # no local price table: zero
    (home / "prices.json").write_text(json.dumps({"instance_types": {"t3.micro": 0.5}}))
    path.write_text(json.dumps(shell_job("true") | {"config": {"log_bucket": "log-bucket", "instance_type": "t3.micro"}}))
    assert run("cost_estimate", "-i", str(path), "-H", "2").stdout.strip().startswith("1.0")


def test_job_schema_prints_the_published_schema(tmp_path):
    from tibanna import jobspec

    p = run("job_schema")
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert p.stdout == jobspec.SCHEMA_PATH.read_text()
    schema = json.loads(p.stdout)
    assert schema["$schema"].startswith("https://json-schema.org/") and schema["required"] == ["config", "args"]


def test_user_mistakes_print_one_line(home, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"args": {"language": "shell"}, "config": {}}))
    for args in (["run_workflow", "-i", str(bad)], ["run_workflow", "-i", str(tmp_path / "missing.json")],
                 ["log", "-j", "nosuchjob"], ["stat", "-t", "DONE"], ["add_user", "-u", "x", "-g", "nogroup"]):
        p = run(*args)
        assert p.returncode == 1, (args, p.stderr)
        assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1, (args, p.stderr)
    assert not (home / "buckets").exists()


def test_backend_from_environment(home):
    p = subprocess.run([CLI, "stat"], capture_output=True, text=True, env=dict(os.environ, TIBANNA_BACKEND="gcp"))
    assert p.returncode == 1 and "backend" in p.stderr


def test_admin_verbs(home):
    group = run("setup_tibanna_env", "-b", "b1,b2", "-g", "team", "-R").stdout.strip()
    assert group == "team"
    assert run("deploy_unicorn", "-g", "team", "-S", "-E", "-s", "x").stdout.strip() == "tibanna_unicorn_team_x"
    assert "tibanna_unicorn_team_x" in run("list_sfns", "-n").stdout
    assert run("add_user", "-u", "eve", "-g", "team").returncode == 0
    assert "eve\tteam" in run("users").stdout
    assert run("deploy_core", "-n", "unicorn", "-g", "team", "-s", "x").returncode == 0
    assert "removed tibanna_unicorn_team_x" in run("cleanup", "-g", "team").stdout
