"""The local backend with docker as the runtime, against a real private daemon (tests/dockerd.py).

The shell cases of test_local_jobs.py run again here with TIBANNA_CONTAINER_RUNTIME=docker
(imported, so pytest collects them in this module too); the rest check what only containers
have: kills and lost workers leave no container, CWL and WDL steps run in their images, and
docker's swarm state and networks are as before.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from dockerd import DockerDaemon
from jobhelpers import processes_with, shell_job, wait_done, wait_for
from test_local_jobs import (  # noqa: F401  (collected again here, in containers)
    test_compressed_input_unzipped_and_output_under_subkey, test_failing_command_gets_custom_error_label,
    test_folder_output_by_object_prefix, test_hello_with_input_env, test_job_folder_freed_after_shutdown_min,
    test_kill_ends_the_whole_process_tree, test_kill_queued_job_and_kill_all, test_nested_list_inputs_with_rename)
from test_workflow_languages import GZ, MD5_REPORT, job, output, put, put_workflows, run

IMAGE = "ubuntu:20.04"  # the image the shared descriptions and workflows name, built locally


@pytest.fixture(scope="module")
def docker(docker_daemon: DockerDaemon) -> DockerDaemon:
    docker_daemon.tag(IMAGE)
    return docker_daemon


@pytest.fixture(autouse=True)
def docker_runtime(docker: DockerDaemon, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every job of this module runs in docker (the supervisor inherits DOCKER_HOST and this)."""
    monkeypatch.setenv("DOCKER_HOST", docker.host)
    monkeypatch.setenv("TIBANNA_CONTAINER_RUNTIME", "docker")


def job_containers(docker: DockerDaemon, jobid: str) -> list[str]:
    return docker.docker("ps", "-aq", "--filter", f"label=tibanna.job={jobid}").stdout.split()


def running_container(api, docker: DockerDaemon, marker: str) -> str:
    """Submit a job busy in its container; its id once the container's process runs."""
    jobid = api.run_workflow(shell_job(f"while :; do :; done # {marker}"))["jobid"]
    wait_for(lambda: processes_with(marker) and job_containers(docker, jobid), timeout=30)
    return jobid


@pytest.mark.parametrize("soft", [False, True])
def test_kill_removes_the_container(api, home, docker, soft):
    marker = f"busy{int(soft)}{os.getpid()}"
    jobid = running_container(api, docker, marker)
    assert f"tibanna-{jobid}" in docker.containers()
    api.kill(job_id=jobid, soft=soft)
    assert api.check_status(job_id=jobid) == ("FAILED" if soft else "ABORTED")
    assert job_containers(docker, jobid) == [] and not processes_with(marker)
    assert not (home / "jobs" / jobid / "containers.json").exists()


def test_kill_all_removes_every_container(api, home, docker):
    marker = f"killall{os.getpid()}"
    jobids = [running_container(api, docker, f"{marker}{i}") for i in range(2)]
    assert sorted(api.kill_all()) == sorted(jobids)
    assert all(job_containers(docker, j) == [] for j in jobids) and not processes_with(marker)


def test_lost_worker_leaves_no_container(api, home, docker):
    """The worker and its supervisor SIGKILLed: the next supervisor finalizes the job and removes its container."""
    marker = f"lost{os.getpid()}"
    jobid = running_container(api, docker, marker)
    os.kill(int((home / "supervisor.pid").read_text()), signal.SIGKILL)
    os.kill(api.backend.index.row(jobid)["worker_pid"], signal.SIGKILL)  # the worker alone: its command lives on
    assert wait_done(api, jobid) == "FAILED"  # reading the status starts a new supervisor, which recovers
    assert api.backend.get(job_id=jobid).error == "EC2UnintendedTerminationException"
    wait_for(lambda: not job_containers(docker, jobid) and not processes_with(marker), timeout=20)


