"""The failure paths of a job on AWS, each played through the state machine's retry rules."""
from __future__ import annotations

import datetime as dt

import boto3
import pytest

from tibanna import protocol
from tibanna.samples import SAMPLES_HEADER, Sample

from aws_harness import Injected, assert_melted, melting_job


def _submit(api, deployed, job, **kwargs):
    return api.run_workflow(job, sfn=deployed["sfn"], open_browser=False, **kwargs)


def _markers(jobid: str) -> set[str]:
    keys = boto3.client("s3").list_objects_v2(Bucket="log-bucket", Prefix=jobid + ".").get("Contents", [])
    return {k["Key"][len(jobid):] for k in keys} & {".success", ".error", ".aborted"}


def test_job_error_gets_the_custom_label(api, deployed, player, shell_job):
    submitted = _submit(api, deployed, melting_job(shell_job))
    assert_melted(player.play(submitted["_tibanna"]["exec_arn"], on_retry=player.agent_on_boot))
    record = api.backend.get(job_id=submitted["jobid"])
    assert (record.status, record.error) == ("FAILED", "AWSEMJobErrorException")
    assert _markers(submitted["jobid"]) == {".error"}


def test_instance_terminated_unintendedly(api, deployed, player, shell_job):
    submitted = _submit(api, deployed, shell_job("true"))

    def boot_then_die(state, error, attempt, payload):
        api.backend.store.put_bytes("log-bucket", f"{payload['jobid']}.job_started", b"")
        boto3.client("ec2").terminate_instances(InstanceIds=[payload["config"]["instance_id"]])

    outcome = player.play(submitted["_tibanna"]["exec_arn"], on_retry=boot_then_die)
    assert outcome.error == "EC2UnintendedTerminationException"
    assert outcome.cause == f"EC2 is terminated unintendedly for job {submitted['jobid']} - please rerun."
    assert _markers(submitted["jobid"]) == {".error"}


def test_instance_that_never_boots_is_idle(api, deployed, player, shell_job):
    submitted = _submit(api, deployed, shell_job("true"))
    outcome = player.play(submitted["_tibanna"]["exec_arn"])
    # 10 minutes: WaitForJob's heartbeat timeout (5), then one poll 5 minutes apart
    assert outcome.retries == [("CheckTaskAwsem", "EC2StartingException")]
    assert outcome.error == "EC2IdleException"
    assert "ec2 is not initializing for too long" in outcome.cause


def _samples(rows: list[tuple[float, float, int]]) -> bytes:
    """A samples.tsv of (time, cpu %, bytes read) rows."""
    return (SAMPLES_HEADER + "".join(Sample(t, cpu, 1000, 1000, 1000, 10000, reads).tsv()
                                     for t, cpu, reads in rows)).encode()


