"""The job description (docs/design.md 3.1): the only parser of upstream's input JSON.

`parse` loads a description, refuses anything upstream refuses (at submission or, later, on the
instance) with upstream's exception class and a one-line message that starts with the field
path, and fills defaults exactly as upstream's `UnicornInput`/`Args`/`Config` do. Output targets
are read by `output_targets`, which the API (to validate) and the agent (to upload) share.
"""
from __future__ import annotations

import copy
import json
import math
import os
import posixpath
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, NoReturn, Sequence

from tibanna import __version__, protocol
from tibanna.exceptions import (
    EC2LaunchException,
    MalFormattedInputJsonException,
    MalFormattedRunJsonException,
    MissingFieldInInputJsonException,
    TibannaError,
    UnsupportedCWLVersionException,
)
from tibanna.storage.base import parse_s3_url

# Apps that upstream's Benchmark package can size without instance_type or mem+cpu.
BENCHMARKABLE_APP_NAMES: frozenset[str] = frozenset({
    "addfragtopairs", "bamqc", "bwa-mem", "compartments-caller", "encode-atacseq",
    "encode-atacseq-aln", "encode-atacseq-postaln", "encode-chipseq", "encode-chipseq-aln-chip",
    "encode-chipseq-aln-ctl", "encode-chipseq-postaln", "encode-rnaseq-stranded",
    "encode-rnaseq-unstranded", "fastqc", "fastqc-0-11-4-1", "hi-c-processing-bam",
    "hi-c-processing-pairs", "hi-c-processing-pairs-nonorm", "hi-c-processing-pairs-nore",
    "hi-c-processing-pairs-nore-nonorm", "hi-c-processing-partb", "hi-c-processing-partc",
    "insulation-scores-and-boundaries-caller", "md5", "merge-fastq", "mergebed", "pairs-patch",
    "pairsam-filter", "pairsam-markasdup", "pairsam-merge", "pairsam-parse-sort",
    "pairsqc-single", "repliseq-parta",
})

WDL_LANGUAGES = ("wdl", "wdl_v1", "wdl_draft2")
LANGUAGES = ("cwl_v1", *WDL_LANGUAGES, "snakemake", "shell")
EBS_TYPES = ("gp2", "gp3", "io1", "io2", "st1", "sc1", "standard")
CAPACITY_BEHAVIORS = ("fail", "wait_and_retry", "other_instance_types", "retry_without_spot")
CONTAINER_RUNTIMES = ("auto", "docker", "podman", "none")
UNZIP_TYPES = ("gz", "bz2", "")

DATA_ROOT = "/data1/"
EBS_SIZE_LIMIT_GB = 16000
EBS_SIZE_OVERHEAD_GB = 5
MIN_EBS_SIZE_GB = 10
DEFAULT_ROOT_EBS_SIZE = 10
DEFAULT_AWSF_IMAGE = f"4dndcic/tibanna-awsf:{__version__}"


_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_RE = re.compile(r"\d+\.\d+\.\d+\.\d+")
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DIGITS_RE = re.compile(r"[0-9]+")
_URL_SCHEMES = ("http://", "https://", "s3://")
_MAX_KEY_DEPTH = 3  # upstream stages a key, a list, a list of lists or a 3-deep list
# Levels of dictionaries and lists a description may nest (upstream's deepest use 7): checked before
# anything recurses into it, so no input reaches Python's recursion limit.
MAX_NESTING = 100
_MAX_PATH_CHARS = 200  # a field path longer than this is cut in messages
_MAX_FLOAT_BITS = 1024  # larger integers overflow when compared as floats (and far larger ones cannot be printed)
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
# Characters that would break a message over lines (or hide in it), written as escapes instead.
_UNPRINTABLE = {code: repr(chr(code))[1:-1]
                for code in (*range(32), 0x7F, 0x85, 0x2028, 0x2029, *range(0xD800, 0xE000))}

_EACH_INPUT_MSG = ("Each input_file value must be either a string starting with 's3://' "
                   "or a dictionary with 'bucket_name' and 'object_key' as keys")
_NOT_ENOUGH_FIELDS_MSG = (
    "Not enough fields: app_name must be provided in args to use Benchmarking. "
    "Without app_name (or app_name with no benchmarking function defined for it), "
    "either mem and cpu or instance_type must be in the config field of the execution json, "
    "preferably along with ebs_size (default 10(GB)) and EBS_optimized (default False).")


@dataclass(frozen=True)
class OutputTarget:
    """Where one output goes: `source` is an argname, or an absolute '/data1/...' path (file:// key).

    `key` and `prefix` are both None when the output keeps its own name (upstream: the output
    path with `^/data1/((shell|out)/)*` stripped); a prefix always ends with '/'.
    """

    source: str
    bucket: str
    key: str | None
    prefix: str | None
    unzip: bool = False
    tag: str | None = None


