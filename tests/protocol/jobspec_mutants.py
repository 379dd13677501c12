"""Upstream's sample descriptions, and mutants of them for fuzzing `tibanna.jobspec`.

Shared by tests/protocol/test_jobspec.py (a short run in `make test`) and bench/fuzz_jobspec.py (a long
one). `mutants(bases)` takes a valid description and applies one to four mutations at random
places: a field dropped, set to null, replaced (wrong types, huge strings, any unicode including NUL,
line breaks and lone surrogates, NaN/inf, huge numbers, wrong enum values, deep nesting),
added, wrapped in a list or dict, or swapped for another field's value. `outcome` parses one and
says "accepted" or "refused"; anything else (another exception, a refusal that does not start
with a field path or spans lines, an accepted description that cannot be stored or read back)
raises, which fails the property.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from tibanna import jobspec
from tibanna.exceptions import TibannaError

SAMPLES = Path(__file__).parents[1] / "data" / "upstream-samples"  # upstream's MIT-licensed sample JSONs


def corpus_paths() -> list[Path]:
    """Upstream's job descriptions: the sample files holding both args and config."""
    found = []
    for path in sorted([*SAMPLES.glob("job-descriptions/*.json"), *SAMPLES.glob("examples/*.json")]):
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "args" in data and "config" in data:
            found.append(path)
    return found


def corpus() -> list[dict]:
    return [json.loads(path.read_text()) for path in corpus_paths()]


# Names a refusal may start with: the description's sections and top-level keys, or the file itself.
ROOT_NAMES = ("jobid", "dependency", "args", "config", "_tibanna", "app_name", "parameters")
REFUSAL_STARTS = tuple(f"{name}{sep}" for name in ("input_json", *ROOT_NAMES) for sep in (".", "[", ":"))

FIELD_NAMES = sorted({
    *jobspec.Config.model_fields, *jobspec.Args.model_fields, "log_bucket", "output_S3_bucket", "ebs_size", "dependency",
    "cwl_main_filename", "wdl_main_filename", "snakemake_main_filename", "bucket_name", "object_key",
    "object_prefix", "rename", "unzip", "mount", "profile", "tag", "error_type", "pattern", "multiline",
    "exec_arn", "job_id",
})
WRONG_WORDS = [
    "", " ", "gp9", "GP3", "now ", "retry_without_spot", "wait_and_retry", "cwl_draft3", "draft3", "v1.2", "wdl",
    "wdl_draft2", "shell", "snakemake", "python", "gz", "bz2", "zip", "docker", "lxc", "auto", "s3://",
    "s3://in-bucket", "s3://Bad_Bucket/x", "s3://out-bucket/../x", "s3://out-bucket/dir/", "file:///data1/out/x",
    "file:///data1/../etc/x", "file:///tmp/x", "file://", "../x", "/etc/passwd", "a/", ".", "3x", "0x", "-1x",
    "nanx", "infx", "1e309", "30", "t3.micro", "true", "null", "NaN", "(unclosed", "(" * 3000, "a{99999999999}",
    "Key=Value&", "=", "1A", "a=b",
]
NUMBERS = st.one_of(
    st.integers(), st.floats(),
    st.sampled_from([0, -1, 1, 0.5, 125, 1000, 16000, 15996, 2**63, 10**400, float("nan"), float("inf")]),
)
TEXT = st.text(st.characters(exclude_categories=()), max_size=20)  # every code point: NUL, breaks, surrogates
HUGE_TEXT = st.builds(lambda char, n: char * n, st.sampled_from(["x", "é", "a/", "\u2028", "\U0001f9ec"]),
                      st.sampled_from([10_000, 1_000_000]))


def nest(depth: int, kind: str) -> Any:
    """A list (or dict) holding a list (or dict) ... `depth` levels deep, built without recursion."""
    value: Any = "leaf"
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


DEEP = st.builds(nest, st.one_of(st.integers(1, 8), st.integers(95, 105), st.integers(400, 3000)),
                 st.sampled_from(["list", "dict"]))
