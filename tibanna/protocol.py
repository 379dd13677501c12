"""The log-bucket protocol (docs/design.md 3.2) and the status words (docs/design.md 3.3), shared by every part.

Both backends and the agent speak through objects in the job's log bucket, under upstream's keys.
"""
from __future__ import annotations

import copy
import datetime as dt
import json
import re
from typing import Any, Iterable

# Time stamps in run/postrun JSON and the index, as upstream writes them.
TIME_FORMAT = "%Y%m%d-%H:%M:%S-UTC"

RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED = "RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"
STATUSES = (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED)
TERMINAL_STATUSES = (SUCCEEDED, FAILED, TIMED_OUT, ABORTED)

# Suffixes of the per-job objects in the log bucket: the key is `<jobid><suffix>`.
RUN_JSON = ".run.json"
SECRET_ENV = ".secret_env.json"  # AWS only: secret input_env values, read and deleted by the agent
JOB_STARTED = ".job_started"
LOG = ".log"
TOP = ".top"
TOP_LATEST = ".top_latest"
POSTRUN_JSON = ".postrun.json"
SUCCESS = ".success"
ERROR = ".error"
ABORTED_MARKER = ".aborted"
SPOT_FAILURE = ".spot_failure"
WORKFLOW_DIR = ".workflow/"
METRICS_DIR = ".metrics/"
# Resource samples the agent appends while a job runs (their format: tibanna/samples.py).
METRICS_SAMPLES = METRICS_DIR + "samples.tsv"
INPUT_JSON = ".input.json"

# Exactly one of these ends every job, written last (docs/design.md 3.2).
TERMINAL_MARKERS = (SUCCESS, ERROR, ABORTED_MARKER)

# The instance type a local job reports when its description names none (it ran on this machine).
LOCAL_INSTANCE_TYPE = "local"

JOBID_LENGTH = 12
JOBID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def key(jobid: str, suffix: str) -> str:
    """The log-bucket key of one of a job's objects, e.g. key('abc', LOG) == 'abc.log'."""
    return f"{jobid}{suffix}"


def metrics_key(jobid: str, name: str) -> str:
    """The key of one of the job's metrics files, e.g. metrics_key('abc', 'metrics.html') ==
    'abc.metrics/metrics.html'."""
    return key(jobid, METRICS_DIR + name)


def now_stamp(when: dt.datetime | float | None = None) -> str:
    """A UTC time stamp in upstream's format, of `when` (a datetime or epoch seconds), else of now."""
    if when is None:
        when = dt.datetime.now(dt.timezone.utc)
    elif not isinstance(when, dt.datetime):
        when = dt.datetime.fromtimestamp(when, dt.timezone.utc)
    return when.astimezone(dt.timezone.utc).strftime(TIME_FORMAT)


def parse_stamp(stamp: str) -> dt.datetime:
    """Parse upstream's time stamp into an aware UTC datetime."""
    return dt.datetime.strptime(stamp, TIME_FORMAT).replace(tzinfo=dt.timezone.utc)


def execution_arn(region: str, account: str, sfn: str, run_name: str) -> str:
    """An execution ARN; local ones use region `local` and account 000000000000 (docs/design.md 3.3)."""
    return f"arn:aws:states:{region}:{account}:execution:{sfn}:{run_name}"


def split_execution_arn(arn: str) -> tuple[str, str]:
    """(step function name, run name) of an execution ARN."""
    parts = arn.split(":")
    if len(parts) < 8 or parts[5] != "execution":
        raise ValueError(f"not an execution ARN: {arn!r}")
    return parts[6], ":".join(parts[7:])


# ---------------------------------------------------------------------------------------------
# run.json and postrun JSON: written by the API at submission and by the agent.

# Config fields that never leave the client: dropped from run.json, blanked in the postrun JSON.
SECRET_CONFIG_FIELDS = ("password", "key_name")

_WORKFLOW_APP_FIELDS = {  # language family -> (App field, args field) beyond App_name/App_version/language
    "wdl": (("main_wdl", "wdl_main_filename"), ("other_wdl_files", "wdl_child_filenames"),
            ("wdl_url", "wdl_directory_url"), ("workflow_engine", "workflow_engine"), ("run_args", "run_args")),
    "snakemake": (("main_snakemake", "snakemake_main_filename"), ("other_snakemake_files", "snakemake_child_filenames"),
                  ("snakemake_url", "snakemake_directory_url"), ("command", "command"),
                  ("container_image", "container_image")),
    "shell": (("command", "command"), ("container_image", "container_image")),
    "cwl": (("main_cwl", "cwl_main_filename"), ("other_cwl_files", "cwl_child_filenames"),
            ("cwl_url", "cwl_directory_url"), ("run_args", "run_args")),
}


def language_family(language: str) -> str:
    """'cwl', 'wdl', 'snakemake' or 'shell': the working folder `/data1/<family>` and the runner."""
    if language.startswith("wdl"):
        return "wdl"
    return language if language in ("snakemake", "shell") else "cwl"


def _app(args: dict) -> dict:
    """Job.App as upstream's create_run_json_dict builds it; a list command is joined with '; '."""
    language = args.get("language") or "cwl_v1"
    app = {"App_name": args.get("app_name", ""), "App_version": args.get("app_version", ""), "language": language}
    for field, source in _WORKFLOW_APP_FIELDS[language_family(language)]:
        value = args.get(source, "")
        if field.startswith("other_"):
            value = ",".join(value or [])
        elif field == "command" and isinstance(value, list):
            value = "; ".join(value)
        app[field] = value
    return app


