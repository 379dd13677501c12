"""An orchestrator's idempotency key and its jobs (`API.submit_or_attach`, docs/design.md 4).

The jobs of a key are `key`, `key-2`, `key-3`, ...: a try attaches to the last one while it
runs or once it succeeded, and starts the next one after it ended otherwise.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from tibanna import protocol

RESTARTED_AFTER = (protocol.FAILED, protocol.TIMED_OUT, protocol.ABORTED)  # a try starts a new job
_GENERATION_BATCH = 10  # job ids of one key looked up per query


def generation_id(key: str, generation: int) -> str:
    """The id of the n-th job of an idempotency key: `key`, `key-2`, `key-3`, ..."""
    return key if generation == 1 else f"{key}-{generation}"


def last_job(key: str, jobs: Callable[[Iterable[str]], list[dict[str, Any]]]) -> tuple[int, dict[str, Any] | None]:
    """The key's last generation and its job (0 and None for a new key), looked up by `jobs`
    (`API.jobs`) a batch of ids at a time."""
    previous, generation = None, 0
    while True:
        ids = [generation_id(key, n) for n in range(generation + 1, generation + 1 + _GENERATION_BATCH)]
        found = {j["jobid"]: j for j in jobs(ids)}
        known = [n for n, jobid in enumerate(ids, start=generation + 1) if jobid in found]
        if known:
            generation, previous = known[-1], found[generation_id(key, known[-1])]
        if len(known) < _GENERATION_BATCH:
            return generation, previous
