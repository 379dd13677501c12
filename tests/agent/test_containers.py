"""Jobs in containers through `run_job`, against a real private docker daemon (tests/dockerd.py)."""
from __future__ import annotations

import base64
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from agent_helpers import Runs, describe
from dockerd import DockerDaemon
from tibanna import protocol, settings
from tibanna.agent import container

IMAGE = "ubuntu:20.04"  # the name agent_helpers.describe uses, given to the local busybox image


@pytest.fixture(scope="module")
def docker(docker_daemon: DockerDaemon) -> DockerDaemon:
    docker_daemon.tag(IMAGE)
    return docker_daemon


@pytest.fixture(autouse=True)
def quick_pulls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(container, "PULL_RETRY_DELAY", 0.0)


def in_docker(runs: Runs, description: dict, **defaults) -> tuple[str, int]:
    return runs.run(description, container_runtime="docker", metrics_interval=0.25, **defaults)


def leftovers(docker: DockerDaemon, jobid: str) -> list[str]:
    """The job's containers still known to the daemon (`docker ps -a`)."""
    return docker.docker("ps", "-aq", "--filter", f"label=tibanna.job={jobid}").stdout.split()


def test_shell_job_runs_in_its_image(runs: Runs, docker: DockerDaemon) -> None:
    command = ('echo "hi \\$WHO \\$N" > /data1/out/x; pwd >> /data1/out/x; readlink /bin/sh >> /data1/out/x; '
               'test -f /.dockerenv && echo in-docker >> /data1/out/x; echo to-stderr >&2')
    jobid, code = in_docker(runs, describe(command, input_env={"WHO": "world", "N": 2},
                                           outputs={"file:///data1/out/x": "x"}))
    log = runs.log(jobid, protocol.LOG)
    assert code == 0, log
    assert runs.output("x") == "hi world 2\n/data1/shell\nbusybox\nin-docker\n"  # the host's /bin/sh is dash
    assert "to-stderr" in log and "exit code 0" in log
    assert f"docker run --rm --name tibanna-{jobid} --label tibanna.job={jobid}" in log
    assert runs.postrun(jobid)["Job"]["container_runtime"] == "docker"
    assert leftovers(docker, jobid) == [] and not list(Path("/sys/fs/cgroup").glob(f"*/tibanna-{jobid}"))
    assert not (runs.workdir(jobid) / container.RECORD_NAME).exists()
    out = runs.workdir(jobid) / "data1/out/x"
    assert out.stat().st_uid == 0  # written by the container's root


def test_exit_code_and_stderr_reach_the_log(runs: Runs, docker: DockerDaemon) -> None:
    jobid, code = in_docker(runs, describe("echo broken >&2; exit 3"))
    log = runs.log(jobid, protocol.LOG)
    assert code == 1 and runs.markers(jobid) == [protocol.ERROR]
    assert "broken" in log and "exit code 3" in log
    assert leftovers(docker, jobid) == []


def test_unknown_image_fails_naming_it_after_retried_pulls(runs: Runs, docker: DockerDaemon) -> None:
    jobid, code = in_docker(runs, describe("true", container_image="local/never-built:1"))
    log = runs.log(jobid, protocol.LOG)
    assert code == 1 and runs.markers(jobid) == [protocol.ERROR]
    assert [f"attempt {i} of 3" in log for i in (1, 2, 3)] == [True] * 3
    assert "ERROR: image local/never-built:1 cannot be pulled after 3 attempts" in log
    assert "running in" not in log  # nothing ran, not even on the host


def test_container_cpu_memory_and_processes_are_measured(runs: Runs, docker: DockerDaemon) -> None:
    command = ("dd if=/dev/zero bs=250M count=1 2>/dev/null | sleep 3 & "
               "timeout 3 sh -c 'while :; do :; done'; wait")
    jobid, code = in_docker(runs, describe(command))
    assert code == 0, runs.log(jobid, protocol.LOG)
    metrics = runs.postrun(jobid)["Job"]["Metrics"]
    assert metrics["max_cpu_utilization_percent"] >= 20  # one core of two is 50
    assert metrics["max_mem_used_MB"] >= 180
    samples = runs.log(jobid, protocol.METRICS_SAMPLES).splitlines()
    assert max(float(row.split("\t")[1]) for row in samples[1:]) >= 20
    top = runs.log(jobid, protocol.TOP)
    assert "while :; do :; done" in top and "sleep 3" in top  # the container's own processes
    assert not list(Path("/sys/fs/cgroup").glob(f"*/tibanna-{jobid}"))


