"""Faults a user's machine meets: a supervisor or a worker SIGKILLed, secrets in input_env, links out."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobhelpers import processes_with, shell_job, wait_done, wait_for
from tibanna import settings
from tibanna.backends.local.home import Home
from tibanna.backends.local.launcher import try_lock


def bucket(home: Path, name: str) -> Path:
    return home / "buckets" / name


def markers(home: Path, jobid: str) -> list[str]:
    return [m for m in (".success", ".error", ".aborted") if (bucket(home, "log-bucket") / f"{jobid}{m}").exists()]


def supervisor_pid(home: Path) -> int | None:
    """The pid of the supervisor that holds the home's lock now, or None."""
    with open(Home(home).lock, "a") as handle:
        if try_lock(handle):
            return None  # closing the file releases the lock
    return int((home / "supervisor.pid").read_text())


def test_supervisor_sigkilled_queue_runs_within_seconds(api, home, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()

    def counted(command: str, n: int) -> dict:
        job = shell_job(f"echo ran >> {runs}/\\$N; {command}", input_env={"N": str(n)})
        job["config"]["cpu"] = 1
        return job

    long_job = api.run_workflow(counted("sleep 25", 0))["jobid"]
    short = [r["jobid"] for r in api.run_batch_workflows([counted("sleep 0.2", n) for n in range(1, 51)])]
    wait_for(lambda: api.backend.index.row(long_job)["worker_pid"])
    first = wait_for(lambda: supervisor_pid(home))
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: supervisor_pid(home) is None, timeout=5)  # its workers do not hold the lock
    time.sleep(1.0)  # jobs end meanwhile, with nobody to finalize them
    started_before = {r["jobid"] for r in api.backend.index.rows(None) if r["phase"] != "queued"}

    # Any API call brings a new supervisor at once (seconds on a loaded machine), long before the
    # long job ends; before, the workers held the dead supervisor's lock until they all ended.
    asked = time.monotonic()
    api.stat()
    wait_for(lambda: supervisor_pid(home) not in (None, first), timeout=10)
    wait_for(lambda: any(api.backend.index.row(j)["phase"] != "queued" for j in short if j not in started_before),
             timeout=10)
    assert time.monotonic() - asked < 10
    assert api.backend.index.row(long_job)["phase"] == "running"  # adopted, not failed

    for jobid in [long_job, *short]:
        assert wait_done(api, jobid, timeout=60) == "SUCCEEDED", jobid
        assert markers(home, jobid) == [".success"], jobid
    assert sorted(p.name for p in runs.iterdir()) == sorted(str(n) for n in range(51))
    assert all(p.read_text() == "ran\n" for p in runs.iterdir())  # none ran twice


@pytest.mark.parametrize("leaves_session", [False, True], ids=["in-session", "setsid"])
def test_lost_worker_leaves_nothing_running(api, home, leaves_session):
    marker = f"lostworker{int(leaves_session)}{os.getpid()}"
    stray = f"setsid sh -c 'sleep 301 # {marker}'" if leaves_session else f"(sleep 300; echo {marker})"
    command = f"{stray} & sleep 302 # {marker}"
    jobid = api.run_workflow(shell_job(command))["jobid"]
    wait_for(lambda: len(processes_with(marker)) >= (2 if leaves_session else 1))
    os.kill(api.backend.index.row(jobid)["worker_pid"], signal.SIGKILL)  # the agent alone

    assert wait_done(api, jobid) == "FAILED"
    record = api.backend.get(job_id=jobid)
    assert record.error == "EC2UnintendedTerminationException"
    assert markers(home, jobid) == [".error"]
    wait_for(lambda: not processes_with(marker), timeout=10)
    postrun = json.loads(api.log(job_id=jobid, postrunjson=True))
    assert postrun["Job"]["error_name"] == "EC2UnintendedTerminationException"
    assert postrun["Job"]["error_message"] == record.cause


SECRETS = {"AWS_ACCESS_KEY_ID": "AKIAFAKEKEY0123456789", "aws_secret_access_key": "wJalrFAKEsecretVALUE42",
           "GITHUB_TOKEN": "ghp_fakeTokenValue987", "db_password": "pa55-w0rd-value", "API_SECRET_2": 31415926535}


