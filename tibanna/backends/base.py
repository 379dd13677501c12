"""The Backend interface: one contract, two implementations (local and aws).

A backend promises:
- `submit` is idempotent per job id: a job id already known returns the first submission's
  dict and starts nothing; `<jobid>.run.json` is in the log bucket before the job can start.
- Status words are those of `tibanna.protocol.STATUSES`; a queued job is RUNNING.
- Every job ends with exactly one terminal marker in its log bucket (docs/design.md 3.2).
- Reads cost O(pages), never one call per job.
- `clock` is the time its jobs live in: real time, but for a stub's fake clock in tests.
"""
from __future__ import annotations

import abc
import dataclasses
from typing import TYPE_CHECKING, Any, Iterable

from tibanna.clock import REAL_CLOCK, Clock
from tibanna.exceptions import UserInputError
from tibanna.storage import ObjectStore

if TYPE_CHECKING:
    from tibanna.cost import PriceSource


@dataclasses.dataclass
class JobRecord:
    """What the index knows of one job (one execution of a step function)."""

    jobid: str
    sfn: str
    run_name: str
    exec_arn: str
    log_bucket: str
    status: str
    name: str = ""
    start_time: float | None = None  # epoch seconds: submission (execution start)
    stop_time: float | None = None
    error: str | None = None  # upstream's error name, e.g. AWSEMJobErrorException
    cause: str | None = None  # one-line cause
    description: dict | None = None  # the submitted description (secrets blanked)
    instance_id: str = ""
    instance_type: str = ""
    instance_status: str = ""
    instance_start_time: float | None = None
    ip: str = ""
    key: str = ""
    rerun_of: str | None = None


def refuse_denied_buckets(sfn: str, buckets: Iterable[str], allowed: Iterable[str] | None) -> None:
    """Refuse (UserInputError) buckets outside those a step function's usergroup was given
    (`allowed` None: not known, nothing is refused): `check_sfn`'s rule on both backends."""
    if allowed is None:
        return
    allowed = sorted(set(allowed))
    denied = sorted(set(buckets) - set(allowed))
    if denied:
        raise UserInputError(f"step function {sfn!r} may not use bucket(s) {', '.join(denied)} "
                             f"(its usergroup has access to: {', '.join(allowed) or 'none'})")


class Backend(abc.ABC):
    """Where jobs run and how they are tracked."""

    name: str
    store: ObjectStore
    region: str
    account: str
    clock: Clock = REAL_CLOCK

    @abc.abstractmethod
    def default_sfn(self) -> str:
        """The step function used when none is given."""

    @abc.abstractmethod
    def check_sfn(self, sfn: str, buckets: Iterable[str]) -> None:
        """Refuse (UserInputError) an unknown step function, or buckets it may not use."""

    @abc.abstractmethod
    def submit(self, jobs: list[dict], *, rerun_of: str | None = None,
               secrets: dict[str, dict[str, str]] | None = None) -> list[dict]:
        """Index and start parsed jobs (each with `jobid` and `_tibanna`); idempotent per job id.

        `secrets` maps a job id to the input_env values its description withholds (`****`): the
        job's command gets them; nothing stored or returned may hold them."""

    @abc.abstractmethod
    def get(self, job_id: str | None = None, exec_arn: str | None = None) -> JobRecord | None:
        """One job by id or execution ARN, or None."""

    @abc.abstractmethod
    def get_many(self, job_ids: list[str]) -> list[JobRecord]:
        """Jobs by id, in the given order, skipping unknown ids."""

    @abc.abstractmethod
    def list(self, sfn: str, status: str | None = None, limit: int | None = None,
             stopped_after: float | None = None) -> list[JobRecord]:
        """Jobs of a step function, newest first."""

    @abc.abstractmethod
    def kill(self, record: JobRecord, soft: bool = False) -> None:
        """End a running job: its whole process tree or machine; writes `.aborted`."""

    @abc.abstractmethod
    def list_sfns(self, counts: bool = False) -> list[dict[str, Any]]:
        """Step functions: name, creation_date and, with counts, jobs per status."""

    # Metrics and cost (the formulas live in tibanna.metrics and tibanna.cost).
    @abc.abstractmethod
    def price_source(self) -> "PriceSource":
        """Where this backend's prices come from."""

    @abc.abstractmethod
    def actual_cost(self, postrun: dict) -> float:
        """What a finished job cost, as the backend bills it; 0.0 when not known (yet)."""

    @abc.abstractmethod
    def metric_series(self, record: JobRecord, postrun: dict | None, start: Any, end: Any,
                      instance_id: str = "") -> Any:
        """The job's resource series for plot_metrics, or None to read the agent's samples."""

    # Admin verbs (python-api.rst).
    @abc.abstractmethod
    def setup_tibanna_env(self, buckets: list[str], usergroup_tag: str, no_randomize: bool,
                          do_not_delete_public_access_block: bool) -> str:
        """Create a usergroup with access to the buckets; returns its name."""

    @abc.abstractmethod
    def deploy_unicorn(self, suffix: str | None, no_setup: bool, buckets: list[str], no_setenv: bool,
                       usergroup: str, do_not_delete_public_access_block: bool, deploy_costupdater: bool,
                       subnets: list[str] | None, security_groups: list[str] | None) -> str:
        """Create or update a step function; returns its name."""

    @abc.abstractmethod
    def deploy_core(self, name: str, suffix: str | None, usergroup: str,
                    subnets: list[str] | None, security_groups: list[str] | None) -> list[str]:
        """Redeploy the step function's workers (lambdas); returns what was deployed."""

    @abc.abstractmethod
    def users(self) -> list[dict[str, str]]:
        """Users and their usergroups."""

    @abc.abstractmethod
    def add_user(self, user: str, usergroup: str) -> None:
        """Put a user in a usergroup."""

    @abc.abstractmethod
    def cleanup(self, usergroup: str, suffix: str | None, ignore_errors: bool,
                do_not_remove_iam_group: bool, purge_history: bool) -> list[str]:
        """Remove a usergroup's step functions (and group, and history); returns what was removed."""