def test_forced_runtime_without_a_daemon_never_runs_on_the_host(runs: Runs, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    monkeypatch.setenv(settings.TIBANNA_CONTAINER_WAIT.name, "0.5")
    jobid, code = runs.run(describe("touch /data1/out/ran"), container_runtime="docker")
    log = runs.log(jobid, protocol.LOG)
    assert code == 1 and "container runtime docker was asked for but cannot be used" in log
    assert "does not run on the host" in log and not (runs.workdir(jobid) / "data1/out/ran").exists()


def test_auto_falls_back_to_the_host_and_says_so(runs: Runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    monkeypatch.setenv(settings.TIBANNA_CONTAINER_WAIT.name, "0")
    jobid, code = runs.run(describe("readlink -f /bin/sh > /data1/out/sh"), container_runtime="auto")
    assert code == 0
    fallback = runs.postrun(jobid)["Job"]["container_fallback"]
    assert fallback.startswith("container_runtime 'auto': `docker info` failed") and "runs on the host" in fallback
    assert runs.postrun(jobid)["Job"]["container_runtime"] == "host"
    assert fallback in runs.log(jobid, protocol.LOG)


def test_agent_waits_for_a_daemon_still_coming_up(runs: Runs, docker: DockerDaemon,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    late = DockerDaemon().start()  # its image built, then stopped: it comes back with the image
    late.build_busybox_image(IMAGE)
    late.stop(keep=True)
    monkeypatch.setenv("DOCKER_HOST", late.host)
    monkeypatch.setenv(settings.TIBANNA_CONTAINER_WAIT.name, "60")

    def start_late() -> None:
        time.sleep(1.5)
        late.start()

    starter = threading.Thread(target=start_late)
    starter.start()
    try:
        jobid, code = in_docker(runs, describe("test -f /.dockerenv"))
        starter.join()
        assert code == 0, runs.log(jobid, protocol.LOG)
        assert late.containers() == []
    finally:
        starter.join()
        late.stop()


def test_ecr_image_is_pulled_after_a_login_that_keeps_the_password_secret(
        runs: Runs, docker: DockerDaemon, monkeypatch: pytest.MonkeyPatch) -> None:
    token = base64.b64encode(b"AWS:s3cr3t-pass").decode()
    monkeypatch.setattr(container, "ecr_token", lambda account, region: token)
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/tools/bwa:1"
    jobid, code = in_docker(runs, describe("true", container_image=image))
    log = runs.log(jobid, protocol.LOG)
    assert code == 1
    assert f"ERROR: docker login to 123456789012.dkr.ecr.us-east-1.amazonaws.com for image {image} failed" in log
    assert "s3cr3t-pass" not in log and "s3cr3t-pass" not in runs.log(jobid, protocol.POSTRUN_JSON)


def test_ecr_login_words() -> None:
    assert container.ecr_registry("123456789012.dkr.ecr.eu-west-2.amazonaws.com/x/y:2") == (
        "123456789012.dkr.ecr.eu-west-2.amazonaws.com", "123456789012", "eu-west-2")
    assert container.ecr_registry("ubuntu:20.04") is None
    assert container.ecr_registry("quay.io/biocontainers/bwa:0.7") is None
    words, stdin = container.ecr_login_command("docker", "1.dkr.ecr.x.amazonaws.com",
                                               base64.b64encode(b"AWS:pw").decode())
    assert words == ["docker", "login", "--username", "AWS", "--password-stdin", "https://1.dkr.ecr.x.amazonaws.com"]
    assert stdin == "pw"


def test_ecr_token_comes_from_the_instance_role(monkeypatch: pytest.MonkeyPatch) -> None:
    moto = pytest.importorskip("moto")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with moto.mock_aws():
        user, _, password = base64.b64decode(container.ecr_token("123456789012", "us-east-1")).decode().partition(":")
    assert user == "AWS" and password


def test_cgroup_v2_files_are_read(tmp_path: Path) -> None:
    from tibanna.agent.cgroups import Cgroup, cgroup_mounts, parent_path

    mounts = tmp_path / "mounts"
    root = tmp_path / "cg"
    mounts.write_text(f"cgroup2 {root} cgroup2 rw,nosuid,nodev,noexec,relatime 0 0\n")
    assert cgroup_mounts(mounts) == ({}, root)
    assert parent_path("tibanna-job_1.slice", "systemd") == "tibanna.slice/tibanna-job_1.slice"
    for rel, driver in (("tibanna-j1", "cgroupfs"), ("tibanna.slice/tibanna-j1.slice", "systemd")):
        folder = root / rel
        child = folder / ("abc123" if driver == "cgroupfs" else "docker-abc123.scope")
        child.mkdir(parents=True)
        (folder / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
        (folder / "memory.current").write_text("314572800\n")
        (folder / "memory.peak").write_text("400000000\n")
        (folder / "memory.stat").write_text("anon 209715200\nfile 104857600\ninactive_file 52428800\n")
        (folder / "io.stat").write_text("8:0 rbytes=4096 wbytes=0 rios=1 wios=0\n"
                                        "259:0 rbytes=1000 wbytes=77 rios=2 wios=1\n")
        (folder / "cgroup.procs").write_text("")
        (child / "cgroup.procs").write_text("101\n102\n")
        parent = "/tibanna-j1" if driver == "cgroupfs" else "tibanna-j1.slice"
        cgroup = Cgroup.of_parent(parent, driver, 2, mounts)
        assert cgroup is not None and cgroup.cpu == folder
        assert cgroup.cpu_seconds() == 2.5
        assert cgroup.memory_bytes() == 314572800 - 52428800
        assert cgroup.peak_bytes() == 400000000
        assert cgroup.read_bytes() == 5096
        assert sorted(cgroup.pids()) == [101, 102]


def test_cgroup_v1_files_are_read(tmp_path: Path) -> None:
    from tibanna.agent.cgroups import Cgroup

    mounts = tmp_path / "mounts"
    lines = []
    for controller in ("cpu,cpuacct", "memory", "blkio"):
        point = tmp_path / controller
        (point / "tibanna-j2").mkdir(parents=True)
        lines.append(f"cgroup {point} cgroup rw,nosuid,{controller} 0 0")
    mounts.write_text("\n".join(lines) + "\n")
    (tmp_path / "cpu,cpuacct/tibanna-j2/cpuacct.usage").write_text("1500000000\n")
    (tmp_path / "memory/tibanna-j2/memory.usage_in_bytes").write_text("1000\n")
    (tmp_path / "memory/tibanna-j2/memory.stat").write_text("cache 10\ntotal_inactive_file 100\n")
    (tmp_path / "blkio/tibanna-j2/blkio.throttle.io_service_bytes_recursive").write_text(
        "8:0 Read 2048\n8:0 Write 10\n8:0 Total 2058\nTotal 2058\n")
    cgroup = Cgroup.of_parent("/tibanna-j2", "cgroupfs", 1, mounts)
    assert cgroup is not None
    assert (cgroup.cpu_seconds(), cgroup.memory_bytes(), cgroup.read_bytes()) == (1.5, 900, 2048)


def test_sigterm_to_the_agent_removes_the_container(runs: Runs, docker: DockerDaemon) -> None:
    import subprocess
    import sys

    from agent_helpers import LOG_BUCKET
    from jobhelpers import processes_with, wait_for

    marker = f"sigterm{os.getpid()}"
    jobid = runs.submit(describe(f"while :; do :; done # {marker}"))
    agent = subprocess.Popen([sys.executable, "-m", "tibanna.agent", "--jobid", jobid, "--log-bucket", LOG_BUCKET,
                              "--workdir", str(runs.workdir(jobid)), "--store", f"local:{runs.store.root}",
                              "--container-runtime", "docker"])
    try:
        wait_for(lambda: processes_with(marker) and leftovers(docker, jobid), timeout=30)
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=30) == 1
    finally:
        if agent.poll() is None:
            agent.kill()
    assert leftovers(docker, jobid) == [] and not processes_with(marker)
    assert runs.markers(jobid) == [] and "terminated (SIGTERM)" in runs.log(jobid, protocol.LOG)


def test_snakemake_command_runs_in_its_container_image(runs: Runs, docker: DockerDaemon) -> None:
    docker.tag("snakemake/snakemake:v9.16.3")
    workflow = Path(__file__).parents[1] / "data/workflows/snakemake"
    for name in ("Snakefile", "rules/upper.smk"):
        runs.store.put_file("wf-bucket", f"snake/{name}", workflow / name)
    command = "ls Snakefile rules/upper.smk > /data1/out/seen; test -f /.dockerenv && pwd >> /data1/out/seen"
    description = describe(command,
                           language="snakemake", container_image="snakemake/snakemake:v9.16.3",
                           snakemake_directory_url="s3://wf-bucket/snake", snakemake_main_filename="Snakefile",
                           snakemake_child_filenames=["rules/upper.smk"], outputs={"file:///data1/out/seen": "seen"})
    jobid, code = in_docker(runs, description)
    assert code == 0, runs.log(jobid, protocol.LOG)
    assert runs.output("seen") == "Snakefile\nrules/upper.smk\n/data1/snakemake\n"


def test_a_non_root_agent_gets_the_containers_files_back(docker: DockerDaemon) -> None:
    """As on a laptop with docker: the container writes as root, the agent (nobody here) can still remove the folder."""
    import shutil
    import subprocess
    import sys
    import tempfile

    from agent_helpers import LOG_BUCKET
    from tibanna.storage import LocalStore

    nobody = 65534
    root = Path(tempfile.mkdtemp(prefix="tibanna-nonroot-"))
    modes = {path: path.stat().st_mode for path in (docker.root, docker.socket)}
    store = LocalStore(root / "buckets")
    jobid = f"nonroot{os.getpid()}"
    try:
        root.chmod(0o755)
        Runs(store, root).submit({**describe("mkdir -p /data1/out/d && echo x > /data1/out/d/x",
                                             outputs={"file:///data1/out/d/x": "x"}), "jobid": jobid})
        for path in (root, *root.rglob("*")):
            os.chown(path, nobody, nobody)
        docker.root.chmod(0o711)
        docker.socket.chmod(0o666)
        agent = subprocess.run(
            ["setpriv", f"--reuid={nobody}", f"--regid={nobody}", "--clear-groups", sys.executable, "-m",
             "tibanna.agent", "--jobid", jobid, "--log-bucket", LOG_BUCKET, "--workdir", str(root / "work"),
             "--store", f"local:{store.root}", "--container-runtime", "docker"],
            env={**os.environ, "HOME": str(root)}, capture_output=True, text=True, timeout=120)
        assert agent.returncode == 0, (agent.stderr, store.get_text(LOG_BUCKET, protocol.key(jobid, protocol.LOG)))
        assert store.get_text("out-bucket", "x") == "x\n"
        assert (root / "work/data1/out/d/x").stat().st_uid == nobody
        removal = subprocess.run(["setpriv", f"--reuid={nobody}", f"--regid={nobody}", "--clear-groups",
                                  "rm", "-rf", str(root / "work")], capture_output=True, text=True)
        assert removal.returncode == 0 and not (root / "work").exists(), removal.stderr
        assert "cannot remove cgroup" in agent.stderr  # the daemon made the job's cgroup parent as root
    finally:
        for folder in Path("/sys/fs/cgroup").glob(f"*/tibanna-{jobid}"):
            folder.rmdir()
        for path, mode in modes.items():
            path.chmod(mode)
        shutil.rmtree(root, ignore_errors=True)
