"""Backends: where jobs run. `local` (this machine) and `aws` (Step Functions + EC2); `stub` for tests.

`substitute(backend)` puts one backend behind every `API` made by name or from the environment,
for tests of DAGs and flows whose hooks and tasks build their own APIs.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator

from tibanna.backends.base import Backend

_substitutes: list[Backend] = []
_lock = threading.Lock()


@contextlib.contextmanager
def substitute(backend: Backend) -> Iterator[Backend]:
    """Inside the block, every `API()`, `API("local")`, `API("aws")` and `API.from_settings(...)` of
    this process (any thread) uses `backend`, whatever backend or options it names.

    Example, a DAG's tasks run against a stub (`tibanna.backends.stub`)::

        with substitute(StubBackend(tmp_path, script=Script.succeeds(after=60))):
            dag.test()
    """
    with _lock:
        _substitutes.append(backend)
    try:
        yield backend
    finally:
        with _lock:
            _substitutes.remove(backend)


def substituted() -> Backend | None:
    """The backend of the innermost `substitute` block in force, or None."""
    with _lock:
        return _substitutes[-1] if _substitutes else None
