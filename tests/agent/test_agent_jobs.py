"""Whole shell jobs through `run_job`: staging, the command, outputs, postrun JSON, log and markers."""
from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import zipfile

import pytest

from agent_helpers import IN_BUCKET, LOG_BUCKET, OUT_BUCKET, Runs, describe
from tibanna import protocol


def test_hello_job_with_input_env(runs: Runs) -> None:
    jobid, code = runs.run(describe('echo "hi \\$WHO" > /data1/out/x', input_env={"WHO": "world"},
                                    outputs={"file:///data1/out/x": "hello/x"}))
    assert code == 0
    assert runs.output("hello/x") == "hi world\n"
    assert runs.markers(jobid) == [protocol.SUCCESS]
    assert runs.store.exists(LOG_BUCKET, protocol.key(jobid, protocol.JOB_STARTED))
    job = runs.postrun(jobid)["Job"]
    assert job["status"] == "0" and job["JOBID"] == jobid
    assert job["Output"]["Output files"]["file:///data1/out/x"] == {
        "path": "/data1/out/x", "target": "hello/x", "size": 9, "md5sum": hashlib.md5(b"hi world\n").hexdigest()}
    assert job["instance_type"] == "t3.micro" and job["instance_id"].startswith("local-")
    assert job["instance_availablity_zone"] == "local"
    assert protocol.parse_stamp(job["start_time"]) <= protocol.parse_stamp(job["end_time"])
    assert set(job["Metrics"]) >= {"max_mem_used_MB", "min_mem_available_MB", "total_mem_MB",
                                   "max_cpu_utilization_percent", "max_disk_space_used_GB", "max_ebs_read_bytes"}
    log = runs.log(jobid, protocol.LOG)
    assert 'export COMMAND="echo \\"hi \\$WHO\\"' in log and "exit code 0" in log
    assert "container_image ubuntu:20.04 was not used" in log


def test_secrets_stay_out_of_run_json_and_postrun(runs: Runs) -> None:
    jobid, _ = runs.run(describe("true"))
    assert "password" not in runs.log(jobid, protocol.RUN_JSON) and "hunter2" not in runs.log(jobid, protocol.RUN_JSON)
    config = runs.postrun(jobid)["config"]
    assert config["password"] == "" and config["key_name"] == ""


def test_gz_input_is_unzipped_and_output_goes_under_a_sub_key(runs: Runs) -> None:
    runs.store.put_bytes(IN_BUCKET, "data/reads.txt.gz", gzip.compress(b"a\nb\nc\n"))
    runs.store.put_bytes(IN_BUCKET, "data/more.txt.bz2", bz2.compress(b"d\n"))
    inputs = {"reads": {"bucket_name": IN_BUCKET, "object_key": "data/reads.txt.gz", "unzip": "gz"},
              "more": {"bucket_name": IN_BUCKET, "object_key": "data/more.txt.bz2", "unzip": "bz2"}}
    command = ("test ! -e /data1/input/data/reads.txt.gz && "
               "cat /data1/input/data/reads.txt /data1/input/data/more.txt | wc -l > /data1/out/count.txt")
    jobid, code = runs.run(describe(command, inputs=inputs,
                                    outputs={"file:///data1/out/count.txt": "results/sub/count.txt"}))
    assert code == 0, runs.log(jobid, protocol.LOG)
    assert runs.output("results/sub/count.txt").strip() == "4"