# ---------------------------------------------------------------------------------------------
# Small checks shared by every section.

def _fail(path: str, message: str, exc: type[TibannaError] = MalFormattedInputJsonException) -> NoReturn:
    """Refuse the description: one line, starting with the field path (cut when a user's key is huge)."""
    if len(path) > _MAX_PATH_CHARS:
        path = path[:_MAX_PATH_CHARS - 3] + "..."
    raise exc(f"{path}: {message}".translate(_UNPRINTABLE))


def _show(value: Any) -> str:
    """A short JSON-ish rendering of a user's value for a message."""
    try:
        text = json.dumps(value, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) and item for item in value)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, bool)) or _is_number(value)


def _check_bucket(path: str, name: Any) -> None:
    """S3's bucket naming rules; they also keep local bucket folders inside TIBANNA_HOME."""
    if not (isinstance(name, str) and _BUCKET_RE.fullmatch(name)) or ".." in name or _IP_RE.fullmatch(name):
        _fail(path, f"{_show(name)} is not a valid bucket name "
                    "(3-63 lowercase letters, digits, '.' or '-', starting and ending with a letter or digit)")


def _check_relative(path: str, value: Any) -> None:
    """A key, prefix, rename or file name: a non-empty relative path that stays inside its root."""
    if not isinstance(value, str) or not value:
        _fail(path, f"must be a non-empty string, not {_show(value)}")
    normal = posixpath.normpath(value)
    if value.startswith("/") or normal == ".." or normal.startswith("../"):
        _fail(path, f"{_show(value)} leaves its root (absolute paths and '..' escapes are refused)")
    if normal == ".":
        _fail(path, f"{_show(value)} names no file")


def _check_nested_keys(path: str, keys: Any, depth: int = 0) -> None:
    """An object key, or a list (up to 3 deep) of them, as upstream stages them."""
    if isinstance(keys, list):
        if depth == _MAX_KEY_DEPTH:
            _fail(path, f"lists of keys may be nested at most {_MAX_KEY_DEPTH} deep")
        for i, item in enumerate(keys):
            _check_nested_keys(f"{path}[{i}]", item, depth + 1)
    else:
        _check_relative(path, keys)


def _shape(keys: Any) -> Any:
    """The nesting of a key structure, to match a rename against its object_key."""
    return [_shape(item) for item in keys] if isinstance(keys, list) else None


def iter_keys(object_key: str | list) -> list[str]:
    """Flatten an object key or a nested list of keys (for sizes and staging)."""
    if isinstance(object_key, str):
        return [object_key]
    return [key for item in object_key for key in iter_keys(item)]


def _check_argname(path: str, name: Any) -> None:
    """Keys of input_files, output_target, ...: an argname or a file:// path."""
    if not isinstance(name, str) or not name:
        _fail(path, f"argument names must be non-empty strings, not {_show(name)}")


def _data1_path(path: str, uri: str, what: str) -> str:
    """The absolute path of a file:// key, normalised; refused unless it is under /data1/."""
    target = posixpath.normpath(uri[len("file://"):])
    if not target.startswith(DATA_ROOT):
        _fail(path, f"{what} must be in {DATA_ROOT} (got {_show(target)})")
    return target


# ---------------------------------------------------------------------------------------------
# Field tables: (predicate, what is wrong otherwise), for the fields upstream types implicitly.

_Check = tuple[Callable[[Any], bool], str]
_BOOL: _Check = (lambda v: isinstance(v, bool), "must be true or false")
_STR: _Check = (lambda v: isinstance(v, str), "must be a string")
_NON_EMPTY_STR: _Check = (lambda v: isinstance(v, str) and bool(v), "must be a non-empty string")
_DICT: _Check = (lambda v: isinstance(v, dict), "must be a dictionary")
_OPT_POSITIVE_INT: _Check = (lambda v: v == "" or (_is_int(v) and v > 0), "must be a positive whole number or ''")
_URL: _Check = (lambda v: v == "" or (isinstance(v, str) and v.startswith(_URL_SCHEMES)),
                "must be an http(s):// or s3:// url")

