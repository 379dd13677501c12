"""`args`: what a job runs, on which inputs, with its outputs going where; one model per workflow language.

Upstream's Args: CWL (the default language), WDL, Snakemake or shell, each with its own required
fields and defaults (Args.fill_default); every other field is checked whatever the language.
"""
from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from annotated_types import MinLen
from pydantic import AfterValidator, Field, PlainValidator, StringConstraints, model_validator

from tibanna import protocol
from tibanna.exceptions import (MalFormattedRunJsonException, MissingFieldInInputJsonException,
                                UnsupportedCWLVersionException)
from tibanna.jobspec.fields import (DATA_ROOT, Bool, Bucket, DependencyField, Dictionary, NestedKeys, NestedRelative,
                                    NonEmptyStr, RelativePath, S3Urls, Scalar, Section, Str, StrList, check_argname,
                                    check_nested_keys, data1_path, given, iter_keys, split_urls)
from tibanna.jobspec.refusal import problem, refuse, shaped, show
from tibanna.jobspec.targets import OutputTargets, SecondaryTargets, build_targets
from tibanna.jobspec.upstream import LANGUAGES, UNZIP_TYPES, WDL_LANGUAGES

_ENV_NAME = "[A-Za-z_][A-Za-z0-9_]*"
_ENV_NAME_RE = re.compile(_ENV_NAME)
_DRAFT3 = "CWL draft3 is no longer supported. Please switched to v1"
_EACH_INPUT_MSG = ("Each input_file value must be either a string starting with 's3://' "
                   "or a dictionary with 'bucket_name' and 'object_key' as keys")


# ---------------------------------------------------------------------------------------------
# Inputs.

def _shape(keys: Any) -> Any:
    """The nesting of a key structure, to match a rename against its object_key."""
    return [_shape(item) for item in keys] if isinstance(keys, list) else None


def _check_rename(rename: Any) -> Any:
    return check_nested_keys(rename) if rename else rename  # '' or null: no rename


class InputFile(Section):
    """One input argument's file(s): a bucket and a key, or (nested, up to 3 deep) lists of keys."""

    bucket_name: Bucket
    object_key: NestedKeys
    rename: Annotated[Any, PlainValidator(_check_rename, json_schema_input_type=NestedRelative | Literal[""] | None)] \
        = given()
    """The names to stage the files under: the same shape as object_key."""
    unzip: Annotated[Literal[UNZIP_TYPES], problem(lambda _: "unzip field must be gz, bz2 or ''")] = given()
    mount: Bool = given()
    """Mount the bucket instead of copying the file (not with rename or unzip)."""
    profile: Annotated[str, problem("must be a profile name")] = given()

    @model_validator(mode="after")
    def _consistent(self) -> InputFile:
        if self.rename and _shape(self.rename) != _shape(self.object_key):
            refuse("rename must have the same shape as object_key "
                   "(a name for a key, a list of names for a list of keys)", at=("rename",))
        conflicts = [field for field, used in (("rename", bool(self.rename and iter_keys(self.rename))),
                                               ("unzip", bool(self.unzip))) if used]
        if self.mount and conflicts:
            key = self.object_key if isinstance(self.object_key, str) else show(self.object_key)
            refuse(f"Incompatible input for file {key}: {conflicts[0]} and mount cannot be used together.",
                   exc=MalFormattedRunJsonException)
        return self


def _check_input(value: Any) -> InputFile:
    """An s3:// url, a nested list of them (one bucket), or {bucket_name, object_key, ...}."""
    if isinstance(value, (str, list)):
        buckets, keys = split_urls(value)
        if not buckets:
            refuse("the list names no file")
        if len(buckets) != 1:
            refuse("All the input files corresponding to a single input file argument must be from the same bucket.")
        value = {"bucket_name": buckets.pop(), "object_key": keys}
    elif not (isinstance(value, dict) and "bucket_name" in value and "object_key" in value):
        refuse(_EACH_INPUT_MSG)
    return InputFile.model_validate(value)


InputSpec = Annotated[Any, PlainValidator(_check_input, json_schema_input_type=S3Urls | InputFile)]
InputFiles = Annotated[dict[str, InputSpec],
                       shaped(dict, "'input_files' must be provided as a dictionary (key-value pairs)")]
SecondaryFiles = Annotated[dict[str, InputSpec], shaped(dict, "must be a dictionary")]


