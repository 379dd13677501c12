"""While a job runs: top snapshots and resource samples, and periodic uploads of the log and both.

Upstream's cron does this every minute on the instance. Here one thread
waits on an Event, so stopping it at the end of a short job costs nothing.
"""
from __future__ import annotations

import datetime as dt
import itertools
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from tibanna import protocol
from tibanna.agent.cgroups import Cgroup
from tibanna.agent.cloudwatch import CloudWatchPublisher
from tibanna.agent.joblog import JobLog
from tibanna.agent.sampling import DiskMeter, SampleSummary, TreeSampler
from tibanna.agent.top import prime, snapshot
from tibanna.samples import SAMPLES_HEADER, Sample
from tibanna.storage import ObjectStore

logger = logging.getLogger(__name__)

FIRST_SAMPLE_AFTER = 0.25  # seconds


def sample_gaps(interval: float) -> Iterator[float]:
    """Seconds between samples: 0.25, 0.5, 1, ... doubling up to `interval`, then `interval`.

    The quick start gives a job of a few seconds real data (at 60 s, AWS's interval, it costs
    eight extra samples), and no job waits a whole interval for its first sample.
    """
    gap = min(FIRST_SAMPLE_AFTER, interval)
    while gap < interval:
        yield gap
        gap *= 2
    yield from itertools.repeat(interval)


class Monitor:
    """Samples every `metrics_interval` seconds (after a quick start, `sample_gaps`) and uploads
    every `upload_interval` seconds.

    Files kept in `files_dir` and uploaded to the log bucket: `<jobid>.top` (every snapshot),
    `<jobid>.top_latest` (the last one, uploaded as soon as it is taken) and
    `<jobid>.metrics/samples.tsv`; the job log is uploaded with them. With a `cloudwatch`
    publisher (on EC2), every sample also goes to CloudWatch.
    """

    def __init__(self, store: ObjectStore, log_bucket: str, jobid: str, data1: Path, files_dir: Path, log: JobLog,
                 *, metrics_interval: float, upload_interval: float,
                 cloudwatch: CloudWatchPublisher | None = None) -> None:
        self.store, self.log_bucket, self.jobid, self.data1, self.log = store, log_bucket, jobid, data1, log
        self.metrics_interval, self.upload_interval = metrics_interval, upload_interval
        self.cloudwatch = cloudwatch
        if cloudwatch is not None:
            log.info(f"resource samples are published to CloudWatch (namespace CWAgent, "
                     f"InstanceId {cloudwatch.instance_id})")
        self.top_path = files_dir / f"{jobid}{protocol.TOP}"
        self.top_latest_path = files_dir / f"{jobid}{protocol.TOP_LATEST}"
        self.samples_path = files_dir / f"{jobid}.samples.tsv"
        self.summary = SampleSummary()
        self._disk = DiskMeter(data1)
        self._sampler: TreeSampler | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._uploaded: dict[Path, tuple[int, float]] = {}  # path -> (size, monotonic time) of its last upload

    def start(self, root_pid: int, cgroup: Cgroup | None = None) -> None:
        """Watch the tree rooted at `root_pid`, and the job's containers in `cgroup`, until `stop`."""
        self._sampler = TreeSampler(root_pid, self.data1, self._disk, cgroup)
        prime()
        self._thread = threading.Thread(target=self._loop, args=(self._sampler,), daemon=True,
                                        name=f"tibanna-monitor-{self.jobid}")
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (at once, it waits on an Event); safe to call more than once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def final_sample(self) -> None:
        """One last sample after the command: the machine's memory and the folder as the job left them.

        The last one indeed: CloudWatch publishing ends here, once what is queued has been sent.
        """
        sampler = self._sampler or TreeSampler(None, self.data1, self._disk)
        self._record(sampler.take()[0])
        if self.cloudwatch is not None:
            self.cloudwatch.close()

    def upload(self, *, paced: bool = False) -> None:
        """Upload the log, the top file and the samples where they changed since the last upload.

        `paced` (the periodic uploads): a file is re-sent at most every `upload_interval` per MiB
        of its size, so a days-long job's growing files cost a steady trickle of copying, not one
        that grows with the square of the run time. The final upload sends everything that changed.
        """
        for path, suffix in ((self.log.path, protocol.LOG), (self.top_path, protocol.TOP),
                             (self.samples_path, protocol.METRICS_SAMPLES)):
            self._upload_if_changed(path, suffix, paced)

    def _loop(self, sampler: TreeSampler) -> None:
        gaps = sample_gaps(self.metrics_interval)
        next_sample = time.monotonic() + next(gaps)
        next_upload = time.monotonic() + self.upload_interval
        while not self._stop.wait(max(0.0, min(next_sample, next_upload) - time.monotonic())):
            now = time.monotonic()
            try:
                if now >= next_sample:
                    self._snapshot(sampler)
                    gap = next(gaps)
                    next_sample += gap
                    if next_sample <= now:  # a slow tick: skip ahead rather than burst
                        next_sample = now + gap
                if now >= next_upload:
                    self.upload(paced=True)
                    next_upload = now + self.upload_interval
            except Exception:  # monitoring must never end the job
                logger.exception("monitoring job %s failed; going on", self.jobid)

    def _snapshot(self, sampler: TreeSampler) -> None:
        sample, rows = sampler.take()
        self._record(sample)
        text = snapshot(dt.datetime.now(dt.timezone.utc), rows, sampler.memory)
        with open(self.top_path, "a", encoding="utf-8") as handle:
            handle.write(text)
        self.top_latest_path.write_text(text, encoding="utf-8")
        self.store.put_file(self.log_bucket, protocol.key(self.jobid, protocol.TOP_LATEST), self.top_latest_path)

    def _record(self, sample: Sample) -> None:
        self.summary.add(sample)
        if self.cloudwatch is not None:
            self.cloudwatch.publish(sample)
        new = not self.samples_path.exists()
        with open(self.samples_path, "a", encoding="utf-8") as handle:
            handle.write((SAMPLES_HEADER if new else "") + sample.tsv())

    def _upload_if_changed(self, path: Path, suffix: str, paced: bool) -> None:
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return
        last_size, last_time = self._uploaded.get(path, (None, 0.0))
        if last_size == size:
            return
        if paced and time.monotonic() - last_time < self.upload_interval * max(1.0, size / 2**20):
            return
        self.store.put_file(self.log_bucket, protocol.key(self.jobid, suffix), path)
        self._uploaded[path] = (size, time.monotonic())
