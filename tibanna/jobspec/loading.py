"""Reading a job description: a dict or a JSON file, checked as JSON data before anything recurses into it."""
from __future__ import annotations

import copy
import json
import os
import re
from typing import Any

from tibanna.jobspec.refusal import Location, fail, field_path, show

# Levels of dictionaries and lists a description may nest (upstream's deepest use 7): checked before
# anything recurses into it, so no input reaches Python's recursion limit.
MAX_NESTING = 100
_MAX_FLOAT_BITS = 1024  # larger integers overflow when compared as floats (and far larger ones cannot be printed)
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _path(link: tuple | None) -> str:
    """The field path of a node of `_check_json_data`'s walk (links are (parent link, key or index))."""
    parts: list[str | int] = []
    while link is not None:
        link, step = link
        parts.append(step)
    location: Location = tuple(reversed(parts))
    return field_path(location)


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
                fail(_path(link), f"nested more than {MAX_NESTING} levels deep")
            for key, item in value.items():
                if not isinstance(key, str):
                    fail(_path(link), f"keys must be strings, not {type(key).__name__}")
                step = (link, key)
                if problem := _string_problem(key):
                    fail(_path(step), f"the key {problem}")
                stack.append((item, depth + 1, step))
        elif isinstance(value, (list, tuple)):
            if depth >= MAX_NESTING:
                fail(_path(link), f"nested more than {MAX_NESTING} levels deep")
            stack.extend((item, depth + 1, (link, i)) for i, item in enumerate(value))
        elif isinstance(value, str):
            if problem := _string_problem(value):
                fail(_path(link), f"the value {problem}")
        elif isinstance(value, int) and value.bit_length() > _MAX_FLOAT_BITS:
            fail(_path(link), f"is too large a number ({value.bit_length()} bits)")
        elif not isinstance(value, (int, float, type(None))):
            fail(_path(link), "must be JSON data (a string, number, boolean, null, list or dictionary), "
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
        fail("input_json", f"input json must be either a file or a dictionary (got {show(str(input_json))})")
    problem = None
    try:
        with open(input_json, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as err:
        problem = " ".join(str(err).split())
    except RecursionError:  # the decoder recurses per level: far deeper than MAX_NESTING
        problem = f"nested more than {MAX_NESTING} levels deep"
    if problem is not None:
        fail("input_json", f"cannot read {os.fspath(input_json)!r} as JSON: {problem}")
    if not isinstance(data, dict):
        fail("input_json", f"the description must be a JSON object, not {type(data).__name__}")
    _check_json_data(data)
    return data