def _check_env_names(env: dict) -> dict:
    for name in env:
        if not _ENV_NAME_RE.fullmatch(name):
            refuse("is not a valid environment variable name", at=(name,))
    return env


InputEnv = Annotated[dict[str, Annotated[Scalar, problem("must be a string, number or boolean")]],
                     shaped(dict, "must be a dictionary"), AfterValidator(_check_env_names),
                     Field(json_schema_extra={"propertyNames": {"pattern": f"^{_ENV_NAME}$"}})]


# ---------------------------------------------------------------------------------------------
# Custom errors.

def _check_pattern(pattern: Any) -> str:
    if not isinstance(pattern, str) or not pattern:
        refuse(f"must be a non-empty string, not {show(pattern)}")
    try:
        re.compile(pattern)
    except (re.error, OverflowError) as err:  # OverflowError: a repeat count too large
        refuse(f"{show(pattern)} is not a valid regular expression: {err}")
    except RecursionError:  # the regex parser recurses per group
        refuse(f"{show(pattern)} is not a valid regular expression: its groups are nested too deeply")
    return pattern


class CustomError(Section):
    """An error a job's log may show: when `pattern` matches, the job fails as `error_type`."""

    error_type: NonEmptyStr
    pattern: Annotated[str, PlainValidator(_check_pattern, json_schema_input_type=Annotated[str, MinLen(1)])]
    """A Python regular expression."""
    multiline: Bool = given()

    @classmethod
    def required_in(cls, field: str, data: dict) -> str:
        return "each custom error"


def _check_custom_error(value: Any) -> CustomError:
    if not isinstance(value, dict):
        refuse(f"must be a dictionary with error_type and pattern, not {show(value)}")
    return CustomError.model_validate(value)


CustomErrors = Annotated[list[Annotated[Any, PlainValidator(_check_custom_error, json_schema_input_type=CustomError)]],
                         shaped(list, "must be a list")]


# ---------------------------------------------------------------------------------------------
# args, per language.

Command = Annotated[str | list[str], problem("command must be either a string or a list")]
Url = Annotated[Literal[""] | Annotated[str, StringConstraints(pattern=r"^(https?|s3)://")],
                problem("must be an http(s):// or s3:// url")]
FileNames = Annotated[list[Any], problem("must be a list of file names")]
WorkflowFiles = Annotated[list[RelativePath], shaped(list, "must be a list of file names")]


class Args(Section):
    """What a job runs and where its inputs and outputs are (the fields every language shares)."""

    family: ClassVar[str | None] = None  # the prefix of the workflow file fields: cwl, wdl, snakemake

    output_S3_bucket: Bucket
    """The bucket outputs go to, unless an output_target names another."""
    input_files: InputFiles = {}
    """argname (or file:///data1/... for shell and snakemake) -> input file(s)."""
    command: Command = given()
    app_name: Str = ""
    """An upstream app name (md5, bwa-mem, ...) lets upstream's Benchmark size the machine."""
    app_version: Annotated[Scalar, problem("must be a string or a number")] = ""
    language: str = given()
    cwl_version: Str = given()
    singularity: Bool = False
    container_image: NonEmptyStr = given()
    workflow_engine: NonEmptyStr = given()
    run_args: Str = given()
    custom_errors: CustomErrors = []
    input_parameters: Dictionary = {}
    input_env: InputEnv = {}
    """Environment variables of the job: name -> a string, number or boolean."""
    secondary_files: SecondaryFiles = {}
    output_target: OutputTargets = {}
    """argname (or file:///data1/... for shell and snakemake) -> a key, 'dir/', an s3:// url, or a dictionary."""
    secondary_output_target: SecondaryTargets = {}
    alt_cond_output_argnames: Annotated[dict[str, Annotated[StrList, problem("must be a list of argnames")]],
                                        shaped(dict, "must be a dictionary")] = {}
    additional_benchmarking_parameters: Dictionary = {}
    cwl_directory_local: Str = given()
    wdl_directory_local: Str = given()
    snakemake_directory_local: Str = given()
    cwl_directory_url: Url = given()
    wdl_directory_url: Url = given()
    snakemake_directory_url: Url = given()
    cwl_child_filenames: FileNames = given()
    wdl_child_filenames: FileNames = given()
    snakemake_child_filenames: FileNames = given()
    dependency: DependencyField = given()

    @classmethod
    def required_in(cls, field: str, data: dict) -> str:
        return "args" if field == "output_S3_bucket" else f"args for language {data['language']}"

    @model_validator(mode="after")
    def _consistent(self) -> Args:
        """Workflow files somewhere, file:// keys where the language allows them, output targets."""
        if self.family:
            url, local = f"{self.family}_directory_url", f"{self.family}_directory_local"
            if not getattr(self, url) and not getattr(self, local):
                refuse(f"either {url} or {local} must be provided in args", at=(url,),
                       exc=MissingFieldInInputJsonException)
        for section in ("input_files", "secondary_files"):
            for argname in getattr(self, section):
                check_argname(argname, (section, argname))
                if argname.startswith("file://"):
                    self._check_input_target(argname, (section, argname))
        for target in build_targets(self.output_target, self.output_S3_bucket):
            if self.language in ("shell", "snakemake") and not target.source.startswith("/"):
                refuse(f"{self.language} jobs have no output arguments: the key must be a file:///data1/... path",
                       at=("output_target", target.source))
        return self

    def _check_input_target(self, argname: str, at: tuple) -> None:
        """A file:// input key: shell/snakemake only, under /data1/<language>, /data1/input or /data1/out."""
        if self.language not in ("shell", "snakemake"):
            refuse("input file has to be defined with argument name for CWL and WDL", at=at,
                   exc=MalFormattedRunJsonException)
        target = data1_path(argname, "input target directory", at)
        if not target.startswith((f"{DATA_ROOT}{self.language}", f"{DATA_ROOT}input", f"{DATA_ROOT}out")):
            refuse(f"input target directory must be in /data1/input, /data1/out or /data1/{self.language}", at=at)


