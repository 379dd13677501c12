"""The agent's CloudWatch publishing (on EC2): upstream's metric names, what the reader sees, errors survived."""
from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any, Iterator

import pytest

from agent_helpers import Runs, describe
from tibanna import protocol
from tibanna.agent import cloudwatch
from tibanna.agent.__main__ import build_parser
from tibanna.metrics.resources import METRICS_TSV_COLUMNS, read_cloudwatch, series_from_samples
from tibanna.samples import Sample, read_samples_tsv

pytest.importorskip("moto")
import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

INSTANCE = "i-0123456789abcdef0"
BUSY = ("python -c 'import time; x = bytearray(30_000_000); end = time.time() + 3; "
        "any(iter(lambda: time.time() > end, True))'")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto in-process (whatever endpoint another test module set), and a CloudWatch client on it."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_REGION", "TIBANNA_AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with mock_aws():
        yield boto3.client("cloudwatch")


def _on_ec2(command: str, **config: object) -> dict:
    description = describe(command)
    description["config"].update(instance_id=INSTANCE, **config)
    return description


def _sample_count(client: Any, start: dt.datetime) -> int:
    points = client.get_metric_statistics(
        Namespace="CWAgent", MetricName="cpu_usage_active", Dimensions=[{"Name": "InstanceId", "Value": INSTANCE}],
        StartTime=start, EndTime=start + dt.timedelta(hours=1), Period=3600, Statistics=["SampleCount"])
    return int(sum(p["SampleCount"] for p in points["Datapoints"]))


def test_every_sample_reaches_cloudwatch_as_the_reader_expects(aws: Any, runs: Runs) -> None:
    jobid, code = runs.run(_on_ec2(BUSY), metrics_interval=0.2, cloudwatch=True)
    assert code == 0
    assert f"published to CloudWatch (namespace CWAgent, InstanceId {INSTANCE})" in runs.log(jobid, protocol.LOG)
    samples = read_samples_tsv(runs.log(jobid, protocol.METRICS_SAMPLES))
    start = protocol.parse_stamp(runs.postrun(jobid)["Job"]["start_time"])
    assert _sample_count(aws, start) == len(samples) >= 4
    seen = read_cloudwatch(aws, INSTANCE, start, start + dt.timedelta(minutes=5))
    expected = series_from_samples(samples, start)
    for name in METRICS_TSV_COLUMNS:
        assert seen.columns[name] == pytest.approx(expected.columns[name], abs=0.01), name  # tsv: 2 decimals
    assert max(seen.columns["max_mem_used_MB"]) > 30
    assert max(seen.columns["max_cpu_utilization_percent"]) > 0


def test_nothing_is_published_unless_asked_and_allowed(aws: Any, runs: Runs) -> None:
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)
    assert runs.run(_on_ec2("true"))[1] == 0  # the default: local machines do not publish
    assert runs.run(_on_ec2("true", disable_metrics_collection=True), cloudwatch=True)[1] == 0  # upstream's -c
    assert runs.run(describe("true"), cloudwatch=True)[1] == 0  # no instance id (and no IMDS): a warning
    assert _sample_count(aws, start) == 0


class _Client:
    """A stand-in CloudWatch client: records each call; calls can be held (`hold`), and can fail."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[dict]] = []
        self.fail = fail
        self.hold, self.called = threading.Event(), threading.Event()
        self.hold.set()

    def put_metric_data(self, Namespace: str, MetricData: list[dict]) -> None:  # noqa: N803 - boto3's names
        assert Namespace == "CWAgent"
        self.called.set()
        self.hold.wait()
        self.calls.append(MetricData)
        if self.fail:
            raise RuntimeError("AccessDenied")


def _sample(t: float, read_bytes: int = 0) -> Sample:
    return Sample(time=t, cpu_percent=12.5, mem_used_bytes=300 * 2**20, mem_available_bytes=700 * 2**20,
                  disk_used_bytes=2 * 2**30, disk_total_bytes=8 * 2**30, read_bytes=read_bytes)


def test_one_sample_in_upstreams_names_and_units() -> None:
    data = cloudwatch.metric_data(_sample(1_700_000_000.0, read_bytes=5000), "i-1", read_before=1000)
    values = {d["MetricName"]: (d["Value"], d["Unit"]) for d in data}
    assert values == {"cpu_usage_active": (12.5, "Percent"), "mem_used": (300 * 2**20, "Bytes"),
                      "mem_available": (700 * 2**20, "Bytes"), "mem_used_percent": (30.0, "Percent"),
                      "disk_used": (2 * 2**30, "Bytes"), "disk_used_percent": (25.0, "Percent"),
                      "diskio_read_bytes": (4000, "Bytes")}
    assert all(d["Dimensions"] == [{"Name": "InstanceId", "Value": "i-1"}] for d in data)
    assert data[0]["Timestamp"] == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.timezone.utc)


def test_samples_queued_behind_a_slow_call_share_the_next_one() -> None:
    client = _Client()
    client.hold.clear()
    publisher = cloudwatch.CloudWatchPublisher(client, "i-1")
    publisher.publish(_sample(0.0))
    assert client.called.wait(5)  # the first call is under way, and held
    for t in range(1, 4):
        publisher.publish(_sample(float(t), read_bytes=100 * t))
    client.hold.set()
    publisher.close()
    assert [len(call) for call in client.calls] == [7, 21]
    reads = [d["Value"] for call in client.calls for d in call if d["MetricName"] == "diskio_read_bytes"]
    assert reads == [0, 100, 100, 100]


def test_a_cloudwatch_error_is_logged_and_the_sampler_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    client = _Client(fail=True)
    publisher = cloudwatch.CloudWatchPublisher(client, "i-1")
    with caplog.at_level(logging.WARNING, logger="tibanna.agent.cloudwatch"):
        publisher.publish(_sample(0.0))
        publisher.close()
    assert client.calls and "could not publish metrics of i-1: AccessDenied" in caplog.text


def test_the_agent_command_line_turns_it_on() -> None:
    words = ["--jobid", "j", "--log-bucket", "lb", "--workdir", "/tmp/w", "--store", "local:/tmp/b"]
    assert build_parser().parse_args(words).cloudwatch is False
    assert build_parser().parse_args([*words, "--cloudwatch"]).cloudwatch is True
