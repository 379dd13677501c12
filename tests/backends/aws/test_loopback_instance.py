"""The launched instance's user data, run on a loopback "instance" (tests/backends/aws/loopback.py).

Each scenario goes as on AWS: `run_task_awsem` launches in moto, the user data boots against the
moto server and a fake IMDSv2 with the instance profile's credentials (no static keys), extracts
the agent's bundle into a Python that has nothing else installed, finds its data volume by its
EBS id, and runs the job's container on a real docker daemon; `check_task_awsem` then answers as
it would on AWS.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import threading
import time
from pathlib import Path
from typing import Iterator

import boto3
import pytest

from dockerd import unavailable_reason
from jobhelpers import unavailable, wait_for
from loopback import FakeIMDS, Instance
from tibanna import protocol, samples, settings
from tibanna.agent import instance as instance_tools
from tibanna import names
from tibanna.backends.aws.lambdas import check_task_awsem, run_task_awsem
from tibanna.exceptions import (AWSEMJobErrorException, EC2IdleException, EC2UnintendedTerminationException,
                                StillRunningException)

pytestmark = pytest.mark.xdist_group("loopback-instance")  # one /data1 and one CPU-hungry instance at a time
IDLE_WINDOW_SECONDS = 4
WORKFLOWS = Path(__file__).resolve().parents[2] / "data" / "workflows"


@pytest.fixture(scope="module")
def imds() -> Iterator[FakeIMDS]:
    server = FakeIMDS()
    yield server
    server.close()


@pytest.fixture
def launch(api, deployed, player, moto_endpoint, imds, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Submit a job and launch its instance with the deployed run_task; returns (payload, Instance)."""
    reason = unavailable_reason() or (None if shutil.which("unshare") else "unshare is not installed")
    if reason:
        unavailable("a loopback instance (private mount namespace and dockerd)", reason)
    for name, value in player.lambda_env(names.lambda_name(names.RUN_TASK, deployed["usergroup"])).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(settings.TIBANNA_IDLE_WINDOW_SECONDS.name, str(IDLE_WINDOW_SECONDS))

    def submit(job: dict, **instance_options) -> tuple[dict, Instance]:
        started = api.run_workflow(job, sfn=deployed["sfn"], open_browser=False)
        execution = api.backend.sfn.describe_execution(executionArn=started["_tibanna"]["exec_arn"])
        payload = run_task_awsem.run_task(json.loads(execution["input"]), api.backend)
        machine = Instance(boto3.client("ec2"), payload["config"]["instance_id"], moto_endpoint, imds,
                           tmp_path / "instance", **instance_options)
        return payload, machine

    return submit


def check(api, payload: dict) -> dict:
    return check_task_awsem.check_task(payload, api.backend)


def log_of(jobid: str) -> str:
    body = boto3.client("s3").get_object(Bucket="log-bucket", Key=f"{jobid}{protocol.LOG}")["Body"]
    return body.read().decode()


def test_a_container_job_runs_on_the_instance_and_check_task_returns_its_postrun(api, launch, shell_job, imds):
    payload, machine = launch(shell_job("echo hello from $(uname -s) > /data1/out/hello.txt",
                                        outputs={"/data1/out/hello.txt": "loopback/hello.txt"}, metrics_interval=1))
    assert machine.boot() == 0, machine.bootstrap_log
    done = check(api, payload)
    assert done["postrunjson"]["Job"]["status"] == "0"
    hello = boto3.client("s3").get_object(Bucket="out-bucket", Key="loopback/hello.txt")["Body"].read()
    assert hello == b"hello from Linux\n"
    # Booted as an instance does: its own Python with only the bundle, its data volume by EBS id,
    # IMDSv2 for every metadata read and the credentials, then shutdown.
    timing = machine.boot_to_command()
    print("\n".join(f"{part:>24}: {seconds:6.2f} s" for part, seconds in timing.items()))
    assert all(seconds >= 0 for seconds in timing.values()) and "done" in machine.stamps()
    assert (machine.workdir / "mkfs.calls").read_text().split() == ["-t", "ext4", "-q", "/dev/nvme1n1"]
    assert machine.shutdown_calls == ["-h now"]
    assert all(authorised for _, _, authorised in imds.requests)
    assert any(path.endswith("/iam/security-credentials/") for _, path, _ in imds.requests)
    metrics = boto3.client("cloudwatch").list_metrics(Namespace="CWAgent", Dimensions=[
        {"Name": "InstanceId", "Value": payload["config"]["instance_id"]}])["Metrics"]
    assert metrics, "the agent publishes its samples to CloudWatch"


