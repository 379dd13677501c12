"""TibannaJobTrigger: waits in the triggerer until jobs end, forwarding their logs meanwhile.

Many deferred waits in one triggerer share one status query per poll interval: a `StatusPoller`
per event loop and connection settings gathers every watched job id into one `API.jobs([...])`
call (the API is sync, so it runs in a thread). Each wait then takes its look with the shared
`JobWatcher` of `tibanna_provider.watch`.
"""
from __future__ import annotations

import asyncio
import weakref
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Iterable

from airflow.triggers.base import BaseTrigger, TriggerEvent

from tibanna_provider.hooks.tibanna import TibannaHook, TibannaSettings, task_runs_again
from tibanna_provider.watch import DEFAULT_POLL_INTERVAL, Job, JobFailed

FIRST_EVENT_DELAY = 15.0  # seconds after a deferral before a trigger may report the end of a job


GATHER_SECONDS = 0.2  # how long a new poller waits for the other watchers of its first round


class StatusPoller:
    """Reads the status of every watched job in one query per interval, for all its watchers.

    The interval is the shortest one asked for by a current watcher; the poller stops when the
    last watcher leaves. Use `StatusPoller.shared(settings)` to get the one of the running loop.
    """

    _by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[TibannaSettings, StatusPoller]] = (
        weakref.WeakKeyDictionary())

    def __init__(self, settings: TibannaSettings) -> None:
        self.settings = settings
        self._hook = TibannaHook(settings=settings)
        self._watchers: dict[object, tuple[frozenset[str], float]] = {}
        self._next_round: asyncio.Future[tuple[dict[str, Job], BaseException | None]] | None = None
        self._task: asyncio.Task | None = None

    @classmethod
    def shared(cls, settings: TibannaSettings) -> StatusPoller:
        """The poller of these settings on the running event loop."""
        pollers = cls._by_loop.setdefault(asyncio.get_running_loop(), {})
        if settings not in pollers:
            pollers[settings] = cls(settings)
        return pollers[settings]

    @asynccontextmanager
    async def watching(self, job_ids: Iterable[str], interval: float) -> AsyncIterator[StatusPoller]:
        """Include these jobs in every query while inside the block."""
        key = object()
        self._watchers[key] = (frozenset(job_ids), interval)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        try:
            yield self
        finally:
            del self._watchers[key]

    async def next_jobs(self) -> dict[str, Job]:
        """The jobs (`API.job` dicts by id) read by the next query, of every watched job."""
        if self._next_round is None:
            self._next_round = asyncio.get_running_loop().create_future()
        statuses, error = await asyncio.shield(self._next_round)
        if error is not None:
            raise error
        return statuses

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        clock = await asyncio.to_thread(lambda: self._hook.api.clock)  # the API may read a connection
        # Triggers deferred together reach the poller a moment apart (each reads its connection
        # first): let them all join before the first query. A real pause, whatever the jobs' clock:
        # what it waits for is this process's own I/O.
        await asyncio.sleep(min([GATHER_SECONDS, *(interval for _, interval in self._watchers.values())]))
        while self._watchers:
            job_ids = sorted(set().union(*(ids for ids, _ in self._watchers.values())))
            interval = min(interval for _, interval in self._watchers.values())
            this_round = self._next_round or loop.create_future()
            self._next_round = loop.create_future()
            try:
                jobs = await asyncio.to_thread(self._hook.api.jobs, job_ids)
                this_round.set_result(({job["jobid"]: job for job in jobs}, None))
            except Exception as err:  # every watcher of this round gets the error
                this_round.set_result(({}, err))
            await clock.asleep(interval)
        self._by_loop.get(loop, {}).pop(self.settings, None)