_CONFIG_CHECKS: dict[str, _Check] = {
    "instance_type": (lambda v: isinstance(v, str) or _is_str_list(v), "must be an instance type or a list of them"),
    "mem": (lambda v: _is_number(v) and v >= 0, "must be a number of GB"),
    "cpu": (lambda v: v == "" or (_is_number(v) and v >= 0), "must be a number of vCPUs"),
    "ebs_type": (lambda v: v in EBS_TYPES, "must be one of " + ", ".join(EBS_TYPES)),
    "ebs_iops": _OPT_POSITIVE_INT,
    "ebs_throughput": _OPT_POSITIVE_INT,
    "spot_duration": _OPT_POSITIVE_INT,
    "root_ebs_size": (lambda v: _is_int(v) and v > 0, "must be a positive whole number of GB"),
    "EBS_optimized": (lambda v: v == "" or isinstance(v, bool), "must be true or false"),
    "shutdown_min": (lambda v: v == "now" or (_is_int(v) and v >= 0)
                     or (isinstance(v, str) and bool(_DIGITS_RE.fullmatch(v))), "must be a number of minutes or 'now'"),
    "behavior_on_capacity_limit": (lambda v: v in CAPACITY_BEHAVIORS,
                                   "must be one of " + ", ".join(CAPACITY_BEHAVIORS)),
    "subnet": (lambda v: isinstance(v, str) or _is_str_list(v), "must be a subnet id or a list of them"),
    "kms_key_id": (lambda v: v is None or isinstance(v, str), "must be a string or null"),
    "ami_per_region": (lambda v: isinstance(v, dict) and all(isinstance(m, dict) for m in v.values()),
                       "must be a dictionary of architecture -> {region: ami id}"),
    "metrics_interval": (lambda v: v is None or (_is_number(v) and v > 0),
                         "must be a positive number of seconds or null"),
    "spot_interruption_reruns": (lambda v: _is_int(v) and v >= 0, "must be a whole number >= 0"),
    "container_runtime": (lambda v: v is None or v in CONTAINER_RUNTIMES,
                          "must be null or one of " + ", ".join(CONTAINER_RUNTIMES)),
    **{field: _BOOL for field in ("mem_as_is", "ebs_size_as_is", "spot_instance", "public_postrun_json",
                                  "encrypt_s3_upload", "disable_metrics_collection", "cloudwatch_dashboard",
                                  "use_benchmark", "singularity")},
    **{field: _STR for field in ("password", "key_name", "availability_zone", "security_group", "ami_id",
                                 "awsf_image", "run_name")},
}

_ARGS_CHECKS: dict[str, _Check] = {
    "input_files": (lambda v: isinstance(v, dict), "'input_files' must be provided as a dictionary (key-value pairs)"),
    "command": (lambda v: isinstance(v, str) or (isinstance(v, list) and all(isinstance(c, str) for c in v)),
                "command must be either a string or a list"),
    "app_name": _STR,
    "app_version": (_is_scalar, "must be a string or a number"),
    "language": _STR,
    "cwl_version": _STR,
    "singularity": _BOOL,
    "container_image": _NON_EMPTY_STR,
    "workflow_engine": _NON_EMPTY_STR,
    "run_args": _STR,
    "custom_errors": (lambda v: isinstance(v, list), "must be a list"),
    **{field: _DICT for field in ("input_parameters", "input_env", "secondary_files", "output_target",
                                  "secondary_output_target", "alt_cond_output_argnames",
                                  "additional_benchmarking_parameters")},
    **{f"{family}_directory_local": _STR for family in ("cwl", "wdl", "snakemake")},
    **{f"{family}_directory_url": _URL for family in ("cwl", "wdl", "snakemake")},
    **{f"{family}_child_filenames": (lambda v: isinstance(v, list), "must be a list of file names")
       for family in ("cwl", "wdl", "snakemake")},
}

# Per workflow family: the fields upstream requires, and its defaults (None: no workflow files).
_WORKFLOW_FIELDS: dict[str, tuple[tuple[str, ...], dict | None]] = {
    "cwl": (("cwl_main_filename",), {"run_args": ""}),
    "wdl": (("wdl_main_filename",), {"workflow_engine": "cromwell", "run_args": ""}),
    "snakemake": (("snakemake_main_filename", "container_image", "command"), {}),
    "shell": (("container_image", "command"), None),
}


def _check_table(section: str, values: dict, table: dict[str, _Check]) -> None:
    """Refuse any present field whose value fails its table check."""
    for field, (ok, problem) in table.items():
        if field in values and not ok(values[field]):
            _fail(f"{section}.{field}", f"{problem}, not {_show(values[field])}")


# ---------------------------------------------------------------------------------------------
# Loading.

def _field_path(link: tuple | None) -> str:
    """The field path of a node of `_check_json_data`'s walk: `args.input_files.x.object_key[0]`."""
    parts: list[str] = []
    while link is not None:
        link, step = link
        parts.append(step)
    return "".join(reversed(parts)) or "input_json"