JSONISH = st.recursive(
    st.none() | st.booleans() | NUMBERS | TEXT,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.sampled_from(FIELD_NAMES) | TEXT, kids, max_size=3),
    max_leaves=6,
)
JUNK = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT, st.sampled_from(WRONG_WORDS), HUGE_TEXT, DEEP, JSONISH,
                 st.builds(list), st.builds(dict))  # new objects: a later mutation may fill them
_WALK_DEPTH = 12  # mutation sites are looked for this deep (a deep mutant is not walked to its end)


def _sites(data: dict) -> list[tuple]:
    """Paths (tuples of keys and indices) of every value in `data`, up to _WALK_DEPTH deep."""
    found: list[tuple] = []
    stack: list[tuple[tuple, Any]] = [((), data)]
    while stack:
        path, value = stack.pop()
        if len(path) >= _WALK_DEPTH:
            continue
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, item in items:
            found.append((*path, key))
            stack.append(((*path, key), item))
    return found


def _copy(value: Any) -> Any:
    """A deep copy of JSON data without recursion (a mutant may nest thousands of levels deep)."""
    root = [value]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    while stack:
        holder, key = stack.pop()
        item = holder[key]
        if isinstance(item, dict):
            holder[key] = dict(item)
            stack.extend((holder[key], name) for name in item)
        elif isinstance(item, list):
            holder[key] = list(item)
            stack.extend((holder[key], i) for i in range(len(item)))
    return root[0]


def _at(data: Any, path: tuple) -> Any:
    for key in path:
        data = data[key]
    return data


@st.composite
def mutants(draw: st.DrawFn, bases: list[dict]) -> dict:
    """A copy of one of `bases` with one to four mutations."""
    data = _copy(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(1, 4))):
        sites = _sites(data)
        operation = draw(st.sampled_from(["drop", "null", "replace", "replace", "add", "wrap", "swap"]))
        if operation == "add" or not sites:
            holders = [()] + [site for site in sites if isinstance(_at(data, site), dict)]
            holder = draw(st.sampled_from(holders))
            key = draw(st.sampled_from(ROOT_NAMES) if not holder else st.sampled_from(FIELD_NAMES) | TEXT)
            _at(data, holder)[key] = draw(JUNK)
            continue
        site = draw(st.sampled_from(sites))
        parent, key = _at(data, site[:-1]), site[-1]
        if operation == "drop":
            del parent[key]
        elif operation == "null":
            parent[key] = None
        elif operation == "replace":
            parent[key] = draw(JUNK)
        elif operation == "wrap":
            parent[key] = draw(st.sampled_from([[parent[key]], {"object_key": parent[key]}]))
        else:
            parent[key] = _copy(_at(data, draw(st.sampled_from(sites))))
    return data


def check_refusal(message: str) -> None:
    """A refusal is one line that starts with a field path."""
    assert message.splitlines() == [message], f"refusal spans lines: {message!r}"
    assert message.startswith(REFUSAL_STARTS), f"refusal names no field: {message[:200]!r}"


def outcome(description: dict | Path) -> str:
    """'accepted' or 'refused'; raises when the parser breaks its contract."""
    try:
        parsed = jobspec.parse(description)
    except TibannaError as err:
        check_refusal(str(err))
        return "refused"
    json.dumps(parsed)  # the API stores it as JSON
    jobspec.parse(parsed)  # and the agent and reruns read it back
    given = parsed["args"]["output_target"]
    for (name, value), target in zip(given.items(), jobspec.output_targets(parsed["args"])):
        if isinstance(value, dict):  # an explicit destination is a real one
            assert target.key if "object_key" in value else target.prefix, f"output_target.{name}: {value!r}"
            assert target.prefix or not target.unzip, f"output_target.{name} unzips without a prefix"
    jobspec.secondary_output_targets(parsed["args"])
    return "accepted"