class TibannaJobTrigger(BaseTrigger):
    """Fires when every job SUCCEEDED (`status: success`) or any ended otherwise (`status: error`).

    :param job_ids: the jobs to wait for.
    :param tibanna_conn_id: the `tibanna` connection (the environment's defaults when it does not exist).
    :param poll_interval: seconds between status queries.
    :param forward_log: copy the jobs' new log lines into the task log while waiting.
    :param log_offsets: how much of each log the task already forwarded.
    :param owner: the task instance that started the jobs ({dag_id, task_id, run_id, map_index}):
        when a user kills the deferred task, its jobs are killed too, unless the task was cleared
        (its next try re-attaches to them). None: the jobs are not the task's to kill.
    :param not_before: epoch seconds; no event before then (a trigger that fires within seconds of
        the deferral can make Airflow fail the task, see the operators' module docstring).
    """

    def __init__(self, job_ids: list[str] | str, tibanna_conn_id: str = TibannaHook.default_conn_name,
                 poll_interval: float = DEFAULT_POLL_INTERVAL, forward_log: bool = True,
                 log_offsets: dict[str, int] | None = None, owner: dict[str, Any] | None = None,
                 not_before: float = 0.0) -> None:
        super().__init__()
        self.job_ids = [job_ids] if isinstance(job_ids, str) else list(job_ids)
        self.tibanna_conn_id = tibanna_conn_id
        self.poll_interval = float(poll_interval)
        self.forward_log = forward_log
        self.log_offsets = dict(log_offsets or {})
        self.owner = owner
        self.not_before = float(not_before)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}",
                {"job_ids": self.job_ids, "tibanna_conn_id": self.tibanna_conn_id,
                 "poll_interval": self.poll_interval, "forward_log": self.forward_log,
                 "log_offsets": self.log_offsets, "owner": self.owner, "not_before": self.not_before})

    async def on_kill(self) -> None:
        """A user killed the deferred task: marked failed or succeeded, end its jobs; cleared, leave
        them to the task's next try, which re-attaches to them (`task_runs_again` says why).

        The triggerer calls this only for a trigger it runs; a task marked failed before the
        triggerer took its trigger is the plugin's listener's to handle
        (`tibanna_provider.plugins.listener`).
        """
        if self.owner is None or await asyncio.to_thread(task_runs_again, self.owner):
            if self.owner is not None:
                self.log.info("task %s was cleared: its next try re-attaches to job(s) %s", self.owner,
                              ", ".join(self.job_ids))
            return
        await asyncio.to_thread(self.kill_jobs, await TibannaHook.async_settings(self.tibanna_conn_id))

    def kill_jobs(self, settings: TibannaSettings | None = None) -> None:
        """Kill the jobs (blocking); a job that already ended is left as it is.

        :param settings: the connection's settings when already resolved (on an event loop).
        """
        hook = TibannaHook(self.tibanna_conn_id, settings=settings)
        for jobid in self.job_ids:
            hook.api.kill(job_id=jobid)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        payload: dict[str, Any] = {"job_ids": self.job_ids}
        try:
            settings = await TibannaHook.async_settings(self.tibanna_conn_id)
            watcher = TibannaHook(self.tibanna_conn_id, settings=settings).watcher(self.log)
            offsets = self.log_offsets if self.forward_log else None
            if (hold := self.not_before - watcher.clock.now()) > 0:
                await watcher.clock.asleep(hold)
            poller = StatusPoller.shared(settings)
            async with poller.watching(self.job_ids, self.poll_interval):
                while True:
                    jobs = await poller.next_jobs()
                    done = await asyncio.to_thread(watcher.look, self.job_ids, offsets, jobs)
                    if done is not None:
                        yield TriggerEvent(payload | {"status": "success",
                                                      "statuses": {jobid: job["status"] for jobid, job in done.items()}})
                        return
        except JobFailed as err:
            yield TriggerEvent(payload | {"status": "error", "message": str(err)})
        except Exception as err:  # the task fails with the reason, instead of a bare trigger failure
            self.log.exception("waiting for Tibanna job(s) %s failed", ", ".join(self.job_ids))
            yield TriggerEvent(payload | {"status": "error", "message": f"{type(err).__name__}: {err}"})