def _check_json_data(data: dict) -> None:
    """Refuse what a JSON description cannot hold, before anything recurses into it.

    Nesting deeper than MAX_NESTING, keys that are not strings, values that are not JSON data,
    integers too large for a float, and strings holding NUL or lone surrogates (not Unicode text)
    are refused at their field path. The walk is iterative, so a self-containing dict ends too.
    """
    stack: list[tuple[Any, int, tuple | None]] = [(data, 0, None)]
    while stack:
        value, depth, link = stack.pop()
        if isinstance(value, dict):
            if depth >= MAX_NESTING:
                _fail(_field_path(link), f"nested more than {MAX_NESTING} levels deep")
            for key, item in value.items():
                if not isinstance(key, str):
                    _fail(_field_path(link), f"keys must be strings, not {type(key).__name__}")
                step = (link, key if link is None else f".{key}")
                if problem := _string_problem(key):
                    _fail(_field_path(step), f"the key {problem}")
                stack.append((item, depth + 1, step))
        elif isinstance(value, (list, tuple)):
            if depth >= MAX_NESTING:
                _fail(_field_path(link), f"nested more than {MAX_NESTING} levels deep")
            stack.extend((item, depth + 1, (link, f"[{i}]")) for i, item in enumerate(value))
        elif isinstance(value, str):
            if problem := _string_problem(value):
                _fail(_field_path(link), f"the value {problem}")
        elif isinstance(value, int) and value.bit_length() > _MAX_FLOAT_BITS:
            _fail(_field_path(link), f"is too large a number ({value.bit_length()} bits)")
        elif not isinstance(value, (int, float, type(None))):
            _fail(_field_path(link), "must be JSON data (a string, number, boolean, null, list or dictionary), "
                                     f"not {type(value).__name__}")


def _string_problem(text: str) -> str | None:
    """What keeps a key or value from being stored and passed on as text: NUL, or a lone surrogate."""
    if "\x00" in text:
        return "holds a NUL character"
    if not text.isascii() and _SURROGATE_RE.search(text):
        return "is not Unicode text (it holds a lone surrogate)"
    return None


