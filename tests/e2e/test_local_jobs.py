"""Whole jobs on the local backend, as a user runs them: submit, wait, read the buckets."""
from __future__ import annotations

import bz2
import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from jobhelpers import processes_with, shell_job, wait_done, wait_for


def bucket(home: Path, name: str) -> Path:
    return home / "buckets" / name


def markers(home: Path, jobid: str) -> list[str]:
    return [m for m in (".success", ".error", ".aborted") if (bucket(home, "log-bucket") / f"{jobid}{m}").exists()]


def test_hello_with_input_env(api, home):
    job = shell_job(["echo \"hello \\$WHO\" > /data1/out/hello.txt"], input_env={"WHO": "world"},
                    outputs={"file:///data1/out/hello.txt": "greetings/hello.txt"})
    jobid = api.run_workflow(job, open_browser=False)["jobid"]
    assert wait_done(api, jobid) == "SUCCEEDED"
    assert (bucket(home, "out-bucket") / "greetings/hello.txt").read_text() == "hello world\n"
    assert markers(home, jobid) == [".success"]
    postrun = json.loads(api.log(job_id=jobid, postrunjson=True))
    assert postrun["Job"]["JOBID"] == jobid
    assert api.info(jobid)["Log Bucket"] == "log-bucket"


@pytest.mark.parametrize("unzip, compress", [("gz", gzip.compress), ("bz2", bz2.compress)])
def test_compressed_input_unzipped_and_output_under_subkey(api, home, unzip, compress):
    src = bucket(home, "in-bucket") / f"data/reads.txt.{unzip}"
    src.parent.mkdir(parents=True)
    src.write_bytes(compress(b"line1\nline2\nline3\n"))
    job = shell_job("wc -l < /data1/input/data/reads.txt > /data1/out/count.txt",
                    inputs={"reads": {"bucket_name": "in-bucket", "object_key": f"data/reads.txt.{unzip}",
                                      "unzip": unzip}},
                    outputs={"file:///data1/out/count.txt": "results/deep/count.txt"})
    jobid = api.run_workflow(job)["jobid"]
    assert wait_done(api, jobid) == "SUCCEEDED", api.log(job_id=jobid)
    assert (bucket(home, "out-bucket") / "results/deep/count.txt").read_text().strip() == "3"


def test_nested_list_inputs_with_rename(api, home):
    for name, text in (("a", "A"), ("b", "B"), ("c", "C"), ("d", "D")):
        path = bucket(home, "in-bucket") / f"x/{name}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    job = shell_job("cat /data1/input/r1.txt /data1/input/r2.txt /data1/input/r3.txt /data1/input/r4.txt "
                    "> /data1/out/all.txt",
                    inputs={"pairs": {"bucket_name": "in-bucket",
                                      "object_key": [["x/a.txt", "x/b.txt"], ["x/c.txt", "x/d.txt"]],
                                      "rename": [["r1.txt", "r2.txt"], ["r3.txt", "r4.txt"]]}},
                    outputs={"file:///data1/out/all.txt": "merged.txt"})
    jobid = api.run_workflow(job)["jobid"]
    assert wait_done(api, jobid) == "SUCCEEDED", api.log(job_id=jobid)
    assert (bucket(home, "out-bucket") / "merged.txt").read_text() == "ABCD"


def test_folder_output_by_object_prefix(api, home):
    job = shell_job("mkdir -p /data1/out/dir/sub && echo 1 > /data1/out/dir/one && echo 2 > /data1/out/dir/sub/two",
                    outputs={"file:///data1/out/dir": {"object_prefix": "folder/"}})
    jobid = api.run_workflow(job)["jobid"]
    assert wait_done(api, jobid) == "SUCCEEDED", api.log(job_id=jobid)
    out = bucket(home, "out-bucket")
    assert (out / "folder/one").read_text() == "1\n"
    assert (out / "folder/sub/two").read_text() == "2\n"


def test_failing_command_gets_custom_error_label(api, home):
    job = shell_job("echo 'ERROR: reference genome hg99 not found' >&2; exit 3",
                    custom_errors=[{"error_type": "Unknown genome", "pattern": "reference genome \\S+ not found"}])
    jobid = api.run_workflow(job)["jobid"]
    assert wait_done(api, jobid) == "FAILED"
    assert markers(home, jobid) == [".error"]
    record = api.backend.get(job_id=jobid)
    assert record.error == "AWSEMJobErrorException"
    assert record.cause.startswith("Unknown genome: reference genome hg99 not found")
    assert "reference genome hg99 not found" in api.log(job_id=jobid)


@pytest.mark.parametrize("soft", [False, True])
def test_kill_ends_the_whole_process_tree(api, home, soft):
    marker = f"sleepmarker{int(soft)}{os.getpid()}"
    job = shell_job(f"(sleep 300; echo {marker}) & sleep 301 # {marker}")
    jobid = api.run_workflow(job)["jobid"]
    wait_for(lambda: processes_with(marker))
    api.kill(job_id=jobid, soft=soft)
    assert api.check_status(job_id=jobid) == ("FAILED" if soft else "ABORTED")
    if soft:
        assert api.backend.get(job_id=jobid).error == "JobAbortedException"
    assert markers(home, jobid) == [".aborted"]
    wait_for(lambda: not processes_with(marker), timeout=10)


def test_kill_queued_job_and_kill_all(api, home):
    api.deploy_unicorn(usergroup="q", buckets="log-bucket,out-bucket", concurrency=1, no_setenv=True)
    sfn = "tibanna_unicorn_q"
    first = api.run_workflow(shell_job("sleep 30"), sfn=sfn)["jobid"]
    second = api.run_workflow(shell_job("sleep 30"), sfn=sfn)["jobid"]
    assert sorted(api.kill_all(sfn=sfn)) == sorted([first, second])
    assert {api.check_status(job_id=j) for j in (first, second)} == {"ABORTED"}
    assert markers(home, first) == markers(home, second) == [".aborted"]