def test_nested_inputs_with_rename_file_targets_and_secondary_files(runs: Runs) -> None:
    for key in ("a/1.txt", "a/2.txt", "b/3.txt", "c/4.txt", "c/4.txt.idx", "d/5.txt"):
        runs.store.put_text(IN_BUCKET, key, key + "\n")
    inputs = {
        "renamed": {"bucket_name": IN_BUCKET, "object_key": [["a/1.txt", "a/2.txt"], ["b/3.txt"]],
                    "rename": [["r1.txt", "r2.txt"], ["r3.txt"]]},
        "kept": [f"s3://{IN_BUCKET}/c/4.txt"],
        "file:///data1/shell/five.txt": f"s3://{IN_BUCKET}/d/5.txt",
    }
    command = ("cat /data1/input/r1.txt /data1/input/r2.txt /data1/input/r3.txt /data1/input/c/4.txt "
               "/data1/input/c/4.txt.idx five.txt > /data1/out/all.txt")
    jobid, code = runs.run(describe(command, inputs=inputs, outputs={"file:///data1/out/all.txt": "all.txt"},
                                    secondary_files={"kept": f"s3://{IN_BUCKET}/c/4.txt.idx"}))
    assert code == 0, runs.log(jobid, protocol.LOG)
    assert runs.output("all.txt").split() == ["a/1.txt", "a/2.txt", "b/3.txt", "c/4.txt", "c/4.txt.idx", "d/5.txt"]


def test_folder_input_and_folder_output_by_prefix(runs: Runs) -> None:
    for key in ("ref/index/x.idx", "ref/index/deep/y.idx"):
        runs.store.put_text(IN_BUCKET, key, key)
    command = ["mkdir -p /data1/out/dir/sub", "cp -r /data1/input/ref/index/* /data1/out/dir/sub/",
               "echo top > /data1/out/dir/top.txt"]
    jobid, code = runs.run(describe(command, inputs={"index": f"s3://{IN_BUCKET}/ref/index"},
                                    outputs={"file:///data1/out/dir": {"object_prefix": "pre"},
                                             "file:///data1/out/dir/top.txt": {"object_prefix": "flat/"}}))
    assert code == 0, runs.log(jobid, protocol.LOG)
    assert sorted(runs.store.list_keys(OUT_BUCKET)) == [
        "flat/dir/top.txt", "pre/sub/deep/y.idx", "pre/sub/x.idx", "pre/top.txt"]
    files = runs.postrun(jobid)["Job"]["Output"]["Output files"]
    assert files["file:///data1/out/dir"]["target"] == "pre/"


def test_zip_output_is_unzipped_under_its_prefix(runs: Runs) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("report/summary.txt", "ok")
        archive.writestr("data.csv", "1,2")
    runs.store.put_bytes(IN_BUCKET, "bundle.zip", buffer.getvalue())
    jobid, code = runs.run(describe("cp /data1/input/bundle.zip /data1/out/", inputs={"z": f"s3://{IN_BUCKET}/bundle.zip"},
                                    outputs={"file:///data1/out/bundle.zip": {"object_prefix": "qc/", "unzip": True}}))
    assert code == 0, runs.log(jobid, protocol.LOG)
    assert runs.output("qc/report/summary.txt") == "ok" and runs.output("qc/data.csv") == "1,2"


def test_mounted_input_is_read_in_place(runs: Runs) -> None:
    runs.store.put_text(IN_BUCKET, "big/genome.fa", ">chr1\nACGT\n")
    inputs = {"genome": {"bucket_name": IN_BUCKET, "object_key": "big/genome.fa", "mount": True}}
    jobid, code = runs.run(describe(f"grep -c chr /data1/input-mounted-{IN_BUCKET}/big/genome.fa > /data1/out/n",
                                    inputs=inputs, outputs={"file:///data1/out/n": "n"}))
    assert code == 0, runs.log(jobid, protocol.LOG)
    assert runs.output("n") == "1\n"
    assert not (runs.workdir(jobid) / "data1" / "input" / "big").exists()


