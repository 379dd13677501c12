"""The whole job description: the `Job` model, `parse` (the only parser of it) and its JSON Schema."""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Annotated, Any, Sequence

from pydantic import PlainValidator, StringConstraints, model_validator
from pydantic.json_schema import GenerateJsonSchema

from tibanna import protocol
from tibanna.exceptions import MissingFieldInInputJsonException
from tibanna.jobspec.args import Args, ArgsField
from tibanna.jobspec.config import Config
from tibanna.jobspec.fields import DependencyField, Section, given
from tibanna.jobspec.loading import load_description
from tibanna.jobspec.refusal import fail, refusals, refuse, show, under
from tibanna.jobspec.upstream import BENCHMARKABLE_APP_NAMES, MIN_EBS_SIZE_GB

SCHEMA_PATH = Path(__file__).with_name("job.schema.json")  # regenerate: tibanna job_schema > SCHEMA_PATH

_NOT_ENOUGH_FIELDS_MSG = (
    "Not enough fields: app_name must be provided in args to use Benchmarking. "
    "Without app_name (or app_name with no benchmarking function defined for it), "
    "either mem and cpu or instance_type must be in the config field of the execution json, "
    "preferably along with ebs_size (default 10(GB)) and EBS_optimized (default False).")


def _check_jobid(jobid: Any) -> str | None:
    """A job id, or nothing (null or ''): the API creates one then."""
    if jobid is None or jobid == "":
        return None
    if not (isinstance(jobid, str) and protocol.JOBID_PATTERN.fullmatch(jobid)):
        refuse(f"{show(jobid)} is not a valid job id "
               "(1-128 letters, digits, '_', '.' or '-', starting with a letter or digit)")
    return jobid


JobId = Annotated[str | None, PlainValidator(_check_jobid, json_schema_input_type=Annotated[
    str, StringConstraints(pattern=protocol.JOBID_PATTERN.pattern)] | None)]


class Job(Section, title="Tibanna job description"):
    """A Tibanna job: what to run (args) on which machine (config); other top-level keys are kept."""

    jobid: JobId = given()
    config: Config
    """The machine, disks, spot behaviour and logging."""
    args: ArgsField
    """What the job runs, on which inputs, and where its outputs go; one form per language."""
    dependency: DependencyField = given()
    """Jobs to wait for (also read from args and config: the first non-empty one counts)."""

    @model_validator(mode="before")
    @classmethod
    def _required(cls, data: dict) -> dict:
        """Checked first, as upstream: args and config are dictionaries, with output_S3_bucket and log_bucket."""
        for name in ("args", "config"):
            if name not in data:
                refuse(f"field {name} is required in the job description", at=(name,),
                       exc=MissingFieldInInputJsonException)
            if not isinstance(data[name], dict):
                refuse(f"must be a dictionary, not {show(data[name])}", at=(name,))
        for name, section in (("args", Args), ("config", Config)):
            with under(name):
                section.check_required(data[name])
        return data


def parse(input_json: dict | str | os.PathLike, *, jobid: str | None = None, kms_key_id: str | None = None,
          subnets: Sequence[str] = (), security_groups: Sequence[str] = ()) -> dict:
    """Load, validate and fill a description; a new dict in upstream's shape.

    `{"jobid"?, "args": {...}, "config": {...}, <other top-level keys, kept>}`; a refusal raises
    upstream's exception class with a message that starts with the field path. `kms_key_id`,
    `subnets` and `security_groups` are the account's defaults of config.kms_key_id, subnet and
    security_group (the first group), for a description without its own; upstream reads them
    from the environment, as `settings.description_defaults()` does for the callers.
    """
    data = load_description(input_json)
    if jobid:
        data["jobid"] = jobid  # the argument wins over the description's
    with refusals():
        job = Job.model_validate(data)
    args, cfg = job.args.model_dump(), job.config.model_dump()
    _account_defaults(cfg, kms_key_id, subnets, security_groups)
    cfg["json_bucket"] = cfg["log_bucket"]
    cfg["language"] = args["language"]
    cfg["singularity"] = bool(args["singularity"] or cfg.get("singularity", False))
    cfg["job_tag"] = args["app_name"]
    _fill_sizing(args, cfg)
    chosen = next((d for d in (data.get("dependency"), args.get("dependency"), cfg.get("dependency")) if d), {})
    args["dependency"] = copy.deepcopy(chosen)
    result: dict = {"jobid": job.jobid} if job.jobid else {}
    result.update((key, value) for key, value in data.items() if key != "jobid")
    result.update(args=args, config=cfg)
    return result


def _account_defaults(cfg: dict, kms_key_id: str | None, subnets: Sequence[str],
                      security_groups: Sequence[str]) -> None:
    """The account's defaults of the KMS key, subnets and security group, where the description has none."""
    if "kms_key_id" not in cfg:
        cfg["kms_key_id"] = kms_key_id or None
        if cfg["kms_key_id"]:
            cfg["encrypt_s3_upload"] = True
    if not cfg["subnet"] and subnets:
        cfg["subnet"] = list(subnets)
    if not cfg["security_group"] and security_groups:
        cfg["security_group"] = security_groups[0]


def _fill_sizing(args: dict, cfg: dict) -> None:
    """Without a benchmarkable app: ebs_size at least 10, EBS_optimized False, and a way to size the machine."""
    if args["app_name"] in BENCHMARKABLE_APP_NAMES:
        return
    if not cfg["ebs_size"] or (isinstance(cfg["ebs_size"], int) and cfg["ebs_size"] < MIN_EBS_SIZE_GB):
        cfg["ebs_size"] = MIN_EBS_SIZE_GB
    if not cfg["EBS_optimized"]:
        cfg["EBS_optimized"] = False
    if not (cfg["mem"] and cfg["cpu"]) and not cfg["instance_type"]:
        fail("config.instance_type", _NOT_ENOUGH_FIELDS_MSG, MissingFieldInInputJsonException)


def redacted(description: dict) -> dict:
    """A deep copy with secrets blanked (config.password, config keys naming a secret or access key)."""
    copied = copy.deepcopy(description)
    cfg = copied.get("config")
    if isinstance(cfg, dict):
        for field in cfg:
            lowered = str(field).lower()
            if lowered == "password" or "secret" in lowered or "access_key" in lowered:
                cfg[field] = ""
    return copied


class _SchemaWithoutTitles(GenerateJsonSchema):
    """Field titles would only repeat the field names."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def json_schema() -> dict:
    """The JSON Schema (draft 2020-12) of a job description, generated from the models."""
    schema = Job.model_json_schema(schema_generator=_SchemaWithoutTitles)
    return {"$schema": GenerateJsonSchema.schema_dialect, **schema}


def json_schema_text() -> str:
    """json_schema() as the text of SCHEMA_PATH."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
