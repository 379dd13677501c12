"""tibanna.jobspec: upstream's corpus accepted, defaults as upstream, every refusal named by its field."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import hypothesis as hyp
import jsonschema
import pytest
from hypothesis import strategies as st

from tibanna import jobspec
from tibanna.exceptions import (
    EC2LaunchException,
    MalFormattedInputJsonException,
    MalFormattedRunJsonException,
    MissingFieldInInputJsonException,
    TibannaError,
    UnsupportedCWLVersionException,
)
from tibanna.jobspec import OutputTarget

from jobspec_mutants import SAMPLES, corpus, corpus_paths, mutants, nest, outcome

CORPUS = corpus_paths()

SHELL = {
    "args": {
        "language": "shell",
        "container_image": "ubuntu:20.04",
        "command": ["echo hi > /data1/out/x", "cat /data1/shell/in.txt"],
        "output_S3_bucket": "out-bucket",
        "input_files": {"file:///data1/shell/in.txt": "s3://in-bucket/a/in.txt"},
        "output_target": {"file:///data1/out/x": "results/x"},
    },
    "config": {"log_bucket": "log-bucket", "instance_type": "t3.micro"},
}
CWL = {
    "args": {
        "cwl_main_filename": "main.cwl",
        "cwl_directory_url": "https://example.org/cwl/",
        "output_S3_bucket": "out-bucket",
        "input_files": {"bam": {"bucket_name": "in-bucket", "object_key": "a.bam"}},
        "output_target": {"out": "x/out.txt"},
    },
    "config": {"log_bucket": "log-bucket", "mem": 2, "cpu": 1},
}
WDL = {
    "args": {
        "language": "wdl_v1",
        "wdl_main_filename": "main.wdl",
        "wdl_directory_url": "s3://code-bucket/wdl/",
        "output_S3_bucket": "out-bucket",
    },
    "config": {"log_bucket": "log-bucket", "instance_type": ["t3.micro", "t3.small"]},
}
SNAKEMAKE = {
    "args": {
        "language": "snakemake",
        "snakemake_main_filename": "Snakefile",
        "snakemake_directory_local": "workflow/",
        "container_image": "snakemake/snakemake",
        "command": "snakemake --cores 1",
        "output_S3_bucket": "out-bucket",
    },
    "config": {"log_bucket": "log-bucket", "instance_type": "t3.micro"},
}

DROP = object()


def variant(base: dict, *changes: tuple[tuple, object]) -> dict:
    """A deep copy of `base` with each (path, value) set, or deleted when the value is DROP."""
    data = copy.deepcopy(base)
    for path, value in changes:
        holder = data
        for part in path[:-1]:
            holder = holder[part]
        if value is DROP:
            del holder[path[-1]]
        else:
            holder[path[-1]] = value
    return data


def a(*path: str) -> tuple:
    return ("args", *path)


def c(*path: str) -> tuple:
    return ("config", *path)


# ---------------------------------------------------------------------------------------------
# Upstream's corpus.

def test_corpus_has_all_upstream_descriptions():
    assert len(CORPUS) == 106
    assert "MIT License" in (SAMPLES / "LICENSE-upstream.txt").read_text()  # the data's licence travels with it


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_upstream_description_accepted(path: Path):
    original = json.loads(path.read_text())
    parsed = jobspec.parse(path)
    args, cfg = parsed["args"], parsed["config"]
    assert cfg["json_bucket"] == cfg["log_bucket"] == original["config"]["log_bucket"]
    assert cfg["language"] == args["language"]
    assert cfg["job_tag"] == args["app_name"]
    assert isinstance(args["dependency"], dict)
    for section in ("input_files", "secondary_files"):
        for spec in args[section].values():
            assert {"bucket_name", "object_key"} <= set(spec)
    jobspec.output_targets(args)
    jobspec.secondary_output_targets(args)
    for key in original:
        if key not in ("args", "config"):
            assert parsed[key] == original[key]
    assert jobspec.parse(parsed) == parsed  # filling is idempotent


def test_benchmarkable_app_names():
    assert len(jobspec.BENCHMARKABLE_APP_NAMES) == 33
    assert {"md5", "bwa-mem", "repliseq-parta", "encode-chipseq"} <= jobspec.BENCHMARKABLE_APP_NAMES


# ---------------------------------------------------------------------------------------------
# Defaults, as upstream's fill_default.

def test_config_defaults_follow_upstream_table():
    cfg = jobspec.parse(SHELL)["config"]
    expected = {
        "instance_type": "t3.micro", "mem": 0, "cpu": "", "mem_as_is": False, "ebs_size": 10,
        "ebs_size_as_is": False, "ebs_type": "gp3", "ebs_iops": "", "ebs_throughput": "",
        "root_ebs_size": 10, "EBS_optimized": False, "shutdown_min": "now", "password": "",
        "key_name": "", "spot_instance": False, "spot_duration": "", "behavior_on_capacity_limit": "fail",
        "availability_zone": "", "security_group": "", "subnet": "", "public_postrun_json": False,
        "encrypt_s3_upload": False, "kms_key_id": None, "ami_id": "", "disable_metrics_collection": False,
        "cloudwatch_dashboard": False, "use_benchmark": True, "json_bucket": "log-bucket",
        "language": "shell", "singularity": False, "job_tag": "", "metrics_interval": None,
        "spot_interruption_reruns": 0, "container_runtime": None,
    }
    assert {key: cfg[key] for key in expected} == expected
    assert cfg["awsf_image"].startswith("4dndcic/tibanna-awsf:")
    # Upstream's AMI map aged (its images cannot run the agent): the image is Amazon's current one,
    # read at launch (tests/backends/aws/test_aws_admin.py); a map given by the user still wins.
    assert cfg["ami_per_region"] == {}


def test_args_defaults_follow_upstream():
    args = jobspec.parse(CWL)["args"]
    for field in ("input_parameters", "input_env", "secondary_files", "secondary_output_target",
                  "alt_cond_output_argnames", "additional_benchmarking_parameters", "dependency"):
        assert args[field] == {}
    assert args["custom_errors"] == []
    assert (args["app_name"], args["app_version"]) == ("", "")
    assert (args["language"], args["cwl_version"]) == ("cwl_v1", "v1")
    assert (args["cwl_child_filenames"], args["cwl_directory_local"], args["run_args"]) == ([], "", "")
    assert args["singularity"] is False


def test_language_defaults():
    wdl = jobspec.parse(WDL)["args"]
    assert (wdl["workflow_engine"], wdl["run_args"], wdl["wdl_child_filenames"]) == ("cromwell", "", [])
    assert wdl["wdl_directory_local"] == ""
    snake = jobspec.parse(SNAKEMAKE)["args"]
    assert (snake["snakemake_child_filenames"], snake["snakemake_directory_url"]) == ([], "")
    assert "cwl_version" not in snake


def test_command_list_kept_as_given():
    assert jobspec.parse(SHELL)["args"]["command"] == SHELL["args"]["command"]


@pytest.mark.parametrize("config, expected", [
    ({"instance_type": "t3.micro", "ebs_size": 10}, False),
    ({"mem": 2, "cpu": 1, "ebs_size": 10}, False),
    ({"instance_type": "t3.micro"}, True),
    ({"mem": 2, "ebs_size": 10, "instance_type": ""}, False),
    ({"mem": 2, "cpu": 1, "ebs_size": 10, "use_benchmark": True}, True),
    ({}, True),
])
def test_use_benchmark_as_upstream(config, expected):
    data = variant(CWL, (a("app_name"), "md5"), (("config",), {"log_bucket": "log-bucket", **config}))
    assert jobspec.parse(data)["config"]["use_benchmark"] is expected


def test_benchmarkable_app_left_for_launch_time():
    data = variant(CWL, (a("app_name"), "md5"), (("config",), {"log_bucket": "log-bucket"}))
    parsed = jobspec.parse(data)
    cfg = parsed["config"]
    assert (cfg["ebs_size"], cfg["EBS_optimized"], cfg["instance_type"]) == (0, "", "")
    assert cfg["use_benchmark"] is True and cfg["job_tag"] == "md5"


@pytest.mark.parametrize("given, expected", [(0, 10), (3, 10), (10.0, 10), (50, 50), ("2.5x", "2.5x")])
def test_ebs_size_floor_for_non_benchmark_apps(given, expected):
    assert jobspec.parse(variant(SHELL, (c("ebs_size"), given)))["config"]["ebs_size"] == expected


def test_account_defaults():
    account = {"kms_key_id": "kms-123", "subnets": ["subnet-a", "subnet-b"], "security_groups": ["sg-1", "sg-2"]}
    cfg = jobspec.parse(SHELL, **account)["config"]
    assert (cfg["kms_key_id"], cfg["encrypt_s3_upload"]) == ("kms-123", True)
    assert cfg["subnet"] == ["subnet-a", "subnet-b"]
    assert cfg["security_group"] == "sg-1"
    given = jobspec.parse(variant(SHELL, (c("subnet"), "subnet-z"), (c("kms_key_id"), None)), **account)["config"]
    assert (given["subnet"], given["kms_key_id"], given["encrypt_s3_upload"]) == ("subnet-z", None, False)
    none = jobspec.parse(SHELL)["config"]
    assert (none["kms_key_id"], none["subnet"], none["security_group"]) == (None, "", "")


def test_singularity_reaches_config():
    assert jobspec.parse(variant(CWL, (a("singularity"), True)))["config"]["singularity"] is True


def test_unknown_fields_and_top_level_keys_pass_through():
    data = variant(SHELL, (a("my_field"), {"x": 1}), (c("my_setting"), [1, 2]), (("_tibanna",), {"env": "e"}),
                   (("parameters",), {"n": 8}))
    parsed = jobspec.parse(data)
    assert parsed["args"]["my_field"] == {"x": 1}
    assert parsed["config"]["my_setting"] == [1, 2]
    assert parsed["_tibanna"] == {"env": "e"} and parsed["parameters"] == {"n": 8}


def test_parse_does_not_touch_its_input():
    data = copy.deepcopy(CWL)
    jobspec.parse(data)
    assert data == CWL


# ---------------------------------------------------------------------------------------------
# jobid and dependency.

def test_jobid_argument_wins_and_none_is_created():
    assert "jobid" not in jobspec.parse(SHELL)
    assert "jobid" not in jobspec.parse(variant(SHELL, (("jobid",), "")))
    assert jobspec.parse(variant(SHELL, (("jobid",), "fromjson")))["jobid"] == "fromjson"
    parsed = jobspec.parse(variant(SHELL, (("jobid",), "fromjson")), jobid="fromarg")
    assert parsed["jobid"] == "fromarg" and list(parsed)[0] == "jobid"


def test_dependency_taken_top_level_then_args_then_config():
    top, arg, cfg = {"job_id": ["j1"]}, {"exec_arn": ["arn:1"]}, {"job_id": ["j3"]}
    data = variant(SHELL, (("dependency",), top), (a("dependency"), arg), (c("dependency"), cfg))
    assert jobspec.parse(data)["args"]["dependency"] == top
    assert jobspec.parse(variant(data, (("dependency",), DROP)))["args"]["dependency"] == arg
    only_cfg = variant(data, (("dependency",), DROP), (a("dependency"), DROP))
    assert jobspec.parse(only_cfg)["args"]["dependency"] == cfg


# ---------------------------------------------------------------------------------------------
# Input files.

def test_input_file_forms_normalised():
    data = variant(CWL, (a("input_files"), {
        "one": "s3://in-bucket/dir/a.bam",
        "nested": [["s3://in-bucket/a", "s3://in-bucket/b"], ["s3://in-bucket/c"]],
        "spec": {"bucket_name": "in-bucket", "object_key": ["x.gz", "y.gz"], "rename": ["x1.gz", "y1.gz"],
                 "unzip": "gz", "profile": "user1", "workflow_argument_name": "spec"},
        "mounted": {"bucket_name": "in-bucket", "object_key": "big.bam", "mount": True, "rename": "", "unzip": ""},
        "tidy": {"bucket_name": "in-bucket", "object_key": "a/../b.bam"},
    }), (a("secondary_files"), {"one": "s3://in-bucket/dir/a.bai", "nested": ["s3://in-bucket/a.i"]}))
    args = jobspec.parse(data)["args"]
    files = args["input_files"]
    assert files["one"] == {"bucket_name": "in-bucket", "object_key": "dir/a.bam"}
    assert files["nested"] == {"bucket_name": "in-bucket", "object_key": [["a", "b"], ["c"]]}
    assert files["spec"] == data["args"]["input_files"]["spec"]
    assert files["mounted"]["mount"] is True
    assert files["tidy"]["object_key"] == "a/../b.bam"
    assert args["secondary_files"] == {"one": {"bucket_name": "in-bucket", "object_key": "dir/a.bai"},
                                       "nested": {"bucket_name": "in-bucket", "object_key": ["a.i"]}}


def test_file_targets_for_shell_and_snakemake():
    data = variant(SHELL, (a("input_files"), {
        "file:///data1/shell/a": "s3://in-bucket/a",
        "file:///data1/input/b": "s3://in-bucket/b",
        "file:///data1/out/c": "s3://in-bucket/c",
        "plain": "s3://in-bucket/d",
    }))
    assert len(jobspec.parse(data)["args"]["input_files"]) == 4
    snake = variant(SNAKEMAKE, (a("input_files"), {"file:///data1/snakemake/x": "s3://in-bucket/x"}))
    assert jobspec.parse(snake)["args"]["input_files"]["file:///data1/snakemake/x"]["object_key"] == "x"


@pytest.mark.parametrize("key, expected", [
    ("a.bam", ["a.bam"]),
    ([["a", "b"], ["c"]], ["a", "b", "c"]),
    ([[["a"], ["b", "c"]]], ["a", "b", "c"]),
    ([], []),
])
def test_iter_keys(key, expected):
    assert jobspec.iter_keys(key) == expected


# ---------------------------------------------------------------------------------------------
# Output targets.

def test_output_targets_every_form():
    args = {"output_S3_bucket": "out-bucket", "output_target": {
        "plain": None,
        "empty": "",
        "renamed": "dir/out.txt",
        "into_dir": "dir/",
        "elsewhere": "s3://other-bucket/k/out.txt",
        "keyed": {"object_key": "k/x.txt", "bucket_name": "third-bucket", "tag": "Project=a&Owner=b"},
        "prefixed": {"object_prefix": "zipdir", "unzip": True},
        "file:///data1/out/report": "reports/report.txt",
        "file:///data1/out/sub/../dir/": {"object_prefix": "dirs/"},
    }}
    assert jobspec.output_targets(args) == [
        OutputTarget("plain", "out-bucket", None, None),
        OutputTarget("empty", "out-bucket", None, None),
        OutputTarget("renamed", "out-bucket", "dir/out.txt", None),
        OutputTarget("into_dir", "out-bucket", None, "dir/"),
        OutputTarget("elsewhere", "other-bucket", "k/out.txt", None),
        OutputTarget("keyed", "third-bucket", "k/x.txt", None, tag="Project=a&Owner=b"),
        OutputTarget("prefixed", "out-bucket", None, "zipdir/", unzip=True),
        OutputTarget("/data1/out/report", "out-bucket", "reports/report.txt", None),
        OutputTarget("/data1/out/dir", "out-bucket", None, "dirs/"),
    ]


def test_output_targets_empty():
    assert jobspec.output_targets({"output_S3_bucket": "out-bucket"}) == []


def test_secondary_output_targets():
    args = {"secondary_output_target": {"bam": "x.bai", "pairs": ["p.px2", "p.tbi"]}}
    assert jobspec.secondary_output_targets(args) == {"bam": ["x.bai"], "pairs": ["p.px2", "p.tbi"]}
    assert jobspec.secondary_output_targets({}) == {}
    assert jobspec.secondary_output_targets({"secondary_output_target": {"bam": "s3://b-bucket/x.bai"}}) \
        == {"bam": ["s3://b-bucket/x.bai"]}


# ---------------------------------------------------------------------------------------------
# Loading and redaction.

def test_load_description_copies_dicts():
    loaded = jobspec.load_description(SHELL)
    loaded["args"]["command"].append("more")
    assert loaded != SHELL


def test_load_description_from_paths(tmp_path: Path):
    path = tmp_path / "job.json"
    path.write_text(json.dumps(SHELL))
    assert jobspec.load_description(path) == SHELL
    assert jobspec.parse(str(path))["args"]["language"] == "shell"


@pytest.mark.parametrize("content", [None, "{not json", "[1, 2]"])
def test_load_description_refusals(tmp_path: Path, content):
    path = tmp_path / "job.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(MalFormattedInputJsonException, match=r"^input_json: "):
        jobspec.load_description(path)


def test_load_description_other_types():
    with pytest.raises(MalFormattedInputJsonException,
                       match=r"^input_json: input json must be either a file or a dictionary"):
        jobspec.load_description(42)  # type: ignore[arg-type]


def test_redacted():
    data = variant(SHELL, (c("password"), "pw"), (c("aws_secret_key"), "s"), (c("profile_access_key"), "k"),
                   (c("SECRET_TOKEN"), "t"))
    clean = jobspec.redacted(data)
    assert [clean["config"][k] for k in ("password", "aws_secret_key", "profile_access_key", "SECRET_TOKEN")] \
        == ["", "", "", ""]
    assert clean["config"]["log_bucket"] == "log-bucket"
    assert data["config"]["password"] == "pw"


# ---------------------------------------------------------------------------------------------
# The published JSON Schema.

SCHEMA = jsonschema.Draft202012Validator(json.loads(jobspec.SCHEMA_PATH.read_text()))


def test_schema_file_is_what_the_models_generate():
    assert jobspec.SCHEMA_PATH.read_text() == jobspec.json_schema_text(), \
        "stale: regenerate with `tibanna job_schema > tibanna/jobspec/job.schema.json`"
    jsonschema.Draft202012Validator.check_schema(SCHEMA.schema)
    assert SCHEMA.schema["title"] == "Tibanna job description"
    assert set(SCHEMA.schema["$defs"]) >= {"Config", "CwlArgs", "WdlArgs", "SnakemakeArgs", "ShellArgs", "InputFile",
                                           "OutputDestination", "CustomError", "Dependency"}


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_accepted_upstream_description_valid_by_the_schema(path: Path):
    jobspec.parse(path)
    SCHEMA.validate(json.loads(path.read_text()))


@pytest.mark.parametrize("base", [SHELL, CWL, WDL, SNAKEMAKE], ids=["shell", "cwl", "wdl", "snakemake"])
def test_parsed_description_valid_by_the_schema(base):
    SCHEMA.validate(base)
    SCHEMA.validate(jobspec.parse(base))


@pytest.mark.parametrize("changes, where", [
    ([(c("ebs_type"), "gp9")], ["config", "ebs_type"]),
    ([(c("log_bucket"), DROP)], ["config"]),
    ([(c("spot_instance"), "yes")], ["config", "spot_instance"]),
    ([(a("input_files"), {"in": {"bucket_name": "My_Bucket", "object_key": "x"}})], ["args"]),
    ([(a("container_image"), DROP)], ["args"]),
    ([(a("language"), "python")], ["args"]),
])
def test_schema_refuses_what_the_parser_refuses(changes, where):
    data = variant(SHELL, *changes)
    with pytest.raises(TibannaError):
        jobspec.parse(data)
    errors = list(SCHEMA.iter_errors(data))
    assert errors and any(list(error.absolute_path)[:len(where)] == where for error in errors), errors


# ---------------------------------------------------------------------------------------------
# Refusals: (id, base, changes, exception, message prefix). Every message starts with the path.

NOT_ENOUGH = "config.instance_type: Not enough fields: app_name must be provided in args to use Benchmarking."
MALFORMED = [
    # the description's sections
    ("no-args", SHELL, [(("args",), DROP)], MissingFieldInInputJsonException, "args: field args is required"),
    ("args-not-dict", SHELL, [(("args",), [])], MalFormattedInputJsonException, "args: must be a dictionary"),
    ("no-config", SHELL, [(("config",), DROP)], MissingFieldInInputJsonException, "config: field config"),
    ("no-output-bucket", SHELL, [(a("output_S3_bucket"), DROP)], MissingFieldInInputJsonException,
     "args.output_S3_bucket: field output_S3_bucket is required in args"),
    ("no-log-bucket", SHELL, [(c("log_bucket"), DROP)], MissingFieldInInputJsonException,
     "config.log_bucket: field log_bucket is required in config"),
    ("bad-output-bucket", SHELL, [(a("output_S3_bucket"), "My_Bucket")], MalFormattedInputJsonException,
     'args.output_S3_bucket: "My_Bucket" is not a valid bucket name'),
    ("bad-log-bucket", SHELL, [(c("log_bucket"), "ab")], MalFormattedInputJsonException, "config.log_bucket: "),
    ("jobid-form", SHELL, [(("jobid",), "bad id")], MalFormattedInputJsonException, "jobid: "),
    # languages and their fields
    ("cwl-draft3", CWL, [(a("cwl_version"), "draft3")], UnsupportedCWLVersionException,
     "args.cwl_version: CWL draft3 is no longer supported. Please switched to v1"),
    ("language-cwl-draft3", CWL, [(a("language"), "cwl_draft3")], UnsupportedCWLVersionException,
     "args.language: CWL draft3 is no longer supported"),
    ("cwl-version-unknown", CWL, [(a("cwl_version"), "v1.2")], MalFormattedInputJsonException,
     "args.cwl_version: must be v1"),
    ("language-unknown", CWL, [(a("language"), "python")], MalFormattedInputJsonException,
     "args.language: must be one of"),
    ("cwl-no-main", CWL, [(a("cwl_main_filename"), DROP)], MissingFieldInInputJsonException,
     "args.cwl_main_filename: field cwl_main_filename is required in args for language cwl_v1"),
    ("cwl-no-directory", CWL, [(a("cwl_directory_url"), DROP)], MissingFieldInInputJsonException,
     "args.cwl_directory_url: either cwl_directory_url or cwl_directory_local must be provided in args"),
    ("cwl-bad-url", CWL, [(a("cwl_directory_url"), "ftp://example.org/cwl")], MalFormattedInputJsonException,
     "args.cwl_directory_url: must be an http(s):// or s3:// url"),
    ("wdl-no-main", WDL, [(a("wdl_main_filename"), DROP)], MissingFieldInInputJsonException,
     "args.wdl_main_filename: field wdl_main_filename is required in args for language wdl_v1"),
    ("wdl-no-directory", WDL, [(a("wdl_directory_url"), "")], MissingFieldInInputJsonException,
     "args.wdl_directory_url: either wdl_directory_url or wdl_directory_local must be provided in args"),
    ("snakemake-no-image", SNAKEMAKE, [(a("container_image"), DROP)], MissingFieldInInputJsonException,
     "args.container_image: field container_image is required in args for language snakemake"),
    ("snakemake-no-directory", SNAKEMAKE, [(a("snakemake_directory_local"), DROP)], MissingFieldInInputJsonException,
     "args.snakemake_directory_url: either snakemake_directory_url or snakemake_directory_local"),
    ("shell-no-command", SHELL, [(a("command"), DROP)], MissingFieldInInputJsonException,
     "args.command: field command is required in args for language shell"),
    ("command-type", SHELL, [(a("command"), 5)], MalFormattedInputJsonException,
     "args.command: command must be either a string or a list"),
    ("command-list-items", SHELL, [(a("command"), ["ls", 3])], MalFormattedInputJsonException,
     "args.command: command must be either a string or a list"),
    ("singularity-type", CWL, [(a("singularity"), "yes")], MalFormattedInputJsonException,
     "args.singularity: must be true or false"),
    # input files
    ("input-files-type", CWL, [(a("input_files"), ["s3://in-bucket/a"])], MalFormattedInputJsonException,
     "args.input_files: 'input_files' must be provided as a dictionary (key-value pairs)"),
    ("input-not-s3", CWL, [(a("input_files", "bam"), "https://x/a.bam")], MalFormattedInputJsonException,
     "args.input_files.bam: S3 url must begin with 's3://'"),
    ("input-no-key", CWL, [(a("input_files", "bam"), "s3://in-bucket")], MalFormattedInputJsonException,
     "args.input_files.bam: S3 url has no object key"),
    ("input-two-buckets", CWL, [(a("input_files", "bam"), ["s3://in-bucket/a", ["s3://other-bucket/b"]])],
     MalFormattedInputJsonException, "args.input_files.bam: All the input files corresponding to a single input "
     "file argument must be from the same bucket."),
    ("input-dict-no-key", CWL, [(a("input_files", "bam", "object_key"), DROP)], MalFormattedInputJsonException,
     "args.input_files.bam: Each input_file value must be either a string starting with 's3://' or a dictionary"),
    ("input-number", CWL, [(a("input_files", "bam"), 7)], MalFormattedInputJsonException,
     "args.input_files.bam: Each input_file value must be"),
    ("input-bad-bucket", CWL, [(a("input_files", "bam", "bucket_name"), "in_bucket")],
     MalFormattedInputJsonException, "args.input_files.bam.bucket_name: "),
    ("input-too-deep", CWL, [(a("input_files", "bam", "object_key"), [[[["a"]]]])], MalFormattedInputJsonException,
     "args.input_files.bam.object_key[0][0][0]: lists of keys may be nested at most 3 deep"),
    ("unzip-value", CWL, [(a("input_files", "bam", "unzip"), "zip")], MalFormattedInputJsonException,
     "args.input_files.bam.unzip: unzip field must be gz, bz2 or ''"),
    ("secondary-unzip", CWL, [(a("secondary_files"), {"bam": {"bucket_name": "in-bucket", "object_key": "a.bai",
                                                              "unzip": "xz"}})],
     MalFormattedInputJsonException, "args.secondary_files.bam.unzip: unzip field must be gz, bz2 or ''"),
    ("secondary-not-s3", CWL, [(a("secondary_files"), {"bam": "a.bai"})], MalFormattedInputJsonException,
     "args.secondary_files.bam: S3 url must begin with 's3://'"),
    ("mount-with-rename", CWL, [(a("input_files", "bam", "mount"), True), (a("input_files", "bam", "rename"), "b.bam")],
     MalFormattedRunJsonException,
     "args.input_files.bam: Incompatible input for file a.bam: rename and mount cannot be used together."),
    ("mount-with-unzip", CWL, [(a("input_files", "bam", "mount"), True), (a("input_files", "bam", "unzip"), "gz")],
     MalFormattedRunJsonException,
     "args.input_files.bam: Incompatible input for file a.bam: unzip and mount cannot be used together."),
    ("mount-type", CWL, [(a("input_files", "bam", "mount"), "yes")], MalFormattedInputJsonException,
     "args.input_files.bam.mount: must be true or false"),
    ("rename-shape", CWL, [(a("input_files", "bam", "rename"), ["x", "y"])], MalFormattedInputJsonException,
     "args.input_files.bam.rename: rename must have the same shape as object_key"),
    ("file-key-with-cwl", CWL, [(a("input_files", "file:///data1/input/x"), "s3://in-bucket/x")],
     MalFormattedRunJsonException,
     "args.input_files.file:///data1/input/x: input file has to be defined with argument name for CWL and WDL"),
    ("file-key-with-wdl", WDL, [(a("input_files"), {"file:///data1/input/x": "s3://in-bucket/x"})],
     MalFormattedRunJsonException, "args.input_files.file:///data1/input/x: input file has to be defined"),
    ("file-key-outside-data1", SHELL, [(a("input_files"), {"file:///tmp/x": "s3://in-bucket/x"})],
     MalFormattedInputJsonException, "args.input_files.file:///tmp/x: input target directory must be in /data1/"),
    ("file-key-other-language-dir", SHELL, [(a("input_files"), {"file:///data1/cwl/x": "s3://in-bucket/x"})],
     MalFormattedInputJsonException, "args.input_files.file:///data1/cwl/x: input target directory must be in "
     "/data1/input, /data1/out or /data1/shell"),
    # input env, custom errors, dependency
    ("input-env-type", SHELL, [(a("input_env"), ["A=1"])], MalFormattedInputJsonException,
     "args.input_env: must be a dictionary"),
    ("input-env-value", SHELL, [(a("input_env"), {"A": {"b": 1}})], MalFormattedInputJsonException,
     "args.input_env.A: must be a string, number or boolean"),
    ("input-env-name", SHELL, [(a("input_env"), {"1A": "x"})], MalFormattedInputJsonException,
     "args.input_env.1A: is not a valid environment variable name"),
    ("custom-errors-type", SHELL, [(a("custom_errors"), {"error_type": "x"})], MalFormattedInputJsonException,
     "args.custom_errors: must be a list"),
    ("custom-error-no-pattern", SHELL, [(a("custom_errors"), [{"error_type": "Boom"}])],
     MissingFieldInInputJsonException, "args.custom_errors[0].pattern: field pattern is required"),
    ("custom-error-no-type", SHELL, [(a("custom_errors"), [{"pattern": "x"}])], MissingFieldInInputJsonException,
     "args.custom_errors[0].error_type: field error_type is required"),
    ("custom-error-bad-regex", SHELL, [(a("custom_errors"), [{"error_type": "Boom", "pattern": "(unclosed"}])],
     MalFormattedInputJsonException, 'args.custom_errors[0].pattern: "(unclosed" is not a valid regular expression'),
    ("dependency-type", SHELL, [(("dependency",), "job1")], MalFormattedInputJsonException, "dependency: must be"),
    ("dependency-ids-type", SHELL, [(a("dependency"), {"exec_arn": "arn:1"})], MalFormattedInputJsonException,
     "args.dependency.exec_arn: must be a list of strings"),
    ("dependency-unknown-field", SHELL, [(c("dependency"), {"jobs": ["j1"]})], MalFormattedInputJsonException,
     "config.dependency.jobs: unknown field"),
    # outputs
    ("output-target-type", CWL, [(a("output_target"), ["out"])], MalFormattedInputJsonException,
     "args.output_target: must be a dictionary"),
    ("output-key-and-prefix", CWL, [(a("output_target", "out"), {"object_key": "a", "object_prefix": "b/"})],
     MalFormattedInputJsonException,
     "args.output_target.out: Specify either object_key or object_prefix, but not both in output_target"),
    ("output-key-slash", CWL, [(a("output_target", "out"), {"object_key": "a/"})], MalFormattedInputJsonException,
     "args.output_target.out.object_key: object_key cannot end with '/' - please use object_prefix instead"),
    ("output-unzip-no-prefix", CWL, [(a("output_target", "out"), {"object_key": "a.zip", "unzip": True})],
     MalFormattedInputJsonException, "args.output_target.out: object_prefix must be given with unzip=True"),
    ("output-unzip-type", CWL, [(a("output_target", "out"), {"object_prefix": "a/", "unzip": "yes"})],
     MalFormattedInputJsonException, "args.output_target.out.unzip: must be true or false"),
    ("output-no-key-or-prefix", CWL, [(a("output_target", "out"), {"bucket_name": "out-bucket"})],
     MalFormattedInputJsonException, "args.output_target.out: output_target needs object_key or object_prefix"),
    ("output-value-type", CWL, [(a("output_target", "out"), 5)], MalFormattedInputJsonException,
     "args.output_target.out: must be an object key, an s3:// url or a dictionary"),
    ("output-bad-bucket", CWL, [(a("output_target", "out"), "s3://Bad_Bucket/x")], MalFormattedInputJsonException,
     'args.output_target.out: "Bad_Bucket" is not a valid bucket name'),
    ("output-bad-tag", CWL, [(a("output_target", "out"), {"object_key": "x", "tag": "novalue"})],
     MalFormattedInputJsonException, "args.output_target.out.tag: must be"),
    ("output-file-outside-data1", SHELL, [(a("output_target"), {"file:///tmp/x": "x"})],
     MalFormattedInputJsonException, "args.output_target.file:///tmp/x: output target must be in /data1/"),
    ("output-file-no-value", SHELL, [(a("output_target"), {"file:///data1/out/x": ""})],
     MalFormattedInputJsonException,
     "args.output_target.file:///data1/out/x: output_target missing for target file:///data1/out/x"),
    ("shell-output-argname", SHELL, [(a("output_target"), {"out": "x"})], MalFormattedInputJsonException,
     "args.output_target.out: shell jobs have no output arguments"),
    ("secondary-output-type", CWL, [(a("secondary_output_target"), {"out": 5})], MalFormattedInputJsonException,
     "args.secondary_output_target.out: must be a key or a list of keys"),
    ("alt-cond-type", WDL, [(a("alt_cond_output_argnames"), {"w.out": "w.a.out"})], MalFormattedInputJsonException,
     "args.alt_cond_output_argnames.w.out: must be a list of argnames"),
    # machine sizing and config types
    ("not-enough-fields", CWL, [(("config",), {"log_bucket": "log-bucket"})], MissingFieldInInputJsonException,
     NOT_ENOUGH),
    ("not-enough-mem-only", CWL, [(("config",), {"log_bucket": "log-bucket", "mem": 4})],
     MissingFieldInInputJsonException, NOT_ENOUGH),
    ("not-enough-unknown-app", CWL, [(a("app_name"), "my-app"), (("config",), {"log_bucket": "log-bucket"})],
     MissingFieldInInputJsonException, NOT_ENOUGH),
    ("ebs-size-word", SHELL, [(c("ebs_size"), "3y")], MalFormattedInputJsonException,
     'config.ebs_size: "3y" is neither a number nor "<n>x"'),
    ("ebs-size-digits-string", SHELL, [(c("ebs_size"), "30")], MalFormattedInputJsonException,
     'config.ebs_size: "30" is neither a number nor "<n>x"'),
    ("ebs-size-negative", SHELL, [(c("ebs_size"), -1)], MalFormattedInputJsonException,
     "config.ebs_size: must be a whole number of GB >= 0"),
    ("ebs-size-fraction", SHELL, [(c("ebs_size"), 10.5)], MalFormattedInputJsonException,
     "config.ebs_size: must be a whole number of GB >= 0"),
    ("ebs-size-limit", SHELL, [(c("ebs_size"), 16000), (c("ebs_size_as_is"), True)], EC2LaunchException,
     "config.ebs_size: EBS size limit (16TB) exceeded: (attempted size: 16000)"),
    ("ebs-size-limit-with-overhead", SHELL, [(c("ebs_size"), 15996)], EC2LaunchException,
     "config.ebs_size: EBS size limit (16TB) exceeded: (attempted size: 16001)"),
    ("ebs-throughput-low", SHELL, [(c("ebs_throughput"), 100)], EC2LaunchException,
     "config.ebs_throughput: Invalid EBS throughput. Specify a value between 125 and 1000."),
    ("ebs-throughput-high", SHELL, [(c("ebs_throughput"), 2000), (c("ebs_type"), "gp3")], EC2LaunchException,
     "config.ebs_throughput: Invalid EBS throughput."),
    ("ebs-throughput-type", SHELL, [(c("ebs_throughput"), "fast")], MalFormattedInputJsonException,
     "config.ebs_throughput: must be a positive whole number"),
    ("ebs-type", SHELL, [(c("ebs_type"), "gp9")], MalFormattedInputJsonException, "config.ebs_type: must be one of"),
    ("ebs-iops", SHELL, [(c("ebs_iops"), -5)], MalFormattedInputJsonException, "config.ebs_iops: "),
    ("root-ebs-size", SHELL, [(c("root_ebs_size"), 0)], MalFormattedInputJsonException, "config.root_ebs_size: "),
    ("cpu-type", CWL, [(c("cpu"), "two")], MalFormattedInputJsonException,
     'config.cpu: must be a number of vCPUs, not "two"'),
    ("mem-type", CWL, [(c("mem"), "4GB")], MalFormattedInputJsonException, "config.mem: must be a number of GB"),
    ("instance-type-type", SHELL, [(c("instance_type"), 5)], MalFormattedInputJsonException,
     "config.instance_type: must be an instance type or a list of them"),
    ("instance-type-list-items", SHELL, [(c("instance_type"), ["t3.micro", 3])], MalFormattedInputJsonException,
     "config.instance_type: "),
    ("shutdown-min", SHELL, [(c("shutdown_min"), "soon")], MalFormattedInputJsonException,
     "config.shutdown_min: must be a number of minutes or 'now'"),
    ("spot-instance-type", SHELL, [(c("spot_instance"), "yes")], MalFormattedInputJsonException,
     "config.spot_instance: must be true or false"),
    ("ebs-optimized-type", SHELL, [(c("EBS_optimized"), "yes")], MalFormattedInputJsonException,
     "config.EBS_optimized: "),
    ("capacity-behavior", SHELL, [(c("behavior_on_capacity_limit"), "explode")], MalFormattedInputJsonException,
     "config.behavior_on_capacity_limit: must be one of"),
    ("retry-without-spot-needs-spot", SHELL, [(c("behavior_on_capacity_limit"), "retry_without_spot")],
     MalFormattedInputJsonException, "config.behavior_on_capacity_limit: 'behavior_on_capacity_limit': "
     "'retry_without_spot' works only with 'spot_instance' : true"),
    ("subnet-type", SHELL, [(c("subnet"), 5)], MalFormattedInputJsonException, "config.subnet: "),
    ("password-type", SHELL, [(c("password"), 1234)], MalFormattedInputJsonException, "config.password: "),
    ("metrics-interval-zero", SHELL, [(c("metrics_interval"), 0)], MalFormattedInputJsonException,
     "config.metrics_interval: must be a positive number of seconds or null"),
    ("metrics-interval-type", SHELL, [(c("metrics_interval"), "fast")], MalFormattedInputJsonException,
     "config.metrics_interval: "),
    ("spot-reruns-negative", SHELL, [(c("spot_interruption_reruns"), -1)], MalFormattedInputJsonException,
     "config.spot_interruption_reruns: must be a whole number >= 0"),
    ("spot-reruns-fraction", SHELL, [(c("spot_interruption_reruns"), 1.5)], MalFormattedInputJsonException,
     "config.spot_interruption_reruns: "),
    ("container-runtime", SHELL, [(c("container_runtime"), "lxc")], MalFormattedInputJsonException,
     "config.container_runtime: must be null or one of auto, docker, podman, none"),
]

ESCAPES = [
    ("rename-absolute", CWL, [(a("input_files", "bam", "rename"), "/etc/passwd")], "args.input_files.bam.rename: "),
    ("rename-dotdot", CWL, [(a("input_files", "bam", "rename"), "../../x")], "args.input_files.bam.rename: "),
    ("rename-nested-dotdot", CWL, [(a("input_files", "bam"), {"bucket_name": "in-bucket", "object_key": ["a", "b"],
                                                              "rename": ["a", "x/../../b"]})],
     "args.input_files.bam.rename[1]: "),
    ("key-dotdot", CWL, [(a("input_files", "bam", "object_key"), "../other/a.bam")],
     "args.input_files.bam.object_key: "),
    ("key-absolute", CWL, [(a("input_files", "bam", "object_key"), "/a.bam")], "args.input_files.bam.object_key: "),
    ("key-in-list", CWL, [(a("input_files", "bam", "object_key"), ["ok", "a/../../b"])],
     "args.input_files.bam.object_key[1]: "),
    ("url-key-dotdot", CWL, [(a("input_files", "bam"), "s3://in-bucket/../x")], "args.input_files.bam.object_key: "),
    ("file-target-dotdot", SHELL, [(a("input_files"), {"file:///data1/shell/../../etc/x": "s3://in-bucket/x"})],
     "args.input_files.file:///data1/shell/../../etc/x: input target directory must be in /data1/"),
    ("file-target-sideways", SHELL, [(a("input_files"), {"file:///data1/input/../secret/x": "s3://in-bucket/x"})],
     "args.input_files.file:///data1/input/../secret/x: input target directory must be in /data1/input"),
    ("output-key-dotdot", CWL, [(a("output_target", "out"), "../x")], "args.output_target.out: "),
    ("output-key-absolute", CWL, [(a("output_target", "out"), {"object_key": "/x"})],
     "args.output_target.out.object_key: "),
    ("output-prefix-dotdot", CWL, [(a("output_target", "out"), {"object_prefix": "a/../../"})],
     "args.output_target.out.object_prefix: "),
    ("output-url-dotdot", CWL, [(a("output_target", "out"), "s3://out-bucket/../x")], "args.output_target.out: "),
    ("output-file-dotdot", SHELL, [(a("output_target"), {"file:///data1/out/../../etc/x": "x"})],
     "args.output_target.file:///data1/out/../../etc/x: output target must be in /data1/"),
    ("secondary-output-dotdot", CWL, [(a("secondary_output_target"), {"out": ["ok.bai", "../x.bai"]})],
     "args.secondary_output_target.out[1]: "),
    ("main-filename-dotdot", CWL, [(a("cwl_main_filename"), "../main.cwl")], "args.cwl_main_filename: "),
    ("child-filename-absolute", CWL, [(a("cwl_child_filenames"), ["/etc/x.cwl"])], "args.cwl_child_filenames[0]: "),
]


@pytest.mark.parametrize("base, changes, exc, prefix", [case[1:] for case in MALFORMED],
                         ids=[case[0] for case in MALFORMED])
def test_malformed_refused(base, changes, exc, prefix):
    with pytest.raises(TibannaError) as info:
        jobspec.parse(variant(base, *changes))
    assert type(info.value) is exc
    message = str(info.value)
    assert message.startswith(prefix), message
    assert "\n" not in message


@pytest.mark.parametrize("base, changes, prefix", [case[1:] for case in ESCAPES], ids=[case[0] for case in ESCAPES])
def test_escape_refused(base, changes, prefix):
    with pytest.raises(MalFormattedInputJsonException) as info:
        jobspec.parse(variant(base, *changes))
    assert str(info.value).startswith(prefix), str(info.value)


def test_jobid_argument_validated():
    with pytest.raises(MalFormattedInputJsonException, match=r"^jobid: "):
        jobspec.parse(SHELL, jobid="../escape")


def test_every_refusal_is_a_user_error():
    """All parse-time refusals derive from TibannaError (callers catch one class)."""
    assert len(MALFORMED) + len(ESCAPES) >= 40


# ---------------------------------------------------------------------------------------------
# Hostile input: every malformed description is refused with a TibannaError naming its field.

def _refusal(description) -> str:
    """The one-line message a description is refused with (any other exception fails the test)."""
    with pytest.raises(TibannaError) as info:
        jobspec.parse(description)
    message = str(info.value)
    assert message.splitlines() == [message], message
    return message


@pytest.mark.parametrize("depth", [jobspec.MAX_NESTING, jobspec.MAX_NESTING + 1, 500, 5000, 100_000])
@pytest.mark.parametrize("kind", ["list", "dict"])
def test_deep_nesting_refused_before_anything_recurses(depth, kind):
    data = variant(SHELL, (a("my_field"), nest(depth - 2, kind)))  # args.my_field is 2 levels down
    if depth <= jobspec.MAX_NESTING:
        assert jobspec.parse(data)["args"]["my_field"] == data["args"]["my_field"]
    else:
        step = "[0]" if kind == "list" else ".a"
        message = _refusal(data)
        assert message.startswith(f"args.my_field{step}{step}")
        assert message.endswith(f": nested more than {jobspec.MAX_NESTING} levels deep"), message


def test_deep_nesting_in_a_checked_field_refused():
    data = variant(CWL, (a("input_files", "bam", "object_key"), nest(300, "list")))
    assert _refusal(data).startswith("args.input_files.bam.object_key[0][0]")


@pytest.mark.parametrize("depth, prefix", [(500, "args[0][0][0]"), (200_000, "input_json: cannot read ")])
def test_deep_nesting_in_a_file_refused(tmp_path: Path, depth, prefix):
    path = tmp_path / "deep.json"
    path.write_text('{"args": ' + "[" * depth + "]" * depth + ', "config": {}}')
    message = _refusal(path)
    assert message.startswith(prefix) and "nested more than 100 levels deep" in message, message


def test_self_containing_dict_refused():
    data = copy.deepcopy(SHELL)
    data["args"]["loop"] = data["args"]
    assert _refusal(data).startswith("args.loop.loop.loop")


@pytest.mark.parametrize("field", ["object_key", "object_prefix"])
@pytest.mark.parametrize("unzip", [None, True, False])
def test_output_target_null_destination_refused(field, unzip):
    entry = {field: None} if unzip is None else {field: None, "unzip": unzip}
    message = _refusal(variant(CWL, (a("output_target", "out"), entry)))
    if unzip and field == "object_key":
        assert message == "args.output_target.out: object_prefix must be given with unzip=True"
    else:
        assert message.startswith(f"args.output_target.out.{field}: must be a non-empty string, not null")


def test_output_target_null_destination_refused_in_a_shell_file_target():
    data = variant(SHELL, (a("output_target"), {"file:///data1/out/x": {"object_prefix": None, "unzip": True}}))
    assert _refusal(data).startswith("args.output_target.file:///data1/out/x.object_prefix: ")


def test_output_target_null_bucket_named_as_itself():
    data = variant(CWL, (a("output_target", "out"), {"object_key": "x", "bucket_name": None}))
    assert _refusal(data).startswith("args.output_target.out.bucket_name: null is not a valid bucket name")


def test_output_target_null_tag_means_no_tag():
    parsed = jobspec.parse(variant(CWL, (a("output_target", "out"), {"object_key": "x", "tag": None})))
    assert jobspec.output_targets(parsed["args"])[0].tag is None


@pytest.mark.parametrize("value", [[], {}, 0, False, 7, ["j1"]])
def test_jobid_of_another_type_refused(value):
    assert _refusal(variant(SHELL, (("jobid",), value))).startswith(f"jobid: {json.dumps(value)} is not a valid job id")


@pytest.mark.parametrize("value, problem", [
    ("a\x00b", "the value holds a NUL character"),
    ("\ud800x", "the value is not Unicode text (it holds a lone surrogate)"),
])
@pytest.mark.parametrize("where", [a("input_files", "bam", "object_key"), a("my_field"), c("key_name"),
                                   ("_tibanna",)])
def test_strings_that_are_not_text_refused(where, value, problem):
    path = ".".join(where)
    assert _refusal(variant(CWL, (where, value))) == f"{path}: {problem}"


def test_keys_that_are_not_text_refused():
    message = _refusal(variant(SHELL, (a("input_env"), {"A\ud800\nB": "1"})))
    assert message == r"args.input_env.A\ud800\nB: the key is not Unicode text (it holds a lone surrogate)"
    assert _refusal(variant(SHELL, (c("ami_per_region"), {"x86": {3: "ami-1"}}))) \
        == "config.ami_per_region.x86: keys must be strings, not int"


@pytest.mark.parametrize("name", ["A\nB", "A\rB", "A\u2028B", "A\x1eB", "A\x85B"])
def test_refusal_stays_on_one_line_whatever_the_key(name):
    message = _refusal(variant(SHELL, (a("input_env"), {name: "1"})))
    assert message.startswith("args.input_env.A\\") and message.endswith(": is not a valid environment variable name")


def test_huge_key_cut_in_the_message():
    message = _refusal(variant(SHELL, (a("input_env"), {"9" + "x" * 1_000_000: "1"})))
    assert message.startswith("args.input_env.9xxx") and len(message) < 300


@pytest.mark.parametrize("value, problem", [
    (10**400, "is too large a number (1329 bits)"),
    ({1, 2}, "must be JSON data (a string, number, boolean, null, list or dictionary), not set"),
    (b"bytes", "must be JSON data (a string, number, boolean, null, list or dictionary), not bytes"),
    (object(), "must be JSON data (a string, number, boolean, null, list or dictionary), not object"),
])
@pytest.mark.parametrize("where", [c("mem"), c("ebs_size"), a("my_field")])
def test_values_that_are_not_json_data_refused(where, value, problem):
    assert _refusal(variant(CWL, (where, value))) == f"{'.'.join(where)}: {problem}"


def test_large_numbers_that_are_json_data_keep_their_rules():
    assert _refusal(variant(CWL, (c("mem"), 10**300), (c("cpu"), 10**300), (c("ebs_size"), 10**300))) \
        .startswith("config.ebs_size: EBS size limit (16TB) exceeded")
    assert _refusal(variant(CWL, (c("mem"), float("inf")))).startswith("config.mem: must be a number of GB")


@pytest.mark.parametrize("pattern, problem", [
    ("(" * 3000 + ")" * 3000, "its groups are nested too deeply"),
    ("a{99999999999}", "the repetition number is too large"),
])
def test_custom_error_pattern_the_regex_parser_chokes_on_refused(pattern, problem):
    message = _refusal(variant(SHELL, (a("custom_errors"), [{"error_type": "Boom", "pattern": pattern}])))
    assert message.startswith("args.custom_errors[0].pattern: ") and message.endswith(problem), message


def test_file_with_escaped_surrogate_refused(tmp_path: Path):
    path = tmp_path / "job.json"
    path.write_text(json.dumps(variant(SHELL, (a("app_name"), "\udcff"))))
    assert _refusal(path) == "args.app_name: the value is not Unicode text (it holds a lone surrogate)"


def test_cli_refuses_a_deep_file_in_one_line_and_starts_nothing(home: Path, tmp_path: Path):
    path = tmp_path / "deep.json"
    path.write_text('{"args": {"x": ' + "[" * 100_000 + "]" * 100_000 + '}, "config": {}}')
    done = subprocess.run([sys.executable, "-m", "tibanna.cli", "run_workflow", "-i", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("tibanna run_workflow: error: input_json: cannot read ")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert not (home / "jobs").exists()


@hyp.settings(max_examples=150, deadline=None, database=None,
              suppress_health_check=[hyp.HealthCheck.too_slow, hyp.HealthCheck.data_too_large,
                                     hyp.HealthCheck.function_scoped_fixture])
@hyp.given(description=mutants([*corpus(), SHELL, CWL, WDL, SNAKEMAKE]), via_file=st.booleans())
def test_fuzzed_descriptions_accepted_or_refused_by_field(description, via_file, tmp_path):
    """Mutants of valid descriptions: accepted, or refused with a one-line TibannaError naming a field."""
    if via_file:
        try:
            text = json.dumps(description)
        except RecursionError:  # deeper than json.dumps writes: parse the dict instead
            text = None
        if text is not None:
            description = tmp_path / "mutant.json"
            description.write_text(text)
    assert outcome(description) in ("accepted", "refused")