def _files_holding(root: Path, values: list[str]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found += [f"{path}: {v}" for v in values if v.encode() in data]
    return found


def test_secrets_in_input_env_reach_the_command_only(api, home, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(settings.TIBANNA_SECRETS_DIR.name, str(tmp_path / "vault"))
    # The command prints each value's digest (the value itself appears in no file and no command).
    digests = "; ".join(f'printf %s "\\${name}" | sha256sum' for name in SECRETS)
    job = shell_job(f"({digests}) > /data1/out/seen.txt && echo visible=\\$PLAIN",
                    input_env={**SECRETS, "PLAIN": "not-a-secret"},
                    outputs={"file:///data1/out/seen.txt": "seen.txt"})
    job["config"]["shutdown_min"] = 30  # the job folder stays, and is searched too
    values = [str(v) for v in SECRETS.values()]

    submitted = api.run_workflow(job)
    jobid = submitted["jobid"]
    assert wait_done(api, jobid) == "SUCCEEDED", api.log(job_id=jobid)
    seen = (bucket(home, "out-bucket") / "seen.txt").read_text().split()[::2]
    assert seen == [hashlib.sha256(str(v).encode()).hexdigest() for v in SECRETS.values()]
    assert submitted["args"]["input_env"] == {**{n: "****" for n in SECRETS}, "PLAIN": "not-a-secret"}
    text = api.log(job_id=jobid)
    assert "visible=not-a-secret" in text
    assert text.count("secret values, passed to the command only") == 1

    returned = [submitted, api.check_output(job_id=jobid), api.log(job_id=jobid, runjson=True),
                api.log(job_id=jobid, postrunjson=True), text, api.stat(verbose=True), api.info(jobid)]
    dumped = json.dumps(returned, default=str)
    assert not [v for v in values if v in dumped]
    assert (home / "jobs" / jobid).is_dir()
    assert _files_holding(home, values) == []
    assert not list((tmp_path / "vault").rglob("*.json"))  # forgotten once the job ended

    env = dict(os.environ, TIBANNA_HOME=str(home))
    described = tmp_path / "job.json"
    described.write_text(json.dumps(job))
    for verb in (["run_workflow", "-i", str(described), "-j", "cliSecretJob"], ["log", "-j", jobid], ["log", "-j", jobid, "-r"], ["log", "-j", jobid, "-p"],
                 ["stat", "-l"], ["info", "-j", jobid]):
        out = subprocess.run([sys.executable, "-m", "tibanna.cli", *verb], env=env, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert not [v for v in values if v in out.stdout + out.stderr], verb
    assert wait_done(api, "cliSecretJob") == "SUCCEEDED", api.log(job_id="cliSecretJob")
    assert _files_holding(home, values) == []


def test_rerun_takes_secrets_from_the_environment(api, home, monkeypatch):
    digest = hashlib.sha256(b"tok-value-1").hexdigest()
    job = shell_job(f'printf %s "\\$MY_TOKEN" | sha256sum | grep -q {digest}', input_env={"MY_TOKEN": "tok-value-1"})
    first = api.run_workflow(job)["jobid"]
    assert wait_done(api, first) == "SUCCEEDED"
    with pytest.raises(Exception) as refused:
        api.rerun(job_id=first)
    assert "args.input_env.MY_TOKEN" in str(refused.value)
    monkeypatch.setenv("MY_TOKEN", "tok-value-1")
    again = api.rerun(job_id=first)
    assert again["args"]["input_env"]["MY_TOKEN"] == "****"
    assert wait_done(api, again["jobid"]) == "SUCCEEDED"


@pytest.mark.parametrize("setup, output", [
    ("ln -s /etc/passwd /data1/out/leak", "/data1/out/leak"),
    ("ln -s ../../../../../../../../etc/passwd /data1/out/leak", "/data1/out/leak"),
    ("ln -s /etc /data1/out/etcdir", "/data1/out/etcdir"),
    ("mkdir /data1/out/d && echo ok > /data1/out/d/fine && ln -s /etc/hostname /data1/out/d/leak", "/data1/out/d"),
    ("mkdir /data1/out/d && ln -s /etc /data1/out/d/sub", "/data1/out/d"),
    ("ln -s /etc /data1/out/e && true", "/data1/out/e/passwd"),
], ids=["file-abs", "file-rel", "folder", "link-in-folder", "folder-link-in-folder", "through-link"])
def test_outputs_never_follow_links_out_of_the_job_folder(api, home, setup, output):
    job = shell_job(setup, outputs={f"file://{output}": "published/x"})
    jobid = api.run_workflow(job)["jobid"]
    assert wait_done(api, jobid) == "FAILED"
    error = json.loads(api.log(job_id=jobid, postrunjson=True))["Job"]["error_message"]
    assert output in error and "outside the job folder" in error, error
    assert error in api.log(job_id=jobid)
    assert not (bucket(home, "out-bucket") / "published").exists()


def test_links_inside_the_job_folder_are_followed(api, home):
    setup = ("echo real > /data1/out/real.txt && ln -s /data1/out/real.txt /data1/out/abs && "
             "ln -s real.txt /data1/out/rel && mkdir /data1/out/d && ln -s ../real.txt /data1/out/d/up && "
             "ln -s /data1/out/d /data1/out/dlink && ln -s .. /data1/out/d/loop")
    job = shell_job(setup, outputs={"file:///data1/out/abs": "abs.txt", "file:///data1/out/rel": "rel.txt",
                                    "file:///data1/out/dlink": "folder"})
    jobid = api.run_workflow(job)["jobid"]
    assert wait_done(api, jobid) == "SUCCEEDED", api.log(job_id=jobid)
    out = bucket(home, "out-bucket")
    assert (out / "abs.txt").read_text() == (out / "rel.txt").read_text() == "real\n"
    assert (out / "folder" / "up").read_text() == "real\n"
    assert (out / "folder" / "loop" / "real.txt").read_text() == "real\n"