def test_root_owned_outputs_are_staged_and_the_folder_freed(api, home, docker):
    import tibanna.backends.local.supervisor as sup
    from tibanna.backends.local.home import Home

    jobid = api.run_workflow(shell_job("mkdir /data1/out/d && echo x > /data1/out/d/x && id -u > /data1/out/uid",
                                       outputs={"file:///data1/out/uid": "uid"}))["jobid"]
    assert wait_done(api, jobid) == "SUCCEEDED", api.log(job_id=jobid)
    assert (home / "buckets/out-bucket/uid").read_text() == "0\n"
    sup.Supervisor(Home(home)).sweep_job_folders()
    assert not (home / "jobs" / jobid).exists()


def images_started(docker: DockerDaemon, jobid: str, since: float) -> set[str]:
    """The images of the containers the daemon started for a job (its events, by the job's label)."""
    out = docker.docker("events", "--since", f"{since:.0f}", "--until", f"{time.time() + 1:.0f}", "--filter",
                        f"label=tibanna.job={jobid}", "--filter", "event=start", "--format", "{{.From}}").stdout
    return set(out.split())


def swarm_and_networks(docker: DockerDaemon) -> tuple[str, list[str]]:
    state = docker.docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()
    return state, sorted(docker.docker("network", "ls", "--format", "{{.Name}}").stdout.split())


def test_cwl_and_wdl_steps_run_in_their_images_and_leave_docker_as_found(api, home, docker):
    before, since = swarm_and_networks(docker), time.time() - 1
    put(home, "in-bucket", "somefastqfile.fastq.gz", GZ)
    cwl = api.run_workflow(job({
        "app_name": "md5", "cwl_version": "v1", "cwl_directory_url": put_workflows(home, "cwl"),
        "cwl_main_filename": "md5.cwl",
        "input_files": {"gzfile": {"bucket_name": "in-bucket", "object_key": "somefastqfile.fastq.gz"}},
        "output_target": {"report": "cwl/report"}}))["jobid"]
    wdl, _ = run(api, job({
        "app_name": "md5", "language": "wdl", "wdl_directory_url": put_workflows(home, "wdl"),
        "wdl_main_filename": "md5.wdl",
        "input_files": {"md5.md5_step.gzfile": {"bucket_name": "in-bucket", "object_key": "somefastqfile.fastq.gz"}},
        "output_target": {"md5.md5_step.report": "wdl/report"}}))
    assert wait_done(api, cwl, timeout=90) == "SUCCEEDED", api.log(job_id=cwl)
    assert output(home, "cwl/report") == output(home, "wdl/report") == MD5_REPORT
    assert "cwltool runs the workflow's containers with docker" in api.log(job_id=cwl)
    wdl_log = api.log(job_id=wdl)
    assert "miniwdl runs the workflow's tasks with docker" in wdl_log
    assert images_started(docker, cwl, since) == images_started(docker, wdl, since) == {IMAGE}
    assert swarm_and_networks(docker) == before == ("inactive", ["host", "none"])
    assert job_containers(docker, cwl) == job_containers(docker, wdl) == []
    assert not [p for j in (cwl, wdl) for p in Path("/sys/fs/cgroup").glob(f"*/tibanna-{j}")]  # parents removed


def test_metrics_report_of_a_container_job(api, home, docker):
    """The issue's case: busy on one core of two and holding 250 MB, in a container."""
    from tibanna.metrics.report_tsv import read_report_tsv

    jobid = api.run_workflow(shell_job("dd if=/dev/zero bs=250M count=1 2>/dev/null | sleep 4 & "
                                       "timeout 4 sh -c 'while :; do :; done'; wait"))["jobid"]
    assert wait_done(api, jobid, timeout=60) == "SUCCEEDED", api.log(job_id=jobid)
    api.plot_metrics(jobid, open_browser=False)
    metrics = home / "buckets/log-bucket" / f"{jobid}.metrics"
    report = read_report_tsv((metrics / "metrics_report.tsv").read_text())
    assert float(report["Maximum_CPU_Utilization"]) >= 20
    assert float(report["Maximum_Memory_Used_Mb"]) >= 180
    assert "while :; do :; done" in (metrics / "top_cpu.tsv").read_text()
