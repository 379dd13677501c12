"""CWL, WDL and Snakemake jobs on the local backend, end to end, with the workflows in tests/data/workflows.

No container runtime is usable here, so the engines run without containers (cwltool
--no-container, miniwdl's bare backend, snakemake on the host), as a laptop without docker does.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from jobhelpers import wait_done

WORKFLOWS = Path(__file__).parents[1] / "data" / "workflows"
ENGINE_TIMEOUT = 90.0


@pytest.fixture(autouse=True)
def no_container_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engines run on the host even where a docker daemon answers."""
    monkeypatch.setenv("TIBANNA_CONTAINER_RUNTIME", "none")


def put(home: Path, bucket: str, key: str, data: bytes) -> None:
    path = home / "buckets" / bucket / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def output(home: Path, key: str) -> bytes:
    return (home / "buckets" / "out-bucket" / key).read_bytes()


def put_workflows(home: Path, language: str) -> str:
    """Copy a language's workflow folder into a local bucket; its s3:// url."""
    shutil.copytree(WORKFLOWS / language, home / "buckets" / "wf-bucket" / "flows" / language)
    return f"s3://wf-bucket/flows/{language}"


def put_smallfiles(home: Path, count: int) -> None:
    """smallfile1..N holding '1\\n'..'N\\n' (upstream's merge examples read smallfileN)."""
    for n in range(1, count + 1):
        put(home, "in-bucket", f"smallfile{n}", f"{n}\n".encode())


def job(args: dict) -> dict:
    return {"args": {"output_S3_bucket": "out-bucket", **args},
            "config": {"log_bucket": "log-bucket", "cpu": 1, "mem": 0.5}}


def run(api, description: dict) -> tuple[str, dict]:
    """Submit, wait for success; the job id and its postrun JSON."""
    jobid = api.run_workflow(description)["jobid"]
    assert wait_done(api, jobid, timeout=ENGINE_TIMEOUT) == "SUCCEEDED", api.log(job_id=jobid)
    return jobid, json.loads(api.log(job_id=jobid, postrunjson=True))


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def output_files(postrun: dict) -> dict:
    return postrun["Job"]["Output"]["Output files"]


def uploaded(home: Path, postrun: dict, argname: str, key: str, data: bytes) -> dict:
    """Check that output `argname` reached `key` in out-bucket holding `data`, as its postrun record
    says (target, md5sum); returns the record."""
    assert output(home, key) == data
    record = output_files(postrun)[argname]
    assert (record["target"], record["md5sum"]) == (key, md5(data))
    return record


GZ = gzip.compress(b"@read1\nACGT\n+\nIIII\n", mtime=0)
MD5_REPORT = f"{md5(GZ)}  -\n".encode()  # md5sum of the gz bytes themselves, read from stdin
NESTED_2X2 = [["smallfile1", "smallfile2"], ["smallfile3", "smallfile4"]]
NESTED_2X2X2 = [NESTED_2X2, [["smallfile5", "smallfile6"], ["smallfile7", "smallfile8"]]]


def test_cwl_md5_on_a_gz_input_from_a_local_directory(api, home):
    put(home, "in-bucket", "somefastqfile.fastq.gz", GZ)
    jobid, postrun = run(api, job({
        "app_name": "md5", "cwl_version": "v1", "cwl_directory_local": str(WORKFLOWS / "cwl"),
        "cwl_main_filename": "md5.cwl", "cwl_child_filenames": [],
        "input_files": {"gzfile": {"bucket_name": "in-bucket", "object_key": "somefastqfile.fastq.gz"}},
        "output_target": {"report": "some_sub_dirname/my_first_md5_report"}}))
    report = uploaded(home, postrun, "report", "some_sub_dirname/my_first_md5_report", MD5_REPORT)
    assert report["size"] == len(MD5_REPORT)
    assert report["checksum"] == "sha1$" + hashlib.sha1(MD5_REPORT).hexdigest()
    assert (report["class"], report["basename"]) == ("File", "report")
    assert (report["path"], report["location"]) == ("/data1/out/report", "file:///data1/out/report")
    assert postrun["Job"]["App"]["cwl_url"] == f"s3://log-bucket/{jobid}.workflow/"
    assert postrun["Job"]["App"]["language"] == "cwl_v1"
    log = api.log(job_id=jobid)
    assert "cwltool runs with --no-container; the containers it names were not used (ubuntu:20.04)" in log
    assert "DockerRequirement moved from requirements to hints in md5.cwl" in log


