"""Backends: where jobs run. `local` (this machine) and `aws` (Step Functions + EC2); `stub` for tests.

`substitute(backend)` puts one backend behind every `API` made by name or from the environment,
for tests of DAGs and flows whose hooks and tasks build their own APIs.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator

from tibanna.backends.base import Backend

_substitutes: tuple[Backend, ...] = ()  # replaced whole, never changed in place: a reader needs no lock
_writing = threading.Lock()


@contextlib.contextmanager
def substitute(backend: Backend) -> Iterator[Backend]:
    """Inside the block, every `API()`, `API("local")`, `API("aws")` and `API.from_settings(...)` of
    this process (any thread) uses `backend`, whatever backend or options it names.

    Example, a DAG's tasks run against a stub (`tibanna.backends.stub`)::

        with substitute(StubBackend(tmp_path, script=Script.succeeds(after=60))):
            dag.test()
    """
    global _substitutes
    with _writing:
        _substitutes = (*_substitutes, backend)
    try:
        yield backend
    finally:
        with _writing:
            index = len(_substitutes) - 1 - _substitutes[::-1].index(backend)
            _substitutes = _substitutes[:index] + _substitutes[index + 1:]


def substituted() -> Backend | None:
    """The backend of the innermost `substitute` block in force, or None."""
    found = _substitutes
    return found[-1] if found else None
