"""What a job does on the stub backend: its chronology, in seconds after it may start."""
from __future__ import annotations

import dataclasses
from typing import Sequence

from tibanna import exceptions, protocol

KILLED = ("Aborted", "killed by user")  # what a plain kill records (as the local backend does)
SOFT_KILLED = (exceptions.JobAbortedException.__name__, "job aborted")  # `kill(soft=True)`, upstream's
TIMEOUT = ("States.Timeout", "the execution timed out")  # Step Functions' error name


@dataclasses.dataclass(frozen=True)
class Ending:
    """How a job ends: its status word, and for any end but SUCCEEDED, upstream's error name and a cause."""

    status: str
    error: str | None = None
    cause: str | None = None

    def __post_init__(self) -> None:
        if self.status not in protocol.TERMINAL_STATUSES:
            raise ValueError(f"Ending.status: {self.status!r} is not one of {', '.join(protocol.TERMINAL_STATUSES)}")
        if (self.status == protocol.SUCCEEDED) != (self.error is None):
            raise ValueError("Ending.error: a job that did not succeed has an error name, one that did has none")

    @property
    def marker(self) -> str:
        """The terminal marker it leaves in the log bucket (docs/design.md 3.2)."""
        if self.status == protocol.SUCCEEDED:
            return protocol.SUCCESS
        return protocol.ABORTED_MARKER if self.error in (KILLED[0], SOFT_KILLED[0]) else protocol.ERROR


def _log_steps(log: str | Sequence[tuple[float, str]], at: float) -> tuple[tuple[float, str], ...]:
    return ((at, log),) if isinstance(log, str) else tuple((float(t), text) for t, text in log)


@dataclasses.dataclass(frozen=True)
class Script:
    """One job's chronology on the stub, in seconds after it may start (its submission, or the end of
    the jobs it depends on).

    The job is queued (RUNNING) until `start`, when `.job_started` and its postrun JSON appear;
    each `(at, text)` of `log` appends `text` to its `.log` at that time; at `end` it ends as
    `ending` says, leaving its final postrun JSON and then its one terminal marker. With `end`
    None it runs until it is killed. Build one with `succeeds`, `fails`, `killed`, `times_out`
    or `runs`.
    """

    start: float = 0.0
    log: tuple[tuple[float, str], ...] = ()
    end: float | None = 1.0
    ending: Ending = Ending(protocol.SUCCEEDED)

    def __post_init__(self) -> None:
        if self.start < 0:
            raise ValueError(f"Script.start: {self.start} is before the job may start")
        if self.end is not None and self.end < self.start:
            raise ValueError(f"Script.end: {self.end} is before its start ({self.start})")
        for at, _ in self.log:
            if at < self.start or (self.end is not None and at > self.end):
                raise ValueError(f"Script.log: a line at {at} is outside the job's run ({self.start} to {self.end})")

    @classmethod
    def succeeds(cls, after: float = 1.0, log: str | Sequence[tuple[float, str]] = "", start: float = 0.0) -> Script:
        """Runs from `start` and SUCCEEDS at `after`; a plain `log` text is all written at `start`."""
        return cls(start, _log_steps(log, start), after, Ending(protocol.SUCCEEDED))

    @classmethod
    def fails(cls, after: float = 1.0, error: str = exceptions.AWSEMJobErrorException.__name__,
              cause: str = "Job encountered an error", log: str | Sequence[tuple[float, str]] = "",
              start: float = 0.0) -> Script:
        """Runs from `start` and ends FAILED at `after` with upstream's `error` name and `cause`."""
        return cls(start, _log_steps(log, start), after, Ending(protocol.FAILED, error, cause))

    @classmethod
    def killed(cls, after: float = 1.0, soft: bool = False, log: str | Sequence[tuple[float, str]] = "",
               start: float = 0.0) -> Script:
        """Killed at `after` by someone else: ABORTED, or with `soft` FAILED with JobAbortedException."""
        status = protocol.FAILED if soft else protocol.ABORTED
        return cls(start, _log_steps(log, start), after, Ending(status, *(SOFT_KILLED if soft else KILLED)))

    @classmethod
    def times_out(cls, after: float, log: str | Sequence[tuple[float, str]] = "", start: float = 0.0) -> Script:
        """Ends TIMED_OUT at `after` (its execution's time ran out)."""
        return cls(start, _log_steps(log, start), after, Ending(protocol.TIMED_OUT, *TIMEOUT))

    @classmethod
    def runs(cls, log: str | Sequence[tuple[float, str]] = "", start: float = 0.0) -> Script:
        """Runs from `start` until it is killed."""
        return cls(start, _log_steps(log, start), None)
