"""Check every request against botocore's service models the way AWS does, not the way botocore does.

botocore validates types, required members and minimum lengths only (for forward compatibility),
and moto checks even less. AWS refuses a request whose strings miss their shape's `pattern`
(matched in full, as AWS's Java services do), exceed `max`, or are not one of the shape's `enum`
values, and whose numbers or lists are outside `min`/`max`. `strict_validation()` adds those
checks to botocore's `ParamValidator`; each violation is reported as a validation error, so the
request fails at once, and it is also recorded so a test that swallowed the error still fails.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Iterator

import regex
from botocore import validate

# Java regular expressions spell characters outside the BMP as UTF-16 surrogate pairs.
_SURROGATE_RANGE = "\\uD800\\uDC00-\\uDBFF\\uDFFF"
_ASTRAL_RANGE = "\\U00010000-\\U0010FFFF"


@functools.lru_cache(maxsize=None)
def _pattern(text: str) -> regex.Pattern:
    return regex.compile(text.replace(_SURROGATE_RANGE, _ASTRAL_RANGE))


class Violations(list):
    """What the strict checks found, as `(parameter, problem)` pairs."""

    def report(self, errors: validate.ValidationErrors, name: str, problem: str, value: object) -> None:
        self.append((name, f"{problem}: {value!r}"))
        errors.report(name, "invalid type", param=value,
                      valid_types=[f"a value AWS accepts ({problem})"])


@contextlib.contextmanager
def strict_validation() -> Iterator[Violations]:
    """Within the block, every botocore request is checked against patterns, max lengths and enums."""
    found = Violations()
    original_string = validate.ParamValidator._validate_string
    original_list = validate.ParamValidator._validate_list
    original_range = {kind: getattr(validate.ParamValidator, f"_validate_{kind}")
                      for kind in ("integer", "long", "map")}
    attrs = validate.ParamValidator.VALIDATED_METADATA_ATTRS

    def string(self, param, shape, errors, name):
        original_string(self, param, shape, errors, name)
        if not isinstance(param, str):
            return
        if "max" in shape.metadata and len(param) > shape.metadata["max"]:
            found.report(errors, name, f"longer than {shape.metadata['max']}", param)
        pattern = shape.metadata.get("pattern")
        if pattern and not _pattern(pattern).fullmatch(param):
            found.report(errors, name, f"does not match {pattern}", param)
        enum = shape.metadata.get("enum")
        if enum and param not in enum:
            found.report(errors, name, f"not one of {shape.name}", param)

    def bounded(kind):
        def check(self, param, shape, errors, name):
            original_range[kind](self, param, shape, errors, name)
            size = len(param) if kind == "map" and isinstance(param, dict) else param
            if isinstance(size, int) and "max" in shape.metadata and size > shape.metadata["max"]:
                found.report(errors, name, f"above the maximum {shape.metadata['max']}", param)
        return check

    def listing(self, param, shape, errors, name):
        original_list(self, param, shape, errors, name)
        if isinstance(param, (list, tuple)) and "max" in shape.metadata and len(param) > shape.metadata["max"]:
            found.report(errors, name, f"more than {shape.metadata['max']} items", len(param))

    patches = {"_validate_string": string, "_validate_list": listing,
               **{f"_validate_{kind}": bounded(kind) for kind in original_range}}
    saved = {attr: getattr(validate.ParamValidator, attr) for attr in patches}
    for attr, function in patches.items():
        setattr(validate.ParamValidator, attr, function)
    # Members of lists are only type-checked unless their shape has a constraint botocore knows of.
    validate.ParamValidator.VALIDATED_METADATA_ATTRS = attrs | {"pattern", "max", "enum"}
    try:
        yield found
    finally:
        for attr, function in saved.items():
            setattr(validate.ParamValidator, attr, function)
        validate.ParamValidator.VALIDATED_METADATA_ATTRS = attrs
