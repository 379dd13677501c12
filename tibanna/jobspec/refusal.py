"""How the job description refuses: one line, the field path first, upstream's exception class.

Checks inside the models raise `Refusal` (a ValueError, so pydantic records it with the field's
location); `raise_refusal` turns the first error of a pydantic ValidationError, or a Refusal met
outside validation, into the TibannaError the caller sees.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable, NoReturn

from pydantic import BeforeValidator, ValidationError, WrapValidator

from tibanna.exceptions import MalFormattedInputJsonException, TibannaError

Location = tuple[str | int, ...]

_MAX_PATH_CHARS = 200  # a field path longer than this is cut in messages
# Characters that would break a message over lines (or hide in it), written as escapes instead.
_UNPRINTABLE = {code: repr(chr(code))[1:-1]
                for code in (*range(32), 0x7F, 0x85, 0x2028, 0x2029, *range(0xD800, 0xE000))}


class Refusal(ValueError):
    """A refusal raised during validation: the message, where below the checked value, upstream's class."""

    def __init__(self, message: str, at: Location = (), exc: type[TibannaError] = MalFormattedInputJsonException):
        super().__init__(message)
        self.message, self.at, self.exc = message, at, exc


def refuse(message: str, *, at: Location = (),
           exc: type[TibannaError] = MalFormattedInputJsonException) -> NoReturn:
    raise Refusal(message, at, exc)


def show(value: Any) -> str:
    """A short JSON-ish rendering of a user's value for a message."""
    try:
        text = json.dumps(value, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def field_path(location: Location) -> str:
    """`args.input_files.x.object_key[0]` for ("args", "input_files", "x", "object_key", 0)."""
    parts = [f"[{part}]" if isinstance(part, int) else f".{part}" if i else part
             for i, part in enumerate(location)]
    return "".join(parts) or "input_json"


def fail(path: str, message: str, exc: type[TibannaError] = MalFormattedInputJsonException) -> NoReturn:
    """Refuse the description: one line, starting with the field path (cut when a user's key is huge)."""
    if len(path) > _MAX_PATH_CHARS:
        path = path[:_MAX_PATH_CHARS - 3] + "..."
    raise exc(f"{path}: {message}".translate(_UNPRINTABLE))


def raise_refusal(error: ValidationError | Refusal, prefix: Location = ()) -> NoReturn:
    """The first error as a TibannaError; `prefix` is where the validated value sits in the description."""
    if isinstance(error, Refusal):
        fail(field_path((*prefix, *error.at)), error.message, error.exc)
    first = error.errors(include_url=False)[0]
    location = (*prefix, *first["loc"])
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, Refusal):
        fail(field_path((*location, *cause.at)), cause.message, cause.exc)
    fail(field_path(location), first["msg"])  # a pydantic check without a message of ours


@contextmanager
def under(*at: str | int) -> Iterator[None]:
    """A refusal in the block happened below `at` (a list index, a dictionary key)."""
    try:
        yield
    except Refusal as err:
        refuse(err.message, at=(*at, *err.at), exc=err.exc)


@contextmanager
def refusals(prefix: Location = ()) -> Iterator[None]:
    """Validation errors and refusals in the block become one-line TibannaErrors under `prefix`."""
    try:
        yield
    except (ValidationError, Refusal) as err:
        raise_refusal(err, prefix)


def problem(what: str | Callable[[Any], str], exc: type[TibannaError] = MalFormattedInputJsonException
            ) -> WrapValidator:
    """For a leaf type: any failure is refused with upstream's wording, `<what>, not <value>`.

    `what` may instead be a function of the value giving the whole message.
    """
    def check(value: Any, handler: Callable[[Any], Any]) -> Any:
        try:
            return handler(value)
        except ValidationError:
            refuse(what(value) if callable(what) else f"{what}, not {show(value)}", exc=exc)
    return WrapValidator(check)


def shaped(kind: type, what: str) -> BeforeValidator:
    """For a container: another kind of value is refused as `<what>, not <value>`; items keep their own refusals."""
    def check(value: Any) -> Any:
        if not isinstance(value, kind):
            refuse(f"{what}, not {show(value)}")
        return value
    return BeforeValidator(check)

