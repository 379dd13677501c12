"""The field types the job description's models share: each with upstream's rule and wording.

A type is an `Annotated` pydantic type: its constraints give the JSON Schema, and `problem` (or a
check function raising `Refusal`) gives the message a wrong value is refused with.
"""
from __future__ import annotations

import posixpath
import re
from typing import Annotated, Any, ClassVar, Literal

from annotated_types import Ge, Gt, MinLen
from pydantic import (AllowInfNan, BaseModel, ConfigDict, Field, PlainValidator, StringConstraints,
                      model_serializer, model_validator)

from tibanna.exceptions import MissingFieldInInputJsonException
from tibanna.jobspec.refusal import problem, refuse, show, under
from tibanna.storage.base import parse_s3_url

DATA_ROOT = "/data1/"
MAX_KEY_DEPTH = 3  # upstream stages a key, a list, a list of lists or a 3-deep list
_IP_RE = re.compile(r"\d+\.\d+\.\d+\.\d+")


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def given() -> Any:
    """A field checked when present and left out when absent (upstream fills no default for it)."""
    return Field(default=None, json_schema_extra=_no_default)


class Section(BaseModel):
    """A part of the description: strict JSON types, unknown fields kept, required fields named as upstream.

    `parse` dumps a section back into a dict: given fields and filled defaults, never a `given()`
    field that was absent.
    """

    model_config = ConfigDict(strict=True, extra="allow", use_attribute_docstrings=True)
    _given_only: ClassVar[frozenset[str]] = frozenset()
    _required_fields: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._given_only = frozenset(name for name, info in cls.model_fields.items()
                                    if info.json_schema_extra is _no_default)
        cls._required_fields = tuple(name for name, info in cls.model_fields.items() if info.is_required())

    @classmethod
    def required_in(cls, field: str, data: dict) -> str:
        """Where upstream says a missing field is required: 'args', 'config', ..."""
        return cls.__name__

    @classmethod
    def check_required(cls, data: dict) -> None:
        """Refuse the first required field missing from `data`, in upstream's words."""
        for name in cls._required_fields:
            if name not in data:
                refuse(f"field {name} is required in {cls.required_in(name, data)}", at=(name,),
                       exc=MissingFieldInInputJsonException)

    @model_validator(mode="before")
    @classmethod
    def _required(cls, data: Any) -> Any:
        if isinstance(data, dict):
            cls.check_required(data)
        return data

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict:
        data = handler(self)
        for name in self._given_only - self.model_fields_set:
            del data[name]
        return data


# ---------------------------------------------------------------------------------------------
# Scalars.

def _finite_float(*bounds: Any) -> Any:
    return Annotated[float, AllowInfNan(False), *bounds]


Bool = Annotated[bool, problem("must be true or false")]
Str = Annotated[str, problem("must be a string")]
NonEmptyStr = Annotated[str, MinLen(1), problem("must be a non-empty string")]
StrList = list[Annotated[str, MinLen(1)]]
Number = int | _finite_float()  # a JSON number: never a boolean, NaN or infinity
NonNegativeNumber = Annotated[int, Ge(0)] | _finite_float(Ge(0))
PositiveNumber = Annotated[int, Gt(0)] | _finite_float(Gt(0))
Scalar = str | bool | Number
OptionalPositiveInt = Annotated[Literal[""] | Annotated[int, Gt(0)], problem("must be a positive whole number or ''")]
Dictionary = Annotated[dict[str, Any], problem("must be a dictionary")]


_BUCKET = "[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
_BUCKET_RE = re.compile(_BUCKET)


def check_bucket(name: Any) -> str:
    """S3's bucket naming rules; they also keep local bucket folders inside TIBANNA_HOME."""
    if not (isinstance(name, str) and _BUCKET_RE.fullmatch(name)) or ".." in name or _IP_RE.fullmatch(name):
        refuse(f"{show(name)} is not a valid bucket name "
               "(3-63 lowercase letters, digits, '.' or '-', starting and ending with a letter or digit)")
    return name


Bucket = Annotated[str, PlainValidator(check_bucket, json_schema_input_type=Annotated[
    str, StringConstraints(pattern=f"^{_BUCKET}$"), Field(description="an S3 bucket name")])]


# ---------------------------------------------------------------------------------------------
# Keys and paths.