def test_wdl_draft2_md5_on_a_gz_input_from_a_bucket(api, home):
    put(home, "in-bucket", "somefastqfile.fastq.gz", GZ)
    jobid, postrun = run(api, job({
        "app_name": "md5", "language": "wdl_draft2", "wdl_directory_url": put_workflows(home, "wdl"),
        "wdl_main_filename": "md5.wdl",
        "input_files": {"md5.md5_step.gzfile": {"bucket_name": "in-bucket", "object_key": "somefastqfile.fastq.gz"}},
        "output_target": {"md5.md5_step.report": "some_sub_dirname/my_first_md5_report"}}))
    report = uploaded(home, postrun, "md5.md5_step.report", "some_sub_dirname/my_first_md5_report", MD5_REPORT)
    assert report["path"].startswith("/data1/wdl/run/")
    log = api.log(job_id=jobid)
    assert "workflow_engine cromwell is not available to this agent, which runs WDL with miniwdl" in log
    assert "miniwdl-backend-bare" in log


def test_cwl_merge_of_a_2x2_array_of_files(api, home):
    put_smallfiles(home, 4)
    _, postrun = run(api, job({
        "app_name": "merge", "cwl_directory_url": put_workflows(home, "cwl"), "cwl_main_filename": "merge.cwl",
        "cwl_child_filenames": ["paste.cwl", "cat.cwl"],
        "input_files": {"smallfiles": {"bucket_name": "in-bucket", "object_key": NESTED_2X2}},
        "output_target": {"merged": "some_sub_dirname/my_first_merged_file"}}))
    uploaded(home, postrun, "merged", "some_sub_dirname/my_first_merged_file", b"1\t2\n3\t4\n")


def test_wdl_merge_of_a_2x2_array_of_files(api, home):
    put_smallfiles(home, 4)
    _, postrun = run(api, job({
        "app_name": "merge", "language": "wdl", "wdl_directory_url": put_workflows(home, "wdl"),
        "wdl_main_filename": "merge.wdl", "workflow_engine": "miniwdl",
        "input_files": {"merge.smallfiles": {"bucket_name": "in-bucket", "object_key": NESTED_2X2}},
        "output_target": {"merge.merged": "some_sub_dirname/my_first_merged_file"}}))
    uploaded(home, postrun, "merge.merged", "some_sub_dirname/my_first_merged_file", b"1\t2\n3\t4\n")


def test_cwl_merge_then_cut_with_a_subworkflow(api, home):
    put_smallfiles(home, 8)
    _, postrun = run(api, job({
        "app_name": "merge_and_cut", "cwl_directory_url": put_workflows(home, "cwl"),
        "cwl_main_filename": "merge_and_cut.cwl",
        "cwl_child_filenames": ["merge.cwl", "paste.cwl", "cat.cwl", "cut.cwl"],
        "input_files": {"smallfiles": {"bucket_name": "in-bucket", "object_key": NESTED_2X2X2}},
        "output_target": {"merged_and_cut": "some_sub_dirname/my_first_merged_and_cut_file"}}))
    uploaded(home, postrun, "merged_and_cut", "some_sub_dirname/my_first_merged_and_cut_file", b"1\n3\n5\n7\n")


def test_wdl_merge_then_cut_with_an_imported_subworkflow(api, home):
    put_smallfiles(home, 8)
    jobid, postrun = run(api, job({
        "app_name": "merge_and_cut", "language": "wdl_v1", "wdl_directory_local": str(WORKFLOWS / "wdl"),
        "wdl_main_filename": "merge_and_cut.wdl", "wdl_child_filenames": ["merge.wdl"],
        "input_files": {"merge_and_cut.smallfiles": {"bucket_name": "in-bucket", "object_key": NESTED_2X2X2}},
        "output_target": {"merge_and_cut.merged_and_cut": "some_sub_dirname/my_first_merged_and_cut_file"}}))
    uploaded(home, postrun, "merge_and_cut.merged_and_cut", "some_sub_dirname/my_first_merged_and_cut_file",
             b"1\n3\n5\n7\n")
    assert postrun["Job"]["App"]["wdl_url"] == f"s3://log-bucket/{jobid}.workflow/"