ENGINE_JOBS = {  # language: (the job's args, its output's name, a line of its log)
    "cwl_v1": ({"cwl_directory_url": "s3://in-bucket/flows/cwl", "cwl_main_filename": "md5.cwl",
                "cwl_child_filenames": []}, "report", "cwltool runs the workflow's containers with docker"),
    "wdl": ({"wdl_directory_url": "s3://in-bucket/flows/wdl", "wdl_main_filename": "md5.wdl", "wdl_child_filenames": []},
            "md5.md5_step.report", "miniwdl runs the workflow's tasks with docker"),
}


@pytest.mark.parametrize("language", ENGINE_JOBS)
def test_a_workflow_job_runs_its_engine_from_the_bundle(api, launch, shell_job, language):
    """cwltool and miniwdl come with the agent's bundle (the instance's Python has nothing else)
    and run the workflow's step in its container."""
    args, output, log_line = ENGINE_JOBS[language]
    family = language.split("_")[0]
    s3 = boto3.client("s3")
    main = args[f"{family}_main_filename"]
    s3.put_object(Bucket="in-bucket", Key=f"flows/{family}/{main}", Body=(WORKFLOWS / family / main).read_bytes())
    s3.put_object(Bucket="in-bucket", Key="loopback/in.txt", Body=b"ACGT\n")
    job = shell_job("")
    input_name = "gzfile" if family == "cwl" else "md5.md5_step.gzfile"
    job["args"] = {"app_name": "md5", "language": language, "output_S3_bucket": "out-bucket", **args,
                   "input_files": {input_name: {"bucket_name": "in-bucket", "object_key": "loopback/in.txt"}},
                   "output_target": {output: f"loopback/{family}-report"}}
    payload, machine = launch(job)
    assert machine.boot() == 0, machine.bootstrap_log
    assert check(api, payload)["postrunjson"]["Job"]["status"] == "0"
    report = s3.get_object(Bucket="out-bucket", Key=f"loopback/{family}-report")["Body"].read()
    assert report == f"{hashlib.md5(b'ACGT' + bytes([10])).hexdigest()}  -\n".encode()
    assert log_line in log_of(payload["jobid"])


def test_a_failing_command_gets_its_custom_error_label(api, launch, shell_job):
    job = shell_job("echo 'quota exceeded on /data1' >&2; exit 3")
    job["args"]["custom_errors"] = [{"error_type": "Disk quota", "pattern": "quota exceeded"}]
    payload, machine = launch(job)
    machine.boot()
    with pytest.raises(AWSEMJobErrorException, match="Disk quota: quota exceeded"):
        check(api, payload)


def test_a_crashed_agents_traceback_reaches_the_log(api, launch, shell_job):
    payload, machine = launch(shell_job("echo never"))
    jobid = payload["jobid"]
    # An agent-level crash: its secrets object is not JSON (the agent reads it before anything else).
    boto3.client("s3").put_object(Bucket="log-bucket", Key=f"{jobid}{protocol.SECRET_ENV}", Body=b"{not json")
    machine.boot()
    log = log_of(jobid)
    assert "Tibanna agent crashed (exit status 1)" in log and "Traceback (most recent call last)" in log
    assert "JSONDecodeError" in log
    with pytest.raises(AWSEMJobErrorException):
        check(api, payload)