def test_same_jobid_twice_starts_one_job(api, home):
    job = shell_job("echo once >> /data1/out/n.txt", outputs={"file:///data1/out/n.txt": "n.txt"})
    first = api.run_workflow(job, jobid="sameJob00001")
    again = api.run_workflow(job, jobid="sameJob00001")
    assert again == first
    assert wait_done(api, "sameJob00001") == "SUCCEEDED"
    assert len(api.stat(job_ids=["sameJob00001"])) == 1
    assert (bucket(home, "out-bucket") / "n.txt").read_text() == "once\n"


SUBMITTER = textwrap.dedent("""
    import sys
    from tibanna.core import API
    from jobhelpers import shell_job
    API().run_batch_workflows([shell_job("true") for _ in range(15)] , verbose=False)
    API().run_workflow(shell_job("true"), jobid=sys.argv[1])
""")


def test_many_processes_submit_at_once(api, home):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1]))
    procs = [subprocess.Popen([sys.executable, "-c", SUBMITTER, "sharedJob0001"], env=env) for _ in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    rows = api.stat()
    assert len(rows) == 4 * 15 + 1  # the shared job id was started once
    jobids = [r["jobid"] for r in rows]
    assert len(set(jobids)) == len(jobids)
    for jobid in jobids:
        assert wait_done(api, jobid, timeout=120) == "SUCCEEDED"
        assert markers(home, jobid) == [".success"]


def test_supervisor_sigkilled_while_jobs_run(api, home):
    long_jobs = [api.run_workflow(shell_job("sleep 6"))["jobid"] for _ in range(2)]
    queued = [api.run_workflow(shell_job("true"))["jobid"] for _ in range(3)]
    wait_for(lambda: (home / "supervisor.pid").exists())
    wait_for(lambda: all(api.backend.index.row(j)["worker_pid"] for j in long_jobs))
    os.kill(int((home / "supervisor.pid").read_text()), signal.SIGKILL)
    # A worker killed with its supervisor: the next supervisor must not leave it RUNNING.
    row = api.backend.index.row(long_jobs[0])
    os.killpg(row["worker_pid"], signal.SIGKILL)
    time.sleep(0.2)
    for jobid in long_jobs + queued:  # reading status restarts the supervisor
        wait_done(api, jobid)
    assert api.check_status(job_id=long_jobs[0]) == "FAILED"
    assert api.backend.get(job_id=long_jobs[0]).error == "EC2UnintendedTerminationException"
    assert markers(home, long_jobs[0]) == [".error"]
    assert api.check_status(job_id=long_jobs[1]) == "SUCCEEDED"  # adopted and finished
    assert all(api.check_status(job_id=j) == "SUCCEEDED" for j in queued)
    for jobid in long_jobs + queued:
        assert len(markers(home, jobid)) == 1


def test_container_path_with_stand_in_docker(api, home, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "docker-args.json"
    (bin_dir / "docker").write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import json, os, subprocess, sys
        args = sys.argv[1:]
        if args[:1] == ["info"]:
            sys.exit(0)
        if args[:1] == ["pull"]:
            sys.exit(0)
        with open({str(record)!r}, "a") as f:
            f.write(json.dumps(args) + "\\n")
        mount = args[args.index("-v") + 1].split(":")[0]
        workdir = args[args.index("-w") + 1].replace("/data1", mount, 1)
        env = dict(os.environ)
        for i, a in enumerate(args):
            if a == "-e":
                name = args[i + 1]
                if "=" not in name:
                    env[name] = os.environ.get(name, "")
        cmd = args[-1].replace("/data1", mount)
        sys.exit(subprocess.call(["sh", "-c", cmd], cwd=workdir, env=env))
    """))
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("TIBANNA_CONTAINER_RUNTIME", "docker")
    job = shell_job("echo \"\\$GREETING from $(pwd)\" > /data1/out/c.txt", input_env={"GREETING": "hi"},
                    outputs={"file:///data1/out/c.txt": "c.txt"})
    job["args"]["container_image"] = "quay.io/example/tool:1.0"
    jobid = api.run_workflow(job)["jobid"]
    assert wait_done(api, jobid) == "SUCCEEDED", api.log(job_id=jobid)
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    run = next(c for c in calls if c[0] == "run")
    data1 = home / "jobs" / jobid / "data1"
    assert f"{data1}:/data1:rw" in run
    assert run[run.index("-w") + 1] == "/data1/shell"
    assert run[run.index("-e") + 1].startswith("GREETING")
    assert "quay.io/example/tool:1.0" in run
    assert (bucket(home, "out-bucket") / "c.txt").read_text().startswith("hi from ")


def test_job_folder_freed_after_shutdown_min(api, home, monkeypatch):
    import tibanna.backends.local.supervisor as sup
    from tibanna.backends.local.home import Home

    quick = api.run_workflow(shell_job("echo x > /data1/out/x"))["jobid"]
    kept = shell_job("true")
    kept["config"]["shutdown_min"] = 30
    kept = api.run_workflow(kept)["jobid"]
    wait_done(api, quick), wait_done(api, kept)
    supervisor = sup.Supervisor(Home(home))
    supervisor.sweep_job_folders()
    assert not (home / "jobs" / quick).exists()  # shutdown_min 'now' (default): freed when the job ends
    assert (home / "jobs" / kept).exists()  # kept 30 minutes for a look, as upstream keeps the instance
