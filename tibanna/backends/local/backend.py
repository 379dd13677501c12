"""LocalBackend: the Backend contract on this machine, with the SQLite index, folder buckets and
the supervisor (started on demand) running the jobs."""
from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Any, Iterable

from tibanna import __version__, protocol, secret_env, settings
from tibanna.backends.base import Backend, JobRecord, refuse_denied_buckets
from tibanna.backends.local.finalize import kill_job
from tibanna.backends.local.home import Home
from tibanna.backends.local.index import LISTING_COLUMNS, Index, record_from_row
from tibanna.backends.local.launcher import ensure_running
from tibanna.backends.local.resources import reservation
from tibanna.exceptions import UserInputError
from tibanna.names import DEFAULT_SFN, LAMBDAS, lambda_name, sfn_name
from tibanna.storage import LocalStore

log = logging.getLogger(__name__)


class LocalBackend(Backend):
    """Jobs as forked workers under one supervisor per TIBANNA_HOME (docs/design.md 3.4, 5)."""

    name = "local"
    region = "local"
    account = "000000000000"

    def __init__(self, home: Path | str | None = None) -> None:
        self.home = Home(Path(home) if home else settings.TIBANNA_HOME.path())
        self.index = Index(self.home.index_path)
        self.store = LocalStore(self.home.buckets)
        self.config_path = self.home.root / "config"

    # Step functions ---------------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        try:
            return json.loads(self.config_path.read_text())
        except FileNotFoundError:
            return {}

    def default_sfn(self) -> str:
        return (settings.TIBANNA_DEFAULT_STEP_FUNCTION_NAME.get() or self._config().get("default_sfn")
                or DEFAULT_SFN)

    def check_sfn(self, sfn: str, buckets: Iterable[str]) -> None:
        if sfn == DEFAULT_SFN:
            return
        row = self.index.sfn(sfn)
        if row is None:
            known = ", ".join([DEFAULT_SFN] + [r["name"] for r in self.index.sfns()])
            raise UserInputError(f"sfn: step function {sfn!r} does not exist (known: {known})")
        refuse_denied_buckets(sfn, buckets, json.loads(row["buckets"]) if row["buckets"] is not None else None)

    # Jobs ---------------------------------------------------------------------------------------
    def submit(self, jobs: list[dict], *, rerun_of: str | None = None,
               secrets: dict[str, dict[str, str]] | None = None) -> list[dict]:
        results: list[dict] = []
        vault = secret_env.Vault.for_home(self.home.root)
        with self.index.transaction() as conn:
            known = self.index.results_for(conn, [job["jobid"] for job in jobs])
            for job in jobs:
                jobid = job["jobid"]
                if jobid in known:
                    log.info("job %s was already submitted; not starting it again", jobid)
                    results.append(known[jobid])
                    continue
                config = job["config"]
                cpu, mem = reservation(config)
                instance_type = config.get("instance_type") or ""
                if secrets and jobid in secrets:
                    vault.put(jobid, secrets[jobid])
                self.store.put_text(config["log_bucket"], protocol.key(jobid, protocol.RUN_JSON),
                                    json.dumps(protocol.build_run_json(job), indent=4))
                self.index.insert_job(conn, {
                    "jobid": jobid, "sfn": job["_tibanna"]["sfn"], "run_name": job["_tibanna"]["run_name"],
                    "exec_arn": job["_tibanna"]["exec_arn"], "log_bucket": config["log_bucket"],
                    "name": job["_tibanna"]["run_name"], "status": protocol.RUNNING, "phase": "queued",
                    "submitted": self.clock.now(), "cpu": cpu, "mem": mem,
                    "instance_type": ",".join(instance_type) if isinstance(instance_type, list) else instance_type,
                    "rerun_of": rerun_of, "description": json.dumps(job),
                    "result": json.dumps(job)})
                known[jobid] = job
                results.append(job)
                log.debug("queued job %s (%s vCPU, %s GiB)", jobid, cpu, mem)
        ensure_running(self.home)
        return results

    def _wake_if_needed(self) -> None:
        """A reader of status starts the supervisor when active jobs have none (it died)."""
        if self.index.has_active_jobs():
            ensure_running(self.home)

    def get(self, job_id: str | None = None, exec_arn: str | None = None) -> JobRecord | None:
        row = self.index.row(jobid=job_id) if job_id is not None else self.index.row(exec_arn=exec_arn)
        if row is not None and row["phase"] != "done":
            self._wake_if_needed()
        return record_from_row(row, with_description=True) if row is not None else None

    def get_many(self, job_ids: list[str]) -> list[JobRecord]:
        rows = self.index.rows_by_ids(job_ids, LISTING_COLUMNS)
        if any(r["phase"] != "done" for r in rows):
            self._wake_if_needed()
        return [record_from_row(r) for r in rows]

    def list(self, sfn: str | None, status: str | None = None, limit: int | None = None,
             stopped_after: float | None = None) -> list[JobRecord]:
        rows = self.index.rows(sfn, status, limit, stopped_after, "*" if stopped_after is not None else LISTING_COLUMNS)
        if any(r["phase"] != "done" for r in rows):
            self._wake_if_needed()
        return [record_from_row(r, with_description=stopped_after is not None) for r in rows]

    def kill(self, record: JobRecord, soft: bool = False) -> None:
        kill_job(self.index, self.store, record.jobid, soft)

    def list_sfns(self, counts: bool = False) -> list[dict[str, Any]]:
        rows = [{"name": DEFAULT_SFN, "creation_date": None, "usergroup": "", "buckets": None,
                 "core_version": __version__}]
        for r in self.index.sfns():
            rows.append({"name": r["name"], "creation_date": r["created"], "usergroup": r["usergroup"],
                         "buckets": json.loads(r["buckets"]) if r["buckets"] is not None else None,
                         "core_version": r["core_version"]})
        if counts:
            for row in rows:
                found = self.index.status_counts(row["name"])
                row.update({status: found.get(status, 0) for status in protocol.STATUSES})
        return rows

    # Metrics and cost ------------------------------------------------------------------------
    def price_source(self):
        from tibanna.backends.local.prices import LocalPriceSource

        return LocalPriceSource.from_home(self.home.root)

    def actual_cost(self, postrun: dict) -> float:
        """A local job costs what the local price table says for its run time (zero without one)."""
        from tibanna.cost import estimate_job_cost

        return estimate_job_cost(postrun, self.price_source(), region=self.region)[0]

    def metric_series(self, record: JobRecord, postrun: dict | None, start: Any, end: Any,
                      instance_id: str = "") -> None:
        return None  # the agent's samples.tsv in the log bucket

    # Admin verbs ------------------------------------------------------------------------------
    def setup_tibanna_env(self, buckets: list[str], usergroup_tag: str = "default", no_randomize: bool = False,
                          do_not_delete_public_access_block: bool = False) -> str:
        group = usergroup_tag if no_randomize else f"{usergroup_tag}_{random.randint(0, 9999)}"
        for bucket in buckets:  # a local bucket is a folder; make sure each one is usable
            self.store.path(bucket, "").mkdir(parents=True, exist_ok=True)
        self.index.put_usergroup(group, sorted(set(buckets)))
        log.info("usergroup %s may use bucket(s): %s", group, ", ".join(buckets) or "none")
        return group

    def deploy_unicorn(self, suffix: str | None = None, no_setup: bool = False, buckets: list[str] | None = None,
                       no_setenv: bool = False, usergroup: str = "", do_not_delete_public_access_block: bool = False,
                       deploy_costupdater: bool = False, subnets: list[str] | None = None,
                       security_groups: list[str] | None = None, concurrency: int | None = None) -> str:
        if not no_setup:
            usergroup = self.setup_tibanna_env(buckets or [], usergroup or "default", no_randomize=bool(usergroup))
        elif not usergroup:
            raise UserInputError("usergroup: no_setup needs the usergroup of an existing set-up")
        group = self.index.usergroup(usergroup)
        if group is None:
            raise UserInputError(f"usergroup: {usergroup!r} does not exist; run setup_tibanna_env or deploy "
                                 "without no_setup first")
        name = sfn_name(usergroup, suffix)
        self.index.put_sfn(name, usergroup, suffix or "", group["buckets"], concurrency, __version__)
        if not no_setenv:
            config = self._config() | {"default_sfn": name}
            self.config_path.write_text(json.dumps(config, indent=2))
            log.info("default step function is now %s (recorded in %s)", name, self.config_path)
        return name

    def deploy_core(self, name: str, suffix: str | None = None, usergroup: str = "",
                    subnets: list[str] | None = None, security_groups: list[str] | None = None) -> list[str]:
        kinds = LAMBDAS if name in ("all", "unicorn") else (name,)
        unknown = [kind for kind in kinds if kind not in LAMBDAS]
        if unknown:
            raise UserInputError(f"name: {unknown[0]!r} is not one of all, unicorn, {', '.join(LAMBDAS)}")
        sfn = sfn_name(usergroup, suffix)
        if sfn != DEFAULT_SFN:
            if not self.index.mark_core_deployed(sfn, __version__):
                raise UserInputError(f"usergroup/suffix: step function {sfn!r} does not exist; deploy it first")
        return [lambda_name(kind, usergroup, suffix) for kind in kinds]

    def users(self) -> list[dict[str, str]]:
        return [{"user": r["user"], "usergroup": r["usergroup"]} for r in self.index.users()]

    def add_user(self, user: str, usergroup: str) -> None:
        if not self.index.add_user(user, usergroup):
            raise UserInputError(f"usergroup: {usergroup!r} does not exist")

    def cleanup(self, usergroup: str, suffix: str | None = None, ignore_errors: bool = True,
                do_not_remove_iam_group: bool = False, purge_history: bool = False) -> list[str]:
        removed: list[str] = []
        sfns = [sfn_name(usergroup, suffix)]
        if not suffix:  # without a suffix, every unicorn of the group goes
            sfns += [r["name"] for r in self.index.sfns(usergroup)]
        for sfn in dict.fromkeys(sfns):
            if purge_history:
                removed += self._purge(sfn)
            if self.index.delete_sfn(sfn):
                removed.append(sfn)
        if not do_not_remove_iam_group:
            if self.index.delete_usergroup(usergroup):
                removed.append(f"usergroup {usergroup}")
        if self._config().get("default_sfn") in removed:
            self.config_path.write_text(json.dumps({k: v for k, v in self._config().items() if k != "default_sfn"}))
        if not removed and not ignore_errors:
            raise UserInputError(f"user_group_name: nothing to remove for usergroup {usergroup!r}"
                                 + (f" and suffix {suffix!r}" if suffix else ""))
        return removed

    def _purge(self, sfn: str) -> list[str]:
        """Delete a step function's finished jobs: their index rows and `<jobid>*` log objects."""
        rows = self.index.finished_jobs(sfn)
        for row in rows:
            for key in list(self.store.list_keys(row["log_bucket"], row["jobid"] + ".")):
                self.store.delete(row["log_bucket"], key)
        self.index.delete_jobs([r["jobid"] for r in rows])
        return [f"job {r['jobid']}" for r in rows]