def test_docker_coming_up_late_is_waited_for_and_a_job_without_samples_is_not_idle(api, launch, shell_job):
    payload, machine = launch(shell_job("echo late > /data1/out/late.txt", outputs={"/data1/out/late.txt": "late"}),
                              docker_late=True)
    machine.start()
    wait_for(lambda: _marker_age(payload["jobid"], protocol.JOB_STARTED) > IDLE_WINDOW_SECONDS + 1, timeout=60,
             interval=0.5)
    with pytest.raises(StillRunningException):  # started longer ago than the idle window, no samples yet
        check(api, payload)
    machine.start_docker()
    assert machine.wait() == 0, machine.bootstrap_log
    assert check(api, payload)["postrunjson"]["Job"]["status"] == "0"
    assert "docker" in log_of(payload["jobid"]).lower()


def test_a_busy_container_outlives_the_idle_window_and_an_idle_one_does_not(api, launch, shell_job):
    busy_seconds = 3 * IDLE_WINDOW_SECONDS
    payload, machine = launch(shell_job(f"timeout {busy_seconds} sh -c 'while :; do :; done'; true",
                                        metrics_interval=1))
    machine.start()
    wait_for(lambda: _samples_span(payload["jobid"]) > IDLE_WINDOW_SECONDS + 2, timeout=90, interval=0.5)
    with pytest.raises(StillRunningException):  # the container's CPU is the job's: not idle
        check(api, payload)
    assert machine.wait() == 0, machine.bootstrap_log

    payload, machine = launch(shell_job(f"sleep {busy_seconds}", metrics_interval=1))
    machine.workdir = machine.workdir.with_name("idle-instance")
    machine.start()
    wait_for(lambda: _samples_span(payload["jobid"]) > IDLE_WINDOW_SECONDS + 2, timeout=90, interval=0.5)
    with pytest.raises(EC2IdleException):  # the control: the same rule ends a job that does nothing
        check(api, payload)
    machine.wait()


def test_an_instance_gone_ends_the_job(api, launch, shell_job):
    payload, _ = launch(shell_job("true"))
    ec2 = boto3.client("ec2")
    boto3.client("s3").put_object(Bucket="log-bucket", Key=f"{payload['jobid']}{protocol.JOB_STARTED}", Body=b"")
    ec2.terminate_instances(InstanceIds=[payload["config"]["instance_id"]])
    with pytest.raises(EC2UnintendedTerminationException, match="terminated unintendedly"):
        check(api, payload)
    payload, _ = launch(shell_job("true", spot_instance=True))
    boto3.client("s3").put_object(Bucket="log-bucket", Key=f"{payload['jobid']}{protocol.JOB_STARTED}", Body=b"")
    ec2.terminate_instances(InstanceIds=[payload["config"]["instance_id"]])
    with pytest.raises(EC2UnintendedTerminationException, match="spot instance was interrupted"):
        check(api, payload)


def test_a_spot_interruption_notice_marks_the_job(api, deployed, imds, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.endpoint)
    imds.be_instance("i-0spot")
    found = []
    watcher = threading.Thread(target=instance_tools.watch_spot,
                                             args=(api.backend.store, "spotjob", "log-bucket", 0.05))
    watcher.start()
    time.sleep(0.2)
    found.append(api.backend.store.exists("log-bucket", f"spotjob{protocol.SPOT_FAILURE}"))
    imds.values["spot/instance-action"] = json.dumps({"action": "terminate", "time": "2026-12-02T00:00:00Z"})
    watcher.join(timeout=10)
    assert found == [False] and api.backend.store.exists("log-bucket", f"spotjob{protocol.SPOT_FAILURE}")
    del imds.values["spot/instance-action"]


def _marker_age(jobid: str, suffix: str) -> float:
    try:
        head = boto3.client("s3").head_object(Bucket="log-bucket", Key=f"{jobid}{suffix}")
    except Exception:  # noqa: BLE001 - not there yet
        return 0.0
    return (dt.datetime.now(dt.timezone.utc) - head["LastModified"]).total_seconds()


def _samples_span(jobid: str) -> float:
    """Seconds between the first sample in S3 and now (0 until there is one)."""
    try:
        text = boto3.client("s3").get_object(Bucket="log-bucket", Key=f"{jobid}{protocol.METRICS_SAMPLES}")[
            "Body"].read().decode()
    except Exception:  # noqa: BLE001 - not there yet
        return 0.0
    rows = samples.read_samples_tsv(text)
    return time.time() - rows[0].time if rows else 0.0

