"""run.json (build_run_json) and the postrun JSON helpers in tibanna.protocol."""
from __future__ import annotations

import json

import pytest

from agent.agent_helpers import describe
from tibanna import jobspec, protocol


def test_run_json_has_upstreams_shape_without_secrets() -> None:
    description = jobspec.parse(describe(["echo a", "echo b"], input_env={"X": "1"},
                                         inputs={"f": "s3://in-bucket/a/b.txt",
                                                 "g": {"bucket_name": "in-bucket", "object_key": ["c", "d"],
                                                       "rename": ["c2", "d2"], "unzip": ""}},
                                         outputs={"file:///data1/out/x": "x"}), jobid="abc")
    run_json = protocol.build_run_json(description)
    assert set(run_json) == {"config", "Job"}
    assert "password" not in run_json["config"] and "key_name" not in run_json["config"]
    assert run_json["config"]["log_bucket"] == "log-bucket"
    job = run_json["Job"]
    assert job["JOBID"] == "abc"
    assert job["App"] == {"App_name": "", "App_version": "", "language": "shell",
                          "command": "echo a; echo b", "container_image": "ubuntu:20.04"}
    assert job["Input"]["Input_files_data"]["f"] == {"class": "File", "dir": "in-bucket", "path": "a/b.txt",
                                                     "rename": None, "profile": "", "unzip": "", "mount": ""}
    assert job["Input"]["Input_files_data"]["g"]["rename"] == ["c2", "d2"]
    assert job["Input"]["Env"] == {"X": "1"} and job["Input"]["Secondary_files_data"] == {}
    assert job["Output"] == {"output_bucket_directory": "out-bucket", "output_target": {"file:///data1/out/x": "x"},
                             "secondary_output_target": {}, "alt_cond_output_argnames": {}}
    assert job["Log"] == {"log_bucket_directory": "log-bucket"}
    protocol.parse_stamp(job["start_time"])
    assert protocol.run_json_args(run_json)["output_S3_bucket"] == "out-bucket"
    assert jobspec.output_targets(protocol.run_json_args(run_json))[0].key == "x"


def test_run_json_app_for_workflow_languages() -> None:
    description = jobspec.parse({"args": {"language": "wdl_v1", "wdl_main_filename": "main.wdl",
                                          "wdl_child_filenames": ["a.wdl", "b.wdl"],
                                          "wdl_directory_url": "s3://wf/dir", "output_S3_bucket": "out-bucket"},
                                 "config": {"log_bucket": "log-bucket", "instance_type": "t3.micro"}}, jobid="w1")
    app = protocol.build_run_json(description)["Job"]["App"]
    assert app == {"App_name": "", "App_version": "", "language": "wdl_v1", "main_wdl": "main.wdl",
                   "other_wdl_files": "a.wdl,b.wdl", "wdl_url": "s3://wf/dir", "workflow_engine": "cromwell",
                   "run_args": ""}


def test_run_json_needs_a_jobid() -> None:
    with pytest.raises(ValueError):
        protocol.build_run_json(jobspec.parse(describe("true")))


def test_initial_postrun_json_and_dump() -> None:
    run_json = protocol.build_run_json(jobspec.parse(describe("true"), jobid="p1"))
    postrun = protocol.initial_postrun_json(run_json, instance_id="local-x", instance_type="local",
                                            availability_zone="local", filesystem="/dev/sda")
    assert postrun["config"]["password"] == "" and postrun["config"]["key_name"] == ""
    assert postrun["Job"]["instance_availablity_zone"] == "local" and postrun["commands"] == []
    assert "password" not in run_json["config"]
    protocol.set_postrun_error(postrun, "AWSEMJobErrorException", "the command exited with code 2")
    dumped = json.loads(protocol.dump_json(postrun))
    assert dumped["Job"]["error_name"] == "AWSEMJobErrorException"
    assert "rename" not in json.dumps(dumped)  # None-valued keys are dropped, as upstream


@pytest.mark.parametrize("codes, status", [([0], "0"), ([0, 0, 0], "0"), ([0, 1], "0,1"), ([1], "1"),
                                           ([0, 3, 0], "0,3,0")])
def test_status_string(codes: list[int], status: str) -> None:
    assert protocol.status_string(codes) == status


def test_language_family() -> None:
    assert [protocol.language_family(lang) for lang in ("cwl_v1", "wdl", "wdl_draft2", "snakemake", "shell")] == [
        "cwl", "wdl", "wdl", "snakemake", "shell"]