def load_description(input_json: dict | str | os.PathLike) -> dict:
    """A deep copy of a description dict, or the parsed JSON file at a path; either checked as JSON data."""
    if isinstance(input_json, dict):
        _check_json_data(input_json)
        return copy.deepcopy(input_json)
    if not isinstance(input_json, (str, os.PathLike)) or not os.path.isfile(input_json):
        _fail("input_json", f"input json must be either a file or a dictionary (got {_show(str(input_json))})")
    problem = None
    try:
        with open(input_json, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as err:
        problem = " ".join(str(err).split())
    except RecursionError:  # the decoder recurses per level: far deeper than MAX_NESTING
        problem = f"nested more than {MAX_NESTING} levels deep"
    if problem is not None:
        _fail("input_json", f"cannot read {os.fspath(input_json)!r} as JSON: {problem}")
    if not isinstance(data, dict):
        _fail("input_json", f"the description must be a JSON object, not {type(data).__name__}")
    _check_json_data(data)
    return data


# ---------------------------------------------------------------------------------------------
# args

def _resolve_language(args: dict) -> str:
    """Upstream's language resolution: no language means CWL v1; draft3 is refused."""
    if "language" not in args:
        version = args.setdefault("cwl_version", "v1")
        if version == "draft3":
            _fail("args.cwl_version", "CWL draft3 is no longer supported. Please switched to v1",
                  UnsupportedCWLVersionException)
        if version != "v1":
            _fail("args.cwl_version", f"must be v1, not {_show(version)}")
        args["language"] = "cwl_v1"
    language = args["language"]
    if language == "cwl_draft3":
        _fail("args.language", "CWL draft3 is no longer supported. Please switched to v1",
              UnsupportedCWLVersionException)
    if language not in LANGUAGES:
        _fail("args.language", f"must be one of {', '.join(LANGUAGES)}, not {_show(language)}")
    return language


def _fill_workflow_fields(args: dict, language: str) -> None:
    """Per-language required fields and defaults, with upstream's messages."""
    family = protocol.language_family(language)
    required, defaults = _WORKFLOW_FIELDS[family]
    for field in required:
        if field not in args:
            _fail(f"args.{field}", f"field {field} is required in args for language {language}",
                  MissingFieldInInputJsonException)
    if defaults is None:
        return
    url, local = f"{family}_directory_url", f"{family}_directory_local"
    for field, value in {f"{family}_child_filenames": [], local: "", url: "", **defaults}.items():
        args.setdefault(field, value)
    if not args[url] and not args[local]:
        _fail(f"args.{url}", f"either {url} or {local} must be provided in args", MissingFieldInInputJsonException)
    _check_relative(f"args.{family}_main_filename", args[f"{family}_main_filename"])
    for i, name in enumerate(args[f"{family}_child_filenames"]):
        _check_relative(f"args.{family}_child_filenames[{i}]", name)


def _split_urls(path: str, urls: Any, depth: int = 0) -> tuple[set[str], Any]:
    """Buckets and keys of an s3:// url or a nested list of them (upstream's run_on_nested_arrays1)."""
    if isinstance(urls, list):
        if depth == _MAX_KEY_DEPTH:
            _fail(path, f"lists of keys may be nested at most {_MAX_KEY_DEPTH} deep")
        buckets: set[str] = set()
        keys = []
        for url in urls:
            found, key = _split_urls(path, url, depth + 1)
            buckets |= found
            keys.append(key)
        return buckets, keys
    if not isinstance(urls, str) or not urls.startswith("s3://"):
        _fail(path, f"S3 url must begin with 's3://' (got {_show(urls)})")
    try:
        bucket, key = parse_s3_url(urls)
    except ValueError:
        _fail(path, f"S3 url has no bucket: {_show(urls)}")
    if not key:
        _fail(path, f"S3 url has no object key: {_show(urls)}")
    return {bucket}, key


def _normalise_input(path: str, spec: Any) -> dict:
    """One input_files / secondary_files value as {bucket_name, object_key, ...}, checked."""
    if isinstance(spec, (str, list)):
        buckets, keys = _split_urls(path, spec)
        if not buckets:
            _fail(path, "the list names no file")
        if len(buckets) != 1:
            _fail(path, "All the input files corresponding to a single input file argument "
                        "must be from the same bucket.")
        spec = {"bucket_name": buckets.pop(), "object_key": keys}
    elif not (isinstance(spec, dict) and "bucket_name" in spec and "object_key" in spec):
        _fail(path, _EACH_INPUT_MSG)
    _check_bucket(f"{path}.bucket_name", spec["bucket_name"])
    _check_nested_keys(f"{path}.object_key", spec["object_key"])
    rename = spec.get("rename") or ""
    if rename:
        _check_nested_keys(f"{path}.rename", rename)
        if _shape(rename) != _shape(spec["object_key"]):
            _fail(f"{path}.rename", "rename must have the same shape as object_key "
                                    "(a name for a key, a list of names for a list of keys)")
    if spec.get("unzip", "") not in UNZIP_TYPES:
        _fail(f"{path}.unzip", "unzip field must be gz, bz2 or ''")
    if not isinstance(spec.get("mount", False), bool):
        _fail(f"{path}.mount", f"must be true or false, not {_show(spec['mount'])}")
    if not isinstance(spec.get("profile", ""), str):
        _fail(f"{path}.profile", f"must be a profile name, not {_show(spec['profile'])}")
    conflicts = [field for field, used in (("rename", bool(rename and iter_keys(rename))),
                                           ("unzip", bool(spec.get("unzip")))) if used]
    if spec.get("mount") and conflicts:
        key = spec["object_key"] if isinstance(spec["object_key"], str) else _show(spec["object_key"])
        _fail(path, f"Incompatible input for file {key}: {conflicts[0]} and mount cannot be used together.",
              MalFormattedRunJsonException)
    return spec


def _check_input_target(path: str, argname: str, language: str) -> None:
    """A file:// input key: shell/snakemake only, under /data1/<language>, /data1/input or /data1/out."""
    if language not in ("shell", "snakemake"):
        _fail(path, "input file has to be defined with argument name for CWL and WDL", MalFormattedRunJsonException)
    target = _data1_path(path, argname, "input target directory")
    if not target.startswith((f"{DATA_ROOT}{language}", f"{DATA_ROOT}input", f"{DATA_ROOT}out")):
        _fail(path, f"input target directory must be in /data1/input, /data1/out or /data1/{language}")


def _fill_inputs(args: dict, language: str) -> None:
    """Normalise input_files and secondary_files in place."""
    for section in ("input_files", "secondary_files"):
        for argname, spec in list(args[section].items()):
            path = f"args.{section}.{argname}"
            _check_argname(path, argname)
            if argname.startswith("file://"):
                _check_input_target(path, argname, language)
            args[section][argname] = _normalise_input(path, spec)


def _check_input_env(env: dict) -> None:
    """input_env: variable names -> scalars (exported, and passed to the container with -e)."""
    for name, value in env.items():
        if not (isinstance(name, str) and _ENV_NAME_RE.fullmatch(name)):
            _fail(f"args.input_env.{name}", "is not a valid environment variable name")
        if not _is_scalar(value):
            _fail(f"args.input_env.{name}", f"must be a string, number or boolean, not {_show(value)}")


def _check_custom_errors(errors: list) -> None:
    """custom_errors: [{error_type, pattern (a regex), multiline?}]."""
    for i, spec in enumerate(errors):
        path = f"args.custom_errors[{i}]"
        if not isinstance(spec, dict):
            _fail(path, f"must be a dictionary with error_type and pattern, not {_show(spec)}")
        for field in ("error_type", "pattern"):
            if field not in spec:
                _fail(f"{path}.{field}", f"field {field} is required in each custom error",
                      MissingFieldInInputJsonException)
            if not isinstance(spec[field], str) or not spec[field]:
                _fail(f"{path}.{field}", f"must be a non-empty string, not {_show(spec[field])}")
        try:
            re.compile(spec["pattern"])
        except (re.error, OverflowError) as err:  # OverflowError: a repeat count too large
            _fail(f"{path}.pattern", f"{_show(spec['pattern'])} is not a valid regular expression: {err}")
        except RecursionError:  # the regex parser recurses per group
            _fail(f"{path}.pattern", f"{_show(spec['pattern'])} is not a valid regular expression: "
                                     "its groups are nested too deeply")
        if not isinstance(spec.get("multiline", False), bool):
            _fail(f"{path}.multiline", f"must be true or false, not {_show(spec['multiline'])}")


def _check_outputs(args: dict, language: str) -> None:
    """output_target (via output_targets), secondary_output_target and alt_cond_output_argnames."""
    targets = output_targets(args)
    if language in ("shell", "snakemake"):
        for target in targets:
            if not target.source.startswith("/"):
                _fail(f"args.output_target.{target.source}",
                      f"{language} jobs have no output arguments: the key must be a file:///data1/... path")
    secondary_output_targets(args)
    for name, alternatives in args["alt_cond_output_argnames"].items():
        if not _is_str_list(alternatives):
            _fail(f"args.alt_cond_output_argnames.{name}", f"must be a list of argnames, not {_show(alternatives)}")


def _fill_args(args: dict) -> None:
    """Validate args and fill upstream's defaults (Args.fill_default) in place."""
    _check_bucket("args.output_S3_bucket", args["output_S3_bucket"])
    _check_table("args", args, _ARGS_CHECKS)
    for field in ("input_files", "input_parameters", "input_env", "secondary_files", "output_target",
                  "secondary_output_target", "alt_cond_output_argnames", "additional_benchmarking_parameters"):
        args.setdefault(field, {})
    args.setdefault("custom_errors", [])
    args.setdefault("app_version", "")
    args.setdefault("app_name", "")
    args.setdefault("singularity", False)
    language = _resolve_language(args)
    _fill_workflow_fields(args, language)
    _fill_inputs(args, language)
    _check_input_env(args["input_env"])
    _check_outputs(args, language)
    _check_custom_errors(args["custom_errors"])


# ---------------------------------------------------------------------------------------------
# config

def data_volume_gb(size: int, as_is: bool = False) -> int:
    """The data volume for `size` GB: at least 10, plus 5 unless `as_is`; under EBS's 16 TB limit
    (EC2LaunchException), which the parser checks for a size in GB and the launch for `<n>x`."""
    volume = max(size, MIN_EBS_SIZE_GB) + (0 if as_is else EBS_SIZE_OVERHEAD_GB)
    if volume >= EBS_SIZE_LIMIT_GB:
        raise EC2LaunchException(f"EBS size limit (16TB) exceeded: (attempted size: {volume})")
    return volume


def _check_ebs(cfg: dict) -> None:
    """ebs_size (GB or '<n>x', under the 16 TB limit) and the gp3 throughput range, at parse time."""
    size = cfg.get("ebs_size", 0)
    if isinstance(size, float) and size.is_integer():
        size = cfg["ebs_size"] = int(size)
    if isinstance(size, str):
        try:
            multiplier = float(size[:-1]) if size.endswith("x") else math.nan
        except ValueError:
            multiplier = math.nan
        if not (math.isfinite(multiplier) and multiplier > 0):
            _fail("config.ebs_size", f'{_show(size)} is neither a number nor "<n>x"')
    elif not _is_int(size) or size < 0:
        _fail("config.ebs_size", f'{_show(size)} is neither a number nor "<n>x"' if not _is_number(size)
              else f"must be a whole number of GB >= 0, not {_show(size)}")
    else:
        try:
            data_volume_gb(size, bool(cfg.get("ebs_size_as_is")))
        except EC2LaunchException as err:
            _fail("config.ebs_size", str(err), EC2LaunchException)
    throughput = cfg.get("ebs_throughput", "")
    if cfg.get("ebs_type", "gp3") == "gp3" and throughput and not 125 <= throughput <= 1000:
        _fail("config.ebs_throughput", "Invalid EBS throughput. Specify a value between 125 and 1000.",
              EC2LaunchException)


def _use_benchmark(cfg: dict) -> bool:
    """Upstream's rule, on the fields as given: no instance_type and not both cpu & mem, or no ebs_size."""
    if "instance_type" not in cfg and ("cpu" not in cfg or "mem" not in cfg):
        return True
    return "ebs_size" not in cfg


def _fill_config(cfg: dict, kms_key_id: str | None, subnets: Sequence[str], security_groups: Sequence[str]) -> None:
    """Validate config and fill upstream's defaults (Config.fill_default), the account's included."""
    _check_bucket("config.log_bucket", cfg["log_bucket"])
    _check_table("config", cfg, _CONFIG_CHECKS)
    _check_ebs(cfg)
    if cfg.get("behavior_on_capacity_limit") == "retry_without_spot" and not cfg.get("spot_instance"):
        _fail("config.behavior_on_capacity_limit",
              "'behavior_on_capacity_limit': 'retry_without_spot' works only with 'spot_instance' : true")
    cfg.setdefault("use_benchmark", _use_benchmark(cfg))
    for field in ("instance_type", "EBS_optimized", "cpu", "ebs_iops", "ebs_throughput", "password", "key_name",
                  "spot_duration", "availability_zone", "security_group", "subnet"):
        cfg.setdefault(field, "")
    defaults = {
        "mem": 0, "ebs_size": 0, "ebs_type": "gp3", "shutdown_min": "now", "spot_instance": False,
        "behavior_on_capacity_limit": "fail", "public_postrun_json": False, "encrypt_s3_upload": False,
        "root_ebs_size": DEFAULT_ROOT_EBS_SIZE, "awsf_image": DEFAULT_AWSF_IMAGE, "mem_as_is": False,
        "ebs_size_as_is": False, "ami_id": "", "ami_per_region": {},
        "disable_metrics_collection": False, "metrics_interval": None, "spot_interruption_reruns": 0,
        "container_runtime": None,
    }
    for field, value in defaults.items():
        cfg.setdefault(field, value)
    cfg["cloudwatch_dashboard"] = False  # deprecated upstream: always off
    if "kms_key_id" not in cfg:
        cfg["kms_key_id"] = kms_key_id or None
        if cfg["kms_key_id"]:
            cfg["encrypt_s3_upload"] = True
    if not cfg["subnet"] and subnets:
        cfg["subnet"] = list(subnets)
    if not cfg["security_group"] and security_groups:
        cfg["security_group"] = security_groups[0]
    cfg["json_bucket"] = cfg["log_bucket"]


def _fill_sizing(args: dict, cfg: dict) -> None:
    """Without a benchmarkable app: ebs_size at least 10, EBS_optimized False, and a way to size the machine."""
    if args["app_name"] in BENCHMARKABLE_APP_NAMES:
        return
    if not cfg["ebs_size"] or (_is_int(cfg["ebs_size"]) and cfg["ebs_size"] < MIN_EBS_SIZE_GB):
        cfg["ebs_size"] = MIN_EBS_SIZE_GB
    if not cfg["EBS_optimized"]:
        cfg["EBS_optimized"] = False
    if not (cfg["mem"] and cfg["cpu"]) and not cfg["instance_type"]:
        _fail("config.instance_type", _NOT_ENOUGH_FIELDS_MSG, MissingFieldInInputJsonException)


# ---------------------------------------------------------------------------------------------
# The whole description.

def _dependency(data: dict, args: dict, cfg: dict) -> dict:
    """The first non-empty of top-level, args and config `dependency`, checked."""
    for path, holder in (("dependency", data), ("args.dependency", args), ("config.dependency", cfg)):
        dependency = holder.get("dependency")
        if not dependency:
            continue
        if not isinstance(dependency, dict):
            _fail(path, f'must be {{"exec_arn": [...], "job_id": [...]}}, not {_show(dependency)}')
        for field, ids in dependency.items():
            if field not in ("exec_arn", "job_id"):
                _fail(f"{path}.{field}", "unknown field: a dependency has exec_arn and job_id only")
            if not _is_str_list(ids):
                _fail(f"{path}.{field}", f"must be a list of strings, not {_show(ids)}")
        return copy.deepcopy(dependency)
    return {}


def _section(data: dict, name: str) -> dict:
    """`args` or `config`: required, a dictionary."""
    if name not in data:
        _fail(name, f"field {name} is required in the job description", MissingFieldInInputJsonException)
    if not isinstance(data[name], dict):
        _fail(name, f"must be a dictionary, not {_show(data[name])}")
    return data[name]


def _require(section: dict, name: str, field: str) -> None:
    if field not in section:
        _fail(f"{name}.{field}", f"field {field} is required in {name}", MissingFieldInInputJsonException)


def _jobid(data: dict, jobid: str | None) -> str | None:
    """The jobid argument, else the description's; never created here (the API does that)."""
    chosen = jobid or data.get("jobid")
    if chosen is None or chosen == "":
        return None
    if not (isinstance(chosen, str) and protocol.JOBID_PATTERN.fullmatch(chosen)):
        _fail("jobid", f"{_show(chosen)} is not a valid job id "
                       "(1-128 letters, digits, '_', '.' or '-', starting with a letter or digit)")
    return chosen


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
    args, cfg = _section(data, "args"), _section(data, "config")
    _require(args, "args", "output_S3_bucket")
    _require(cfg, "config", "log_bucket")
    chosen_jobid = _jobid(data, jobid)
    _fill_config(cfg, kms_key_id, subnets, security_groups)
    _fill_args(args)
    cfg["language"] = args["language"]
    cfg["singularity"] = bool(args["singularity"] or cfg.get("singularity", False))
    cfg["job_tag"] = args["app_name"]
    _fill_sizing(args, cfg)
    args["dependency"] = _dependency(data, args, cfg)
    result: dict = {"jobid": chosen_jobid} if chosen_jobid else {}
    result.update((key, value) for key, value in data.items() if key != "jobid")
    return result


# ---------------------------------------------------------------------------------------------
# Output targets, shared by the API (validation) and the agent (upload).

def _output_target(path: str, name: str, value: Any, bucket: Any) -> OutputTarget:
    """One output_target entry: "key", "s3://b/k", or {object_key|object_prefix, bucket_name?, unzip?, tag?}."""
    _check_argname(path, name)
    if name.startswith("file://"):
        source = _data1_path(path, name, "output target")
        if value in (None, ""):
            _fail(path, f"output_target missing for target {name}")
    else:
        source = name
    key = prefix = tag = None
    unzip = False
    if isinstance(value, str) and value:
        if value.startswith("s3://"):
            buckets, dest = _split_urls(path, value)
            bucket = buckets.pop()
        else:
            dest = value
        key, prefix = (None, dest) if dest.endswith("/") else (dest, None)
    elif isinstance(value, dict):
        unzip = value.get("unzip", False)
        if not isinstance(unzip, bool):
            _fail(f"{path}.unzip", f"must be true or false, not {_show(unzip)}")
        if unzip and "object_prefix" not in value:
            _fail(path, "object_prefix must be given with unzip=True")
        if "object_prefix" in value and "object_key" in value:
            _fail(path, "Specify either object_key or object_prefix, but not both in output_target")
        if "object_key" not in value and "object_prefix" not in value:
            _fail(path, "output_target needs object_key or object_prefix")
        key, prefix = value.get("object_key"), value.get("object_prefix")
        if isinstance(key, str) and key.endswith("/"):
            _fail(f"{path}.object_key", "object_key cannot end with '/' - please use object_prefix instead")
        if isinstance(prefix, str) and prefix and not prefix.endswith("/"):
            prefix += "/"
        bucket = value.get("bucket_name", bucket)
        tag = value.get("tag")
        if tag is not None:
            try:
                urllib.parse.parse_qsl(tag, keep_blank_values=True, strict_parsing=True)
            except (TypeError, ValueError, AttributeError):
                _fail(f"{path}.tag", f'must be "Key1=Value1&Key2=Value2", not {_show(tag)}')
    elif value not in (None, ""):
        _fail(path, f"must be an object key, an s3:// url or a dictionary, not {_show(value)}")
    for field, dest in (("object_key", key), ("object_prefix", prefix)):
        if isinstance(value, dict) and field in value:
            _check_relative(f"{path}.{field}", dest)  # null included: it names no destination
        elif dest is not None:
            _check_relative(path, dest)
    if bucket is None and not (isinstance(value, dict) and "bucket_name" in value):
        _fail("args.output_S3_bucket", "field output_S3_bucket is required in args", MissingFieldInInputJsonException)
    _check_bucket(f"{path}.bucket_name" if isinstance(value, dict) else path, bucket)
    return OutputTarget(source=source, bucket=bucket, key=key, prefix=prefix, unzip=unzip, tag=tag)


def output_targets(args: dict) -> list[OutputTarget]:
    """Every args.output_target entry as an OutputTarget; the bucket defaults to args.output_S3_bucket."""
    targets = args.get("output_target") or {}
    if not isinstance(targets, dict):
        _fail("args.output_target", f"must be a dictionary, not {_show(targets)}")
    return [_output_target(f"args.output_target.{name}", name, value, args.get("output_S3_bucket"))
            for name, value in targets.items()]


def secondary_output_targets(args: dict) -> dict[str, list[str]]:
    """args.secondary_output_target as argname -> list of keys (a single key becomes a one-element list)."""
    targets = args.get("secondary_output_target") or {}
    if not isinstance(targets, dict):
        _fail("args.secondary_output_target", f"must be a dictionary, not {_show(targets)}")
    result: dict[str, list[str]] = {}
    for name, keys in targets.items():
        path = f"args.secondary_output_target.{name}"
        keys = [keys] if isinstance(keys, str) else keys
        if not _is_str_list(keys):
            _fail(path, f"must be a key or a list of keys, not {_show(keys)}")
        for i, key in enumerate(keys):
            _check_relative(f"{path}[{i}]", _split_urls(path, key)[1] if key.startswith("s3://") else key)
        result[name] = list(keys)
    return result


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
