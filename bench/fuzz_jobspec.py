"""Fuzz the job description parser with mutants of valid descriptions (10,000 by default).

Each mutant of upstream's sample descriptions (tests/jobspec_mutants.py: dropped fields, wrong
types, huge strings, any unicode, NaN/inf, wrong enums, deep nesting, nulls), a share of them
read from a JSON file, must be accepted or refused with a one-line TibannaError that starts with
a field path. Prints how many were tried, accepted and refused, the time, and as a baseline the
parse time of the unmutated corpus measured in the same run; exits 1 on the first broken contract
(with hypothesis' reproduction of it).
Run: .venv/bin/python bench/fuzz_jobspec.py [EXAMPLES]
"""
from __future__ import annotations

import collections
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

import hypothesis as hyp
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from jobspec_mutants import corpus, mutants, outcome  # noqa: E402

from tibanna import jobspec  # noqa: E402


def baseline(bases: list[dict], rounds: int = 20) -> float:
    """Seconds per parse of an unmutated corpus description."""
    start = time.perf_counter()
    for _ in range(rounds):
        for description in bases:
            jobspec.parse(description)
    return (time.perf_counter() - start) / (rounds * len(bases))


def main(examples: int) -> int:
    bases = corpus()
    per_parse = baseline(bases)
    counts: collections.Counter[str] = collections.Counter()
    with tempfile.TemporaryDirectory() as folder:
        mutant_file = Path(folder) / "mutant.json"

        @hyp.settings(max_examples=examples, deadline=None, database=None, phases=[hyp.Phase.generate],
                      suppress_health_check=list(hyp.HealthCheck))
        @hyp.given(description=mutants(bases), via_file=st.booleans())
        def fuzz(description: dict, via_file: bool) -> None:
            if via_file:
                try:
                    mutant_file.write_text(json.dumps(description))
                    counts["from a file"] += 1
                    description = mutant_file
                except RecursionError:  # deeper than json.dumps writes: parsed as a dict
                    pass
            counts[outcome(description)] += 1

        start = time.perf_counter()
        try:
            fuzz()
        except Exception as err:  # noqa: BLE001 - the report of a broken contract, then exit 1
            traceback.print_exc(limit=-8)
            print(f"BROKEN after {sum(counts[k] for k in ('accepted', 'refused'))} mutants: "
                  f"{type(err).__name__}: {str(err)[:500]}")
            return 1
        seconds = time.perf_counter() - start
    tried = counts["accepted"] + counts["refused"]
    print(f"mutants tried: {tried} ({counts['from a file']} read from a JSON file)")
    print(f"accepted: {counts['accepted']}  refused with a field path: {counts['refused']}  other errors: 0")
    print(f"time: {seconds:.1f} s ({seconds / max(tried, 1) * 1e3:.2f} ms per mutant, generation included)")
    print(f"baseline: {per_parse * 1e3:.3f} ms per parse of an unmutated corpus description "
          f"({len(bases)} descriptions)")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