def test_failing_command(runs: Runs) -> None:
    jobid, code = runs.run(describe(["echo before", "echo oops >&2", "exit 3"],
                                    outputs={"file:///data1/out/never": "never"}))
    assert code == 1
    assert runs.markers(jobid) == [protocol.ERROR]
    log = runs.log(jobid, protocol.LOG)
    assert log.index("echo before; echo oops >&2; exit 3") < log.index("before\n") < log.index("oops\n")
    assert "exit code 3" in log and "job failed" in log
    job = runs.postrun(jobid)["Job"]
    assert job["status"] == "0,3"
    assert job["error_name"] == "AWSEMJobErrorException" and "code 3" in job["error_message"]
    assert runs.output("never") is None


def test_missing_input_fails_before_the_command(runs: Runs) -> None:
    jobid, code = runs.run(describe("echo ran > /data1/out/ran", inputs={"f": f"s3://{IN_BUCKET}/nope.txt"}))
    assert code == 1 and runs.markers(jobid) == [protocol.ERROR]
    log = runs.log(jobid, protocol.LOG)
    assert f"Cannot download file s3://{IN_BUCKET}/nope.txt - file does not exist." in log
    assert "exit code" not in log
    assert runs.postrun(jobid)["Job"]["status"] == "1"


def test_missing_output_fails_the_job(runs: Runs) -> None:
    jobid, code = runs.run(describe("true", outputs={"file:///data1/out/absent": "absent"}))
    assert code == 1 and runs.markers(jobid) == [protocol.ERROR]
    assert "/data1/out/absent" in runs.log(jobid, protocol.LOG)
    assert runs.postrun(jobid)["Job"]["status"] == "0,0,1"


def test_missing_run_json_still_ends_with_error(runs: Runs) -> None:
    from tibanna.agent import run_job

    assert run_job(runs.store, "ghost", LOG_BUCKET, runs.workdir("ghost")) == 1
    assert runs.markers("ghost") == [protocol.ERROR]
    assert "run.json not found" in runs.log("ghost", protocol.LOG)
    assert runs.postrun("ghost")["Job"]["JOBID"] == "ghost"


def test_paths_are_rewritten_when_data1_cannot_be_mounted(runs: Runs) -> None:
    jobid, code = runs.run(describe('echo "\\$OUT" > /data1/out/where; pwd >> /data1/out/where',
                                    input_env={"OUT": "/data1/out"}, outputs={"file:///data1/out/where": "where"}),
                           data1_mode="rewrite")
    assert code == 0
    data1 = runs.workdir(jobid) / "data1"
    assert runs.output("where").split() == [f"{data1}/out", f"{data1}/shell"]
    assert "rewritten" in runs.log(jobid, protocol.LOG)


def test_forced_bind_where_impossible_is_an_error(runs: Runs) -> None:
    from tibanna.agent.folder import bind_possible

    if bind_possible():
        pytest.skip("/data1 can be bind-mounted here")
    jobid, code = runs.run(describe("true"), data1_mode="bind")
    assert code == 1 and "data1_mode 'bind' is not possible" in runs.log(jobid, protocol.LOG)


def test_bind_mode_shows_the_folder_at_data1(runs: Runs) -> None:
    from tibanna.agent.folder import bind_possible

    if not bind_possible():
        pytest.skip("needs an empty /data1 and unshare --mount")
    jobid, code = runs.run(describe("pwd > /data1/out/where", outputs={"file:///data1/out/where": "where"}),
                           data1_mode="bind")
    assert code == 0 and runs.output("where") == "/data1/shell\n"


def test_project_bin_is_first_on_path(runs: Runs) -> None:
    import os
    import sys

    jobid, code = runs.run(describe("command -v python > /data1/out/py", outputs={"file:///data1/out/py": "py"}))
    assert code == 0
    assert runs.output("py").strip() == os.path.join(os.path.dirname(sys.executable), "python")


def test_trivial_job_is_quick(runs: Runs) -> None:
    import time

    runs.run(describe("true"))  # warm-up (imports)
    started = time.perf_counter()
    for _ in range(10):
        runs.run(describe("true"))
    assert (time.perf_counter() - started) / 10 < 0.15  # well under: about 10 ms here
