"""Output targets: where each output goes. The API (to validate) and the agent (to upload) share them."""
from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import ConfigDict, PlainValidator, TypeAdapter, model_validator

from tibanna.exceptions import MissingFieldInInputJsonException
from tibanna.jobspec.fields import (Bool, Bucket, Section, check_argname, check_bucket, check_relative,
                                    data1_path, given, split_urls)
from tibanna.jobspec.refusal import refusals, refuse, shaped, show, under


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


def _as_prefix(prefix: Any) -> Any:
    return prefix + "/" if isinstance(prefix, str) and prefix and not prefix.endswith("/") else prefix


def _check_object_key(key: Any) -> str:
    if isinstance(key, str) and key.endswith("/"):
        refuse("object_key cannot end with '/' - please use object_prefix instead")
    return check_relative(key)


def _check_object_prefix(prefix: Any) -> str:
    check_relative(_as_prefix(prefix))
    return prefix


def _check_tag(tag: Any) -> str | None:
    if tag is not None:
        try:
            urllib.parse.parse_qsl(tag, keep_blank_values=True, strict_parsing=True)
        except (TypeError, ValueError, AttributeError):
            refuse(f'must be "Key1=Value1&Key2=Value2", not {show(tag)}')
    return tag


class OutputDestination(Section):
    """An output_target value as a dictionary: a key or a prefix, in output_S3_bucket unless bucket_name says."""

    object_key: Annotated[str, PlainValidator(_check_object_key, json_schema_input_type=str)] = given()
    object_prefix: Annotated[str, PlainValidator(_check_object_prefix, json_schema_input_type=str)] = given()
    """A folder: the output (a directory, or a zip file with unzip) goes under it."""
    bucket_name: Bucket = given()
    unzip: Bool = given()
    """Unzip the output (a zip file) into object_prefix."""
    tag: Annotated[str | None, PlainValidator(_check_tag, json_schema_input_type=str | None)] = given()
    """S3 object tags, 'Key1=Value1&Key2=Value2'."""

    @model_validator(mode="before")
    @classmethod
    def _one_destination(cls, data: dict) -> dict:
        if data.get("unzip") is True and "object_prefix" not in data:
            refuse("object_prefix must be given with unzip=True")
        if "object_prefix" in data and "object_key" in data:
            refuse("Specify either object_key or object_prefix, but not both in output_target")
        if "object_key" not in data and "object_prefix" not in data:
            refuse("output_target needs object_key or object_prefix")
        return data


def _split_output_key(value: str) -> tuple[str | None, str | None, str | None]:
    """(bucket of an s3:// url or None, key, prefix) of an output_target string; a trailing '/' makes a prefix."""
    bucket = None
    dest = value
    if value.startswith("s3://"):
        buckets, dest = split_urls(value)
        bucket = buckets.pop()
    check_relative(dest)
    if bucket is not None:
        check_bucket(bucket)
    return (bucket, None, dest) if dest.endswith("/") else (bucket, dest, None)


def _check_output_value(value: Any) -> Any:
    """None or '' (the output keeps its name), a key, 'dir/', an s3:// url, or a dictionary."""
    if isinstance(value, dict):
        return OutputDestination.model_validate(value)
    if isinstance(value, str) and value:
        _split_output_key(value)
    elif value is not None and value != "":
        refuse(f"must be an object key, an s3:// url or a dictionary, not {show(value)}")
    return value


OutputValue = Annotated[Any, PlainValidator(_check_output_value, json_schema_input_type=OutputDestination | str | None)]
OutputTargets = Annotated[dict[str, OutputValue], shaped(dict, "must be a dictionary")]


def build_targets(targets: dict[str, Any], default_bucket: Any) -> list[OutputTarget]:
    """Checked output_target values as OutputTargets; refusals are located below `args`."""
    found = []
    for name, value in targets.items():
        at = ("output_target", name)
        check_argname(name, at)
        source = name
        if name.startswith("file://"):
            source = data1_path(name, "output target", at)
            if value is None or value == "":
                refuse(f"output_target missing for target {name}", at=at)
        bucket, key, prefix, unzip, tag = default_bucket, None, None, False, None
        if isinstance(value, OutputDestination):
            key, prefix, unzip, tag = value.object_key, _as_prefix(value.object_prefix), bool(value.unzip), value.tag
            if "bucket_name" in value.model_fields_set:
                bucket = value.bucket_name  # checked: never null
        elif value:
            url_bucket, key, prefix = _split_output_key(value)
            bucket = url_bucket or bucket
        if bucket is None:
            refuse("field output_S3_bucket is required in args", at=("output_S3_bucket",),
                   exc=MissingFieldInInputJsonException)
        with under(*at, *(("bucket_name",) if isinstance(value, OutputDestination) else ())):
            check_bucket(bucket)
        found.append(OutputTarget(source=source, bucket=bucket, key=key, prefix=prefix, unzip=unzip, tag=tag))
    return found


def _check_secondary_keys(keys: Any) -> Any:
    """A key (or s3:// url) or a list of them: the secondary files of one output."""
    listed = [keys] if isinstance(keys, str) else keys
    if not (isinstance(listed, list) and all(isinstance(key, str) and key for key in listed)):
        refuse(f"must be a key or a list of keys, not {show(listed)}")
    for i, key in enumerate(listed):
        dest = split_urls(key)[1] if key.startswith("s3://") else key
        with under(i):
            check_relative(dest)
    return keys


SecondaryTargets = Annotated[dict[str, Annotated[Any, PlainValidator(
    _check_secondary_keys, json_schema_input_type=str | list[str])]], shaped(dict, "must be a dictionary")]

_STRICT = ConfigDict(strict=True)
_OUTPUT_TARGETS: TypeAdapter[dict[str, Any]] = TypeAdapter(OutputTargets, config=_STRICT)
_SECONDARY_TARGETS: TypeAdapter[dict[str, Any]] = TypeAdapter(SecondaryTargets, config=_STRICT)


def output_targets(args: dict) -> list[OutputTarget]:
    """Every args.output_target entry as an OutputTarget; the bucket defaults to args.output_S3_bucket."""
    with refusals(("args", "output_target")):
        targets = _OUTPUT_TARGETS.validate_python(args.get("output_target") or {})
    with refusals(("args",)):
        return build_targets(targets, args.get("output_S3_bucket"))


def secondary_output_targets(args: dict) -> dict[str, list[str]]:
    """args.secondary_output_target as argname -> list of keys (a single key becomes a one-element list)."""
    with refusals(("args", "secondary_output_target")):
        targets = _SECONDARY_TARGETS.validate_python(args.get("secondary_output_target") or {})
    return {name: [keys] if isinstance(keys, str) else list(keys) for name, keys in targets.items()}