def check_relative(value: Any) -> str:
    """A key, prefix, rename or file name: a non-empty relative path that stays inside its root."""
    if not isinstance(value, str) or not value:
        refuse(f"must be a non-empty string, not {show(value)}")
    normal = posixpath.normpath(value)
    if value.startswith("/") or normal == ".." or normal.startswith("../"):
        refuse(f"{show(value)} leaves its root (absolute paths and '..' escapes are refused)")
    if normal == ".":
        refuse(f"{show(value)} names no file")
    return value


_RelativeInput = Annotated[str, MinLen(1)]  # relative: no leading '/', no '..' escape
RelativePath = Annotated[str, PlainValidator(check_relative, json_schema_input_type=_RelativeInput)]
NestedRelative = _RelativeInput | list[_RelativeInput | list[_RelativeInput | list[_RelativeInput]]]


def check_nested_keys(keys: Any, depth: int = 0) -> Any:
    """An object key, or a list (up to 3 deep) of them, as upstream stages them."""
    if not isinstance(keys, list):
        return check_relative(keys)
    if depth == MAX_KEY_DEPTH:
        refuse(f"lists of keys may be nested at most {MAX_KEY_DEPTH} deep")
    for i, item in enumerate(keys):
        with under(i):
            check_nested_keys(item, depth + 1)
    return keys


NestedKeys = Annotated[Any, PlainValidator(check_nested_keys, json_schema_input_type=NestedRelative)]


def split_urls(urls: Any, depth: int = 0) -> tuple[set[str], Any]:
    """Buckets and keys of an s3:// url or a nested list of them (upstream's run_on_nested_arrays1)."""
    if isinstance(urls, list):
        if depth == MAX_KEY_DEPTH:
            refuse(f"lists of keys may be nested at most {MAX_KEY_DEPTH} deep")
        buckets: set[str] = set()
        keys = []
        for url in urls:
            found, key = split_urls(url, depth + 1)
            buckets |= found
            keys.append(key)
        return buckets, keys
    if not isinstance(urls, str) or not urls.startswith("s3://"):
        refuse(f"S3 url must begin with 's3://' (got {show(urls)})")
    try:
        bucket, key = parse_s3_url(urls)
    except ValueError:
        refuse(f"S3 url has no bucket: {show(urls)}")
    if not key:
        refuse(f"S3 url has no object key: {show(urls)}")
    return {bucket}, key


S3Url = Annotated[str, StringConstraints(pattern=r"^s3://[^/]+/.")]
S3Urls = S3Url | list[S3Url | list[S3Url | list[S3Url]]]


def data1_path(uri: str, what: str, at: tuple = ()) -> str:
    """The absolute path of a file:// key, normalised; refused unless it is under /data1/."""
    target = posixpath.normpath(uri[len("file://"):])
    if not target.startswith(DATA_ROOT):
        refuse(f"{what} must be in {DATA_ROOT} (got {show(target)})", at=at)
    return target


def check_argname(name: str, at: tuple) -> None:
    """Keys of input_files, output_target, ...: an argname or a file:// path (never empty)."""
    if not name:
        refuse(f"argument names must be non-empty strings, not {show(name)}", at=at)


def iter_keys(object_key: str | list) -> list[str]:
    """Flatten an object key or a nested list of keys (for sizes and staging)."""
    if isinstance(object_key, str):
        return [object_key]
    return [key for item in object_key for key in iter_keys(item)]


# ---------------------------------------------------------------------------------------------
# Dependency: top-level, in args or in config (the first non-empty one counts).

class Dependency(Section):
    """Jobs this job waits for: their executions' ARNs or their job ids."""

    model_config = ConfigDict(extra="forbid")
    exec_arn: Annotated[StrList, problem("must be a list of strings")] = given()
    job_id: Annotated[StrList, problem("must be a list of strings")] = given()

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: dict) -> dict:
        for field in data:
            if field not in cls.model_fields:
                refuse("unknown field: a dependency has exec_arn and job_id only", at=(field,))
        return data


def _check_dependency(value: Any) -> Any:
    if not value:
        return value  # no dependency
    if not isinstance(value, dict):
        refuse(f'must be {{"exec_arn": [...], "job_id": [...]}}, not {show(value)}')
    return Dependency.model_validate(value)


DependencyField = Annotated[Any, PlainValidator(_check_dependency, json_schema_input_type=Dependency | None)]