class CwlArgs(Args):
    """A CWL v1 workflow: the language when none is given."""

    family: ClassVar[str | None] = "cwl"
    language: Literal["cwl_v1"] = given()
    cwl_main_filename: RelativePath
    cwl_directory_url: Url = ""
    cwl_directory_local: Str = ""
    cwl_child_filenames: WorkflowFiles = []
    run_args: Str = ""


class WdlArgs(Args):
    """A WDL workflow, run by Cromwell unless workflow_engine says otherwise."""

    family: ClassVar[str | None] = "wdl"
    language: Literal[WDL_LANGUAGES]
    wdl_main_filename: RelativePath
    wdl_directory_url: Url = ""
    wdl_directory_local: Str = ""
    wdl_child_filenames: WorkflowFiles = []
    run_args: Str = ""
    workflow_engine: NonEmptyStr = "cromwell"


class SnakemakeArgs(Args):
    """A Snakemake workflow, run by `command` in `container_image`."""

    family: ClassVar[str | None] = "snakemake"
    language: Literal["snakemake"]
    snakemake_main_filename: RelativePath
    container_image: NonEmptyStr
    command: Command
    snakemake_directory_url: Url = ""
    snakemake_directory_local: Str = ""
    snakemake_child_filenames: WorkflowFiles = []


class ShellArgs(Args):
    """Shell commands run in `container_image`."""

    language: Literal["shell"]
    container_image: NonEmptyStr
    command: Command


_BY_FAMILY: dict[str, type[Args]] = {"cwl": CwlArgs, "wdl": WdlArgs, "snakemake": SnakemakeArgs, "shell": ShellArgs}


def check_args(value: dict) -> Args:
    """`args` (a dict) by its language; no language means CWL v1 (cwl_version v1; draft3 is refused, as upstream)."""
    if "language" not in value:
        version = value.get("cwl_version", "v1")
        if not isinstance(version, str):
            refuse(f"must be a string, not {show(version)}", at=("cwl_version",))
        if version == "draft3":
            refuse(_DRAFT3, at=("cwl_version",), exc=UnsupportedCWLVersionException)
        if version != "v1":
            refuse(f"must be v1, not {show(version)}", at=("cwl_version",))
        value = {**value, "cwl_version": version, "language": "cwl_v1"}
    language = value["language"]
    if not isinstance(language, str):
        refuse(f"must be a string, not {show(language)}", at=("language",))
    if language == "cwl_draft3":
        refuse(_DRAFT3, at=("language",), exc=UnsupportedCWLVersionException)
    if language not in LANGUAGES:
        refuse(f"must be one of {', '.join(LANGUAGES)}, not {show(language)}", at=("language",))
    return _BY_FAMILY[protocol.language_family(language)].model_validate(value)


ArgsField = Annotated[Any, PlainValidator(check_args, json_schema_input_type=CwlArgs | WdlArgs | SnakemakeArgs
                                          | ShellArgs)]
