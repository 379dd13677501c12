"""The local job index: one SQLite file (WAL) under TIBANNA_HOME, safe for many processes.

Rows move through phases: `queued` -> `running` -> `finalizing` -> `done`. Exactly one process
moves a row into `finalizing` (a conditional UPDATE is the arbiter), and only that process
writes the job's terminal marker, so a job never ends twice.
"""
from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from tibanna.backends.base import JobRecord
from tibanna.clock import REAL_CLOCK, Clock

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    jobid TEXT NOT NULL UNIQUE,
    sfn TEXT NOT NULL,
    run_name TEXT NOT NULL,
    exec_arn TEXT NOT NULL UNIQUE,
    log_bucket TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    phase TEXT NOT NULL,
    error TEXT,
    cause TEXT,
    submitted REAL NOT NULL,
    started REAL,
    stopped REAL,
    cpu REAL NOT NULL,
    mem REAL NOT NULL,
    instance_type TEXT NOT NULL DEFAULT '',
    worker_pid INTEGER,
    worker_created REAL,
    kill_request TEXT,
    rerun_of TEXT,
    description TEXT NOT NULL,
    result TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_sfn ON jobs (sfn, seq);
CREATE INDEX IF NOT EXISTS jobs_phase ON jobs (phase, seq);
CREATE TABLE IF NOT EXISTS sfns (
    name TEXT PRIMARY KEY,
    usergroup TEXT NOT NULL DEFAULT '',
    suffix TEXT NOT NULL DEFAULT '',
    buckets TEXT,
    concurrency INTEGER,
    created REAL NOT NULL,
    core_deployed REAL,
    core_version TEXT
);
CREATE TABLE IF NOT EXISTS usergroups (
    name TEXT PRIMARY KEY,
    buckets TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    user TEXT NOT NULL,
    usergroup TEXT NOT NULL,
    PRIMARY KEY (user, usergroup)
);
"""

ACTIVE_PHASES = ("queued", "running", "finalizing")
# What a listing needs: everything but the (large) description and result documents.
LISTING_COLUMNS = ("jobid, sfn, run_name, exec_arn, log_bucket, name, status, phase, error, cause, submitted, "
                   "started, stopped, instance_type, worker_pid, rerun_of")


class Index:
    """A thin, typed layer over the SQLite file; one connection per instance and process.

    Its time stamps (a job's start and stop, a step function's creation) come from `clock`."""

    def __init__(self, path: Path, clock: Clock = REAL_CLOCK) -> None:
        self.path = Path(path)
        self.clock = clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn: sqlite3.Connection | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 60000")
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(SCHEMA)
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An IMMEDIATE transaction: the write lock is taken up front, so check-then-insert is atomic."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # Jobs -----------------------------------------------------------------------------------
    def results_for(self, conn: sqlite3.Connection, jobids: list[str]) -> dict[str, dict]:
        """The stored submission dicts of known job ids."""
        found: dict[str, dict] = {}
        for chunk in _chunks(jobids, 500):
            marks = ",".join("?" * len(chunk))
            for row in conn.execute(f"SELECT jobid, result FROM jobs WHERE jobid IN ({marks})", chunk):
                found[row["jobid"]] = json.loads(row["result"])
        return found

    def insert_job(self, conn: sqlite3.Connection, row: dict[str, Any]) -> None:
        cols = ",".join(row)
        conn.execute(f"INSERT INTO jobs ({cols}) VALUES ({','.join('?' * len(row))})", list(row.values()))

    def row(self, jobid: str | None = None, exec_arn: str | None = None) -> sqlite3.Row | None:
        if jobid is not None:
            return self.conn.execute("SELECT * FROM jobs WHERE jobid = ?", (jobid,)).fetchone()
        return self.conn.execute("SELECT * FROM jobs WHERE exec_arn = ?", (exec_arn,)).fetchone()

    def rows_by_ids(self, jobids: list[str], columns: str = "*") -> list[sqlite3.Row]:
        by_id: dict[str, sqlite3.Row] = {}
        for chunk in _chunks(jobids, 500):
            marks = ",".join("?" * len(chunk))
            for row in self.conn.execute(f"SELECT {columns} FROM jobs WHERE jobid IN ({marks})", chunk):
                by_id[row["jobid"]] = row
        return [by_id[j] for j in jobids if j in by_id]

    def rows(self, sfn: str | None, status: str | None = None, limit: int | None = None,
             stopped_after: float | None = None, columns: str = LISTING_COLUMNS) -> list[sqlite3.Row]:
        where, args = [], []
        if sfn is not None:
            where.append("sfn = ?")
            args.append(sfn)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if stopped_after is not None:
            where.append("stopped > ?")
            args.append(stopped_after)
        sql = f"SELECT {columns} FROM jobs" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        return self.conn.execute(sql, args).fetchall()

    def active_rows(self, phase: str) -> list[sqlite3.Row]:
        return self.conn.execute("SELECT * FROM jobs WHERE phase = ? ORDER BY seq", (phase,)).fetchall()

    def has_active_jobs(self) -> bool:
        return self.conn.execute(
            "SELECT 1 FROM jobs WHERE phase IN ('queued','running','finalizing') LIMIT 1").fetchone() is not None

    def claim_start(self, jobid: str) -> bool:
        """Move a queued job that nobody asked to kill into `running`; True for exactly one caller."""
        cur = self.conn.execute("UPDATE jobs SET phase='running', started=? "
                                "WHERE jobid=? AND phase='queued' AND kill_request IS NULL", (self.clock.now(), jobid))
        return cur.rowcount == 1

    def record_worker(self, jobid: str, pid: int, created: float) -> None:
        """Name the worker process that runs a started job (it waits for this before it runs)."""
        self.conn.execute("UPDATE jobs SET worker_pid=?, worker_created=? WHERE jobid=?", (pid, created, jobid))

    def requeue_unstarted(self, jobid: str) -> bool:
        """Put a job back in the queue that was claimed but whose worker was never named (so never ran)."""
        cur = self.conn.execute("UPDATE jobs SET phase='queued', started=NULL "
                                "WHERE jobid=? AND phase='running' AND worker_pid IS NULL", (jobid,))
        return cur.rowcount == 1

    def concurrency_limits(self) -> dict[str, int]:
        """Step functions that cap how many of their jobs run at once."""
        return {r["name"]: r["concurrency"] for r in self.conn.execute(
            "SELECT name, concurrency FROM sfns WHERE concurrency IS NOT NULL")}

    def queued_rows(self, skip_sfns: list[str], limit: int = 256) -> list[sqlite3.Row]:
        """The oldest queued jobs, but those of the step functions in `skip_sfns`."""
        marks = ",".join("?" * len(skip_sfns))
        return self.conn.execute(
            "SELECT jobid, cpu, mem, sfn, description, kill_request FROM jobs WHERE phase='queued' "
            f"AND sfn NOT IN ({marks}) ORDER BY seq LIMIT ?", [*skip_sfns, limit]).fetchall()

    def claim_finalize(self, jobid: str, from_phases: tuple[str, ...]) -> bool:
        """Move a job into `finalizing`; True for exactly one caller."""
        marks = ",".join("?" * len(from_phases))
        cur = self.conn.execute(f"UPDATE jobs SET phase='finalizing' WHERE jobid=? AND phase IN ({marks})",
                                (jobid, *from_phases))
        return cur.rowcount == 1

    def finish(self, jobid: str, status: str, error: str | None, cause: str | None) -> None:
        self.conn.execute("UPDATE jobs SET phase='done', status=?, error=?, cause=?, stopped=? WHERE jobid=?",
                          (status, error, cause, self.clock.now(), jobid))

    def request_kill(self, jobid: str, mode: str) -> bool:
        cur = self.conn.execute("UPDATE jobs SET kill_request=? WHERE jobid=? AND phase IN ('queued','running')",
                                (mode, jobid))
        return cur.rowcount == 1

    def status_counts(self, sfn: str) -> dict[str, int]:
        return {r[0]: r[1] for r in self.conn.execute(
            "SELECT status, COUNT(*) FROM jobs WHERE sfn = ? GROUP BY status", (sfn,))}

    def finished_jobs(self, sfn: str) -> list[sqlite3.Row]:
        """The ended jobs of a step function (id and log bucket), for purging their history."""
        return self.conn.execute("SELECT jobid, log_bucket FROM jobs WHERE sfn = ? AND phase = 'done'",
                                 (sfn,)).fetchall()

    def delete_jobs(self, jobids: list[str]) -> None:
        for chunk in _chunks(jobids, 500):
            self.conn.execute(f"DELETE FROM jobs WHERE jobid IN ({','.join('?' * len(chunk))})", chunk)

    # Step functions, usergroups and users --------------------------------------------------
    def sfn(self, name: str) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM sfns WHERE name = ?", (name,)).fetchone()

    def sfns(self, usergroup: str | None = None) -> list[sqlite3.Row]:
        """Deployed step functions by name, or those of one usergroup."""
        if usergroup is None:
            return self.conn.execute("SELECT * FROM sfns ORDER BY name").fetchall()
        return self.conn.execute("SELECT * FROM sfns WHERE usergroup = ? ORDER BY name", (usergroup,)).fetchall()

    def put_sfn(self, name: str, usergroup: str, suffix: str, buckets: str | None, concurrency: int | None,
                core_version: str) -> None:
        """Create a step function, or update one in place (its creation date is kept)."""
        now = self.clock.now()
        self.conn.execute(
            "INSERT INTO sfns (name, usergroup, suffix, buckets, concurrency, created, core_deployed, core_version)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET buckets=excluded.buckets, "
            "concurrency=excluded.concurrency, core_deployed=excluded.core_deployed, "
            "core_version=excluded.core_version",
            (name, usergroup, suffix, buckets, concurrency, now, now, core_version))

    def mark_core_deployed(self, sfn: str, core_version: str) -> bool:
        """Record a redeploy of a step function's workers; False if it does not exist."""
        return self.conn.execute("UPDATE sfns SET core_deployed=?, core_version=? WHERE name=?",
                                 (self.clock.now(), core_version, sfn)).rowcount == 1

    def delete_sfn(self, name: str) -> bool:
        return self.conn.execute("DELETE FROM sfns WHERE name = ?", (name,)).rowcount == 1

    def usergroup(self, name: str) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM usergroups WHERE name = ?", (name,)).fetchone()

    def put_usergroup(self, name: str, buckets: list[str]) -> None:
        """Create a usergroup, or give an existing one these buckets."""
        self.conn.execute("INSERT INTO usergroups (name, buckets, created) VALUES (?, ?, ?) "
                          "ON CONFLICT(name) DO UPDATE SET buckets=excluded.buckets",
                          (name, json.dumps(buckets), self.clock.now()))

    def delete_usergroup(self, name: str) -> bool:
        """Remove a usergroup and its members; False if it did not exist."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM users WHERE usergroup = ?", (name,))
            return conn.execute("DELETE FROM usergroups WHERE name = ?", (name,)).rowcount == 1

    def users(self) -> list[sqlite3.Row]:
        return self.conn.execute("SELECT user, usergroup FROM users ORDER BY user, usergroup").fetchall()

    def add_user(self, user: str, usergroup: str) -> bool:
        """Put a user in a usergroup; False if the usergroup does not exist."""
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM usergroups WHERE name = ?", (usergroup,)).fetchone() is None:
                return False
            conn.execute("INSERT OR IGNORE INTO users (user, usergroup) VALUES (?, ?)", (user, usergroup))
            return True


def record_from_row(row: sqlite3.Row, with_description: bool = False) -> JobRecord:
    """A JobRecord from an index row; the description is decoded only when asked for."""
    return JobRecord(
        jobid=row["jobid"], sfn=row["sfn"], run_name=row["run_name"], exec_arn=row["exec_arn"],
        log_bucket=row["log_bucket"], status=row["status"], name=row["name"],
        start_time=row["submitted"], stop_time=row["stopped"], error=row["error"], cause=row["cause"],
        description=json.loads(row["description"]) if with_description else None,
        instance_id=f"local-{row['worker_pid']}" if row["worker_pid"] else "",
        instance_type=row["instance_type"],
        instance_status={"queued": "pending", "running": "running", "finalizing": "shutting-down"}.get(
            row["phase"], "terminated"),
        instance_start_time=row["started"], rerun_of=row["rerun_of"])


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