def _input_data(specs: dict) -> dict:
    """Input_files_data / Secondary_files_data from normalised input specs (upstream's layout)."""
    return {argname: {"class": "File", "dir": spec["bucket_name"], "path": spec["object_key"],
                      "rename": spec.get("rename") or None, "profile": spec.get("profile", ""),
                      "unzip": spec.get("unzip", ""), "mount": spec.get("mount", "")}
            for argname, spec in specs.items()}


def build_run_json(description: dict) -> dict:
    """`<jobid>.run.json` for a parsed description (jobspec.parse, with its jobid set).

    Upstream's shape: {"config": ..., "Job": {"JOBID", "App", "Input", "Output", "Log",
    "start_time"}}; the config's password and key_name are not included.
    """
    jobid = description.get("jobid")
    if not jobid:
        raise ValueError("build_run_json needs a description with its jobid")
    args, config = description["args"], description["config"]
    run_config = {k: copy.deepcopy(v) for k, v in config.items() if k not in SECRET_CONFIG_FIELDS}
    return {
        "config": run_config,
        "Job": {
            "JOBID": jobid,
            "App": _app(args),
            "Input": {
                "Input_files_data": _input_data(args.get("input_files", {})),
                "Secondary_files_data": _input_data(args.get("secondary_files", {})),
                "Input_parameters": copy.deepcopy(args.get("input_parameters", {})),
                "Env": copy.deepcopy(args.get("input_env", {})),
            },
            "Output": {
                "output_bucket_directory": args["output_S3_bucket"],
                "output_target": copy.deepcopy(args.get("output_target", {})),
                "secondary_output_target": copy.deepcopy(args.get("secondary_output_target", {})),
                "alt_cond_output_argnames": copy.deepcopy(args.get("alt_cond_output_argnames", {})),
            },
            "Log": {"log_bucket_directory": config["log_bucket"]},
            "start_time": now_stamp(),
        },
    }


def run_json_args(run_json: dict) -> dict:
    """The args fields that output targets are read from (jobspec.output_targets), rebuilt from run.json."""
    output = run_json["Job"]["Output"]
    return {"language": run_json["Job"]["App"]["language"],
            "output_S3_bucket": output["output_bucket_directory"],
            "output_target": output.get("output_target", {}),
            "secondary_output_target": output.get("secondary_output_target", {}),
            "alt_cond_output_argnames": output.get("alt_cond_output_argnames", {})}


def initial_postrun_json(run_json: dict, *, instance_id: str, instance_type: str,
                         availability_zone: str, filesystem: str) -> dict:
    """The postrun JSON a worker writes before it runs: run.json plus where it runs (upstream's init step).

    The config's secrets come back as '' (upstream's Config defaults re-add them that way).
    """
    postrun = copy.deepcopy(run_json)
    postrun["config"].update({field: "" for field in SECRET_CONFIG_FIELDS})
    postrun["Job"].update({"instance_id": instance_id, "instance_type": instance_type,
                           "instance_availablity_zone": availability_zone,  # sic: upstream's key
                           "filesystem": filesystem})
    postrun.setdefault("commands", [])
    return postrun


def status_string(codes: Iterable[int]) -> str:
    """Upstream's JOB_STATUS: "0" when every step's exit code is 0, else all of them, e.g. "0,0,1"."""
    codes = list(codes)
    return "0" if all(code == 0 for code in codes) else ",".join(str(code) for code in codes)


def set_postrun_error(postrun: dict, name: str, message: str) -> None:
    """Record why a job failed: upstream's error name (e.g. AWSEMJobErrorException) and a one-line cause."""
    postrun["Job"]["error_name"] = name
    postrun["Job"]["error_message"] = message


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def dump_json(document: dict) -> bytes:
    """run.json / postrun JSON bytes as upstream writes them: None-valued keys dropped, indent 4, sorted keys."""
    return json.dumps(_without_none(document), indent=4, sort_keys=True).encode()


# ---------------------------------------------------------------------------------------------
# The callback to a waiting execution: what the agent and check_task_awsem share.

# AWS: the task token of the execution waiting on a job, handed from check_task_awsem to the agent.
CALLBACK_JSON = ".callback.json"  # <jobid>.callback.json in the log bucket: {task_token, state_input}
POSTRUN_PAYLOAD_LIMIT = 30000  # bytes of postrun JSON an execution's output may carry (upstream's)


def with_postrun(event: dict, postrun: dict) -> dict:
    """The execution's output: its input plus the postrun JSON, trimmed to fit the state payload
    (as upstream: without `commands`, else a note)."""
    output = dict(event)
    size = len(json.dumps(event))
    if len(json.dumps(postrun)) + size < POSTRUN_PAYLOAD_LIMIT:
        output["postrunjson"] = postrun
        return output
    trimmed = {k: v for k, v in postrun.items() if k != "commands"}
    if len(json.dumps(trimmed)) + size < POSTRUN_PAYLOAD_LIMIT:
        output["postrunjson"] = trimmed
    else:
        output["postrunjson"] = {"log": "postrun json not included due to data size limit"}
    return output


def callback_document(task_token: str, state_input: dict) -> bytes:
    """What `<jobid>.callback.json` holds."""
    return json.dumps({"task_token": task_token, "state_input": state_input}).encode()