def _sampling(api, player, cpu: float, reads_per_check: int):
    """A retry hook: the job starts, and at each check the agent has sampled (cpu, reads) since the last."""
    rows: list[tuple[float, float, int]] = []

    def hook(state, error, attempt, payload):
        jobid = payload["jobid"]
        api.backend.store.put_bytes("log-bucket", f"{jobid}.job_started", b"")
        now = (dt.datetime.now(dt.timezone.utc) + player.offset).timestamp()
        rows.extend((now - 300 + 60 * i, cpu, (rows[-1][2] if rows else 0) + reads_per_check * i // 5)
                    for i in range(5))
        api.backend.store.put_bytes("log-bucket", protocol.key(jobid, protocol.METRICS_SAMPLES), _samples(rows))
    return hook


def test_started_job_doing_nothing_for_an_hour_is_idle(api, deployed, player, shell_job):
    submitted = _submit(api, deployed, shell_job("true"))
    outcome = player.play(submitted["_tibanna"]["exec_arn"], on_retry=_sampling(api, player, 0.2, 0))
    assert outcome.error == "EC2IdleException"
    assert outcome.cause.startswith(f"Nothing has been running for the past hour for job {submitted['jobid']}")
    assert outcome.retries.count(("CheckTaskAwsem", "StillRunningException")) == 11  # 5 minutes apart


@pytest.mark.parametrize("cpu, reads", [(35.0, 0), (0.1, 10 ** 6)], ids=["cpu", "reads"])
def test_busy_job_is_not_idle(api, deployed, player, shell_job, cpu, reads):
    """Samples that show work over the window keep the job running (it ends when its agent does)."""
    submitted = _submit(api, deployed, shell_job("true"))
    sampled = _sampling(api, player, cpu, reads)

    def hook(state, error, attempt, payload):
        sampled(state, error, attempt, payload)
        if attempt == 20:  # 100 minutes of checks, then the job is done
            player.run_agent(payload)

    outcome = player.play(submitted["_tibanna"]["exec_arn"], on_retry=hook)
    assert outcome.status == "SUCCEEDED", outcome


def test_no_samples_yet_skips_the_idle_rule(api, deployed, player, shell_job):
    """Started, but nothing sampled for longer than the window (inputs still staging): not idle."""
    submitted = _submit(api, deployed, shell_job("true"))

    def hook(state, error, attempt, payload):
        api.backend.store.put_bytes("log-bucket", f"{payload['jobid']}.job_started", b"")
        if attempt == 20:
            player.run_agent(payload)

    outcome = player.play(submitted["_tibanna"]["exec_arn"], on_retry=hook)
    assert outcome.status == "SUCCEEDED", outcome
    assert outcome.retries.count(("CheckTaskAwsem", "StillRunningException")) == 20


@pytest.mark.parametrize("behaviour", ["fail", "wait_and_retry", "retry_without_spot"])
def test_capacity_limit(api, deployed, player, shell_job, behaviour):
    spot = behaviour == "retry_without_spot"
    job = shell_job("echo ok", behavior_on_capacity_limit=behaviour, spot_instance=spot)
    submitted = _submit(api, deployed, job)
    injected = Injected()
    limit = {"fail": 99, "wait_and_retry": 2, "retry_without_spot": 99}[behaviour]
    injected.capacity_errors(api.backend.clients("ec2"), lambda body: injected.calls < limit and (
        not spot or body.get("TargetCapacitySpecification.DefaultTargetCapacityType") == "spot"))
    outcome = player.play(submitted["_tibanna"]["exec_arn"], on_retry=player.agent_on_boot)
    if behaviour == "fail":
        assert (outcome.status, outcome.error) == ("FAILED", "EC2InstanceLimitException")
        assert outcome.cause.startswith("Instance limit exception - use 'behavior_on_capacity_limit' option")
        assert _markers(submitted["jobid"]) == {".error"}
        return
    assert outcome.status == "SUCCEEDED", outcome
    if behaviour == "wait_and_retry":
        assert outcome.retries[:2] == [("RunTaskAwsem", "EC2InstanceLimitWaitException")] * 2
    else:
        assert injected.calls == 1 and outcome.output["config"]["spot_instance"] is False
        instance = outcome.output["config"]["instance_id"]
        described = boto3.client("ec2").describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
        assert described.get("InstanceLifecycle") != "spot"


def test_dependency_failed_and_still_running(api, deployed, player, shell_job):
    failing = _submit(api, deployed, shell_job("exit 1"))
    waiting = shell_job("echo after")
    waiting["dependency"] = {"job_id": [failing["jobid"]]}
    dependent = _submit(api, deployed, waiting)

    def dependency_finishes(state, error, attempt, payload):
        assert error == "DependencyStillRunningException"
        player.play(failing["_tibanna"]["exec_arn"], on_retry=player.agent_on_boot)

    outcome = player.play(dependent["_tibanna"]["exec_arn"], on_retry=dependency_finishes)
    assert outcome.retries == [("RunTaskAwsem", "DependencyStillRunningException")]
    assert outcome.error == "DependencyFailedException"
    assert outcome.cause == f"A Job that this job is dependent on failed: {failing['jobid']}"
    assert _markers(dependent["jobid"]) == {".error"}


def test_spot_interruption_reruns_on_spot_then_on_demand(api, deployed, player, shell_job):
    job = shell_job("echo survived > /data1/out/s.txt", outputs={"file:///data1/out/s.txt": "spot/s.txt"},
                    spot_instance=True, spot_interruption_reruns=1)
    first = _submit(api, deployed, job)

    def interrupted(state, error, attempt, payload):
        for marker in (".job_started", ".spot_failure"):
            api.backend.store.put_bytes("log-bucket", payload["jobid"] + marker, b"")

    outcome = player.play(first["_tibanna"]["exec_arn"], on_retry=interrupted)
    rerun1 = f"{first['jobid']}-spot1"
    assert outcome.error == "EC2UnintendedTerminationException"
    assert outcome.cause.endswith(f"rerun automatically as job {rerun1} (spot).")
    second = api.backend.get(job_id=rerun1)
    assert second.rerun_of == first["jobid"] and second.description["config"]["spot_instance"] is True
    outcome = player.play(second.exec_arn, on_retry=interrupted)
    rerun2 = f"{first['jobid']}-spot2"
    assert outcome.cause.endswith(f"rerun automatically as job {rerun2} (on-demand).")
    third = api.backend.get(job_id=rerun2)
    assert third.rerun_of == first["jobid"] and third.description["config"]["spot_instance"] is False
    assert player.play(third.exec_arn, on_retry=player.agent_on_boot).status == "SUCCEEDED"
    assert boto3.client("s3").get_object(Bucket="out-bucket", Key="spot/s.txt")["Body"].read() == b"survived\n"
    assert [api.check_status(job_id=j) for j in (first["jobid"], rerun1, rerun2)] == ["FAILED", "FAILED", "SUCCEEDED"]


def test_spot_interruption_without_reruns_fails(api, deployed, player, shell_job):
    first = _submit(api, deployed, shell_job("true", spot_instance=True))

    def reclaimed(state, error, attempt, payload):
        api.backend.store.put_bytes("log-bucket", payload["jobid"] + ".job_started", b"")
        boto3.client("ec2").terminate_instances(InstanceIds=[payload["config"]["instance_id"]])

    outcome = player.play(first["_tibanna"]["exec_arn"], on_retry=reclaimed)
    assert outcome.cause == f"EC2 spot instance was interrupted for job {first['jobid']} - please rerun."
    assert api.backend.index.get(f"{first['jobid']}-spot1") is None


def test_kill_soft_while_booting_and_hard(api, deployed, player, shell_job):
    soft = _submit(api, deployed, shell_job("sleep 100"))

    def kill_soft(state, error, attempt, payload):
        api.kill(job_id=payload["jobid"], soft=True)

    outcome = player.play(soft["_tibanna"]["exec_arn"], on_retry=kill_soft)
    assert (outcome.error, outcome.cause) == ("JobAbortedException", "job aborted")
    assert _markers(soft["jobid"]) == {".aborted"}
    hard = _submit(api, deployed, shell_job("sleep 100"))
    api.kill(job_id=hard["jobid"])
    assert api.check_status(job_id=hard["jobid"]) == "ABORTED"
    assert _markers(hard["jobid"]) == {".aborted"}
