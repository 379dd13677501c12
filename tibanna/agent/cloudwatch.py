"""On EC2, every resource sample also goes to CloudWatch, where upstream's CloudWatch agent put it.

Upstream installs the CloudWatch agent on each instance, and its readers
ask CloudWatch for namespace `CWAgent`, dimension `InstanceId`. Here the agent's own
sampler publishes those metrics instead. Names, units and formulas come from the table the reader
uses (`tibanna.metrics.resources.METRICS`), so a job's CloudWatch rows are the rows its
samples.tsv gives. A background thread sends the samples, every sample queued meanwhile in one
PutMetricData call, so a slow or unreachable CloudWatch never holds up the sampler, and a
CloudWatch error is logged, never raised: metrics must not end a job.
"""
from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from typing import Any

from tibanna import settings
from tibanna.agent.imds import metadata
from tibanna.metrics import resources
from tibanna.samples import Sample
from tibanna.storage import ObjectStore

logger = logging.getLogger(__name__)

IMDS_TIMEOUT = 2.0  # seconds: off EC2 nothing answers
SAMPLES_PER_CALL = 100  # of 7 datums each: within PutMetricData's 1,000 per call
FLUSH_TIMEOUT = 15.0  # seconds the job's end waits for the last samples to be sent


def imds_instance_id(timeout: float = IMDS_TIMEOUT) -> str | None:
    """This instance's id through IMDSv2 (a session token, then the metadata), or None off EC2.

    botocore's variables apply: AWS_EC2_METADATA_SERVICE_ENDPOINT moves the service and
    AWS_EC2_METADATA_DISABLED=true turns it off.
    """
    if (settings.AWS_EC2_METADATA_DISABLED.get() or "").lower() == "true":
        return None
    try:
        return metadata("instance-id", timeout).strip() or None
    except OSError as err:  # URLError, HTTPError and timeouts are all OSErrors
        logger.warning("no instance id from IMDS at %s: %s", settings.AWS_EC2_METADATA_SERVICE_ENDPOINT.get(), err)
        return None


def metric_data(sample: Sample, instance_id: str, read_before: int = 0) -> list[dict[str, Any]]:
    """One sample as PutMetricData datums, in percent and bytes as the CloudWatch agent reports them.

    `diskio_read_bytes` counts the bytes read since the previous sample (`read_before` is that
    sample's counter), as the CloudWatch agent counts them per collection interval.
    """
    values = [(metric, metric.from_sample(sample)) for metric in resources.METRICS.values() if metric.from_sample]
    values.append((resources.METRICS[resources.EBS_READ], max(sample.read_bytes - read_before, 0)))
    dimensions = [{"Name": "InstanceId", "Value": instance_id}]
    when = dt.datetime.fromtimestamp(sample.time, dt.timezone.utc)
    return [{"MetricName": metric.cloudwatch_name, "Dimensions": dimensions, "Timestamp": when,
             "Value": float(value), "Unit": metric.unit}
            for metric, value in values if value is not None]


class CloudWatchPublisher:
    """Sends one instance's samples to CloudWatch from a background thread (see the module doc)."""

    def __init__(self, client: Any, instance_id: str) -> None:
        self.client, self.instance_id = client, instance_id
        self._read_before = 0
        self._queue: queue.SimpleQueue[list[dict[str, Any]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._send_all, daemon=True, name="tibanna-cloudwatch")
        self._thread.start()

    def publish(self, sample: Sample) -> None:
        """Queue a sample; callers publish one sample at a time, in order."""
        self._queue.put(metric_data(sample, self.instance_id, self._read_before))
        self._read_before = sample.read_bytes

    def close(self, timeout: float = FLUSH_TIMEOUT) -> None:
        """Send what is queued, waiting at most `timeout` seconds, and stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("CloudWatch: the last samples of %s were not sent within %.0f s", self.instance_id, timeout)

    def _send_all(self) -> None:
        """Send the queued samples, all that wait in one call, until `close` queues None."""
        while True:
            items = [self._queue.get()]
            while items[-1] is not None and len(items) < SAMPLES_PER_CALL:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            data = [datum for item in items if item for datum in item]
            if data:
                try:
                    self.client.put_metric_data(Namespace=resources.CLOUDWATCH_NAMESPACE, MetricData=data)
                except Exception as err:  # noqa: BLE001 - CloudWatch must never end the job
                    logger.warning("CloudWatch: could not publish metrics of %s: %s", self.instance_id, err)
            if items[-1] is None:
                return


def publisher(store: ObjectStore, config: dict) -> CloudWatchPublisher | None:
    """A publisher for the job with this run.json `config` on this instance; None when the job
    disables metrics collection (upstream's `-c`) or no instance id is known.

    The instance id is the config's `instance_id`, else IMDSv2's. The client comes from the
    store's client factory when it is S3 (same region, profile and endpoint), else a new one.
    """
    if config.get("disable_metrics_collection"):
        return None
    instance_id = config.get("instance_id") or imds_instance_id()
    if not instance_id:
        logger.warning("CloudWatch: no instance id (not on EC2?); resource samples are not published")
        return None
    from tibanna.storage.s3 import Clients  # boto3 is needed only on AWS

    clients = getattr(store, "clients", None)
    return CloudWatchPublisher((clients if isinstance(clients, Clients) else Clients())("cloudwatch"), instance_id)
