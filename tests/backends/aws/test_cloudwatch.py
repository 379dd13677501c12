"""CloudWatch on AWS: the instance's agent publishes its samples under upstream's names (namespace
CWAgent, dimension InstanceId from IMDSv2), and the reader plot_metrics uses on AWS finds them."""
from __future__ import annotations

import datetime as dt
import re
import shlex
from pathlib import Path
from typing import Iterator

import boto3
import pytest

from loopback import FakeIMDS
from tibanna import protocol
from tibanna.agent import AgentDefaults, run_job
from tibanna.agent.__main__ import build_parser
from tibanna.agent.cloudwatch import imds_instance_id
from tibanna.backends.aws import userdata
from tibanna.metrics.resources import METRICS_TSV_COLUMNS, read_cloudwatch, read_metrics_tsv, series_from_samples
from tibanna.samples import read_samples_tsv

BUSY = ("python -c 'import time; x = bytearray(30_000_000); end = time.time() + 1; "
        "any(iter(lambda: time.time() > end, True))'")


@pytest.fixture
def imds(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeIMDS]:
    """The loopback instance's metadata service, answering no instance id until told one."""
    server = FakeIMDS()
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", server.endpoint + "/")
    yield server
    server.close()


def test_instance_id_from_imdsv2(imds: FakeIMDS, monkeypatch: pytest.MonkeyPatch) -> None:
    assert imds_instance_id() is None  # IMDS answers, but has no id
    imds.be_instance("i-0abc")
    assert imds_instance_id() == "i-0abc"
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert imds_instance_id() is None


def test_the_user_data_runs_the_agent_with_cloudwatch_on(moto_endpoint: str) -> None:
    urls = userdata.BootUrls("https://b/bundle", "https://b/started", "https://b/log", "https://b/error")
    script = userdata.user_data("job1", "log-bucket", "us-east-1", "now",
                                userdata.Bootstrap("b", "k", "abc", ("x86_64",), "3.11"), urls, spot=False)
    command = re.search(r"-m tibanna\.agent (.*?)\nstatus=", script, re.S).group(1).replace("\\\n", " ")
    args = build_parser().parse_args(shlex.split(command))
    assert args.cloudwatch and args.metrics_interval == 60


def test_a_jobs_samples_reach_cloudwatch_and_plot_metrics(api, deployed, player, shell_job, imds,
                                                          tmp_path: Path) -> None:
    def boot(state: str, error: str, attempt: int, payload: dict) -> None:
        """The instance boots: IMDS knows its id, and its agent runs with CloudWatch on."""
        if error == "EC2StartingException" and attempt == 1:
            imds.be_instance(payload["config"]["instance_id"])
            run_job(api.backend.store, payload["jobid"], payload["config"]["log_bucket"],
                    tmp_path / payload["jobid"],
                    defaults=AgentDefaults(container_runtime="none", metrics_interval=0.2, cloudwatch=True))

    job = api.run_workflow(shell_job(BUSY), sfn=deployed["sfn"], open_browser=False)
    jobid = job["jobid"]
    assert player.play(job["_tibanna"]["exec_arn"], on_retry=boot).status == "SUCCEEDED"
    instance_id = api.info(jobid)["instance_id"]
    assert instance_id == imds.values["instance-id"] and "InstanceId " + instance_id in api.log(job_id=jobid)

    samples = read_samples_tsv(api.backend.store.get_text("log-bucket", protocol.key(jobid, protocol.METRICS_SAMPLES)))
    postrun = api.check_output(job_id=jobid)["postrunjson"]["Job"]
    assert postrun["instance_id"] == instance_id  # the agent on EC2 names its instance, not 'local-...'
    start, end = protocol.parse_stamp(postrun["start_time"]), protocol.parse_stamp(postrun["end_time"])
    expected = series_from_samples(samples, start).columns
    seen = read_cloudwatch(boto3.client("cloudwatch"), instance_id, start, start + dt.timedelta(minutes=5)).columns
    for name in METRICS_TSV_COLUMNS:
        assert seen[name] == pytest.approx(expected[name], abs=0.01), name  # samples.tsv keeps 2 decimals
    assert max(seen["max_mem_used_MB"]) > 30

    # Without the agent's samples (as for a job of upstream's), plot_metrics reads CloudWatch, from
    # the job's start to its end (both in whole seconds).
    api.backend.store.delete("log-bucket", protocol.key(jobid, protocol.METRICS_SAMPLES))
    api.plot_metrics(jobid, open_browser=False)
    rows = read_metrics_tsv(api.backend.store.get_text("log-bucket", f"{jobid}.metrics/metrics.tsv"))
    expected = series_from_samples(samples, start, end).columns
    for name in METRICS_TSV_COLUMNS:
        assert rows[name] == pytest.approx(expected[name], abs=0.01), name