def test_wdl_conditional_output_through_alt_cond_output_argnames(api, home):
    put_smallfiles(home, 4)
    url = put_workflows(home, "wdl")

    def cond_merge(keys: list[str], target: str) -> dict:
        return job({"app_name": "cond_merge", "language": "wdl", "wdl_directory_url": url,
                    "wdl_main_filename": "cond_merge.wdl",
                    "input_files": {"cond_merge.smallfiles": {"bucket_name": "in-bucket", "object_key": keys}},
                    "output_target": {"cond_merge.cond_merged": target},
                    "alt_cond_output_argnames": {"cond_merge.cond_merged": ["cond_merge.paste.pasted",
                                                                            "cond_merge.cat.concatenated"]}})

    four, two = api.run_batch_workflows([cond_merge([f"smallfile{n}" for n in range(1, 5)], "cond/merged4"),
                                         cond_merge(["smallfile1", "smallfile2"], "cond/merged2")])
    for submitted in (four, two):
        assert wait_done(api, submitted["jobid"], timeout=ENGINE_TIMEOUT) == "SUCCEEDED"
    assert output(home, "cond/merged4") == b"1\t2\t3\t4\n"  # more than two files: pasted
    assert output(home, "cond/merged2") == b"1\n2\n"  # two: concatenated
    postrun = json.loads(api.log(job_id=two["jobid"], postrunjson=True))
    merged = output_files(postrun)["cond_merge.cond_merged"]
    assert merged["target"] == "cond/merged2" and merged["path"].endswith("/concatenated")


def test_snakemake_two_rules_with_a_child_file(api, home):
    put(home, "in-bucket", "words.txt", b"b\na\n")
    jobid, postrun = run(api, job({
        "language": "snakemake", "snakemake_directory_local": str(WORKFLOWS / "snakemake"),
        "snakemake_main_filename": "Snakefile", "snakemake_child_filenames": ["rules/upper.smk"],
        "container_image": "snakemake/snakemake:v9.16.3", "command": "snakemake --cores 1",
        "input_files": {"file:///data1/snakemake/input/words.txt": "s3://in-bucket/words.txt"},
        "output_target": {"file:///data1/snakemake/out/summary.txt": "snake/summary.txt",
                          "file:///data1/snakemake/work/upper.txt": "snake/upper.txt"}}))
    assert output(home, "snake/upper.txt") == b"B\nA\n"
    uploaded(home, postrun, "file:///data1/snakemake/out/summary.txt", "snake/summary.txt", b"2\nB\nA\n")
    assert postrun["Job"]["App"]["main_snakemake"] == "Snakefile"
    assert "container_image snakemake/snakemake:v9.16.3 was not used" in api.log(job_id=jobid)


def test_cwl_secondary_files_input_env_and_run_args(api, home):
    put(home, "in-bucket", "data/reads.txt.gz", gzip.compress(b"c\na\nb\n"))
    put(home, "in-bucket", "data/reads.txt.idx", b"index\n")
    _, postrun = run(api, job({
        "cwl_directory_url": put_workflows(home, "cwl"), "cwl_main_filename": "index.cwl",
        "input_files": {"reads": {"bucket_name": "in-bucket", "object_key": "data/reads.txt.gz", "unzip": "gz"}},
        "secondary_files": {"reads": "s3://in-bucket/data/reads.txt.idx"},
        "input_env": {"TAG": "hello"}, "run_args": "--no-compute-checksum",
        "output_target": {"sorted": "idx/sorted.txt"},
        "secondary_output_target": {"sorted": ["idx/sorted.txt.idx"]}}))
    assert output(home, "idx/sorted.txt") == b"hello\na\nb\nc\n"  # TAG reached the tool
    assert output(home, "idx/sorted.txt.idx") == b"index\n4\n"
    sorted_file = output_files(postrun)["sorted"]
    assert "checksum" not in sorted_file  # run_args reached cwltool
    [index] = sorted_file["secondaryFiles"]
    assert index["target"] == "idx/sorted.txt.idx" and index["md5sum"] == md5(b"index\n4\n")
    assert index["path"] == "/data1/out/sorted.txt.idx"


def test_cwl_missing_required_input_gets_upstreams_label(api, home):
    jobid = api.run_workflow(job({"cwl_directory_url": put_workflows(home, "cwl"), "cwl_main_filename": "md5.cwl",
                                  "output_target": {"report": "md5/report"}}))["jobid"]
    assert wait_done(api, jobid, timeout=ENGINE_TIMEOUT) == "FAILED"
    record = api.backend.get(job_id=jobid)
    assert record.error == "AWSEMJobErrorException"
    assert record.cause.startswith("CWL missing input: Missing required input parameter 'gzfile'"), record.cause
    assert (home / "buckets" / "log-bucket" / f"{jobid}.error").exists()
