"""Which container runtime runs a job's images, how, and how every container of a job is found again.

A job asks for a runtime with TIBANNA_CONTAINER_RUNTIME (or config.container_runtime): `docker`
or `podman` mean the job runs in its image or fails, `none` means the host, and only `auto`
(docker where its daemon answers) may fall back to the host, which the log and the postrun
JSON then say. At agent start the agent waits up to TIBANNA_CONTAINER_WAIT seconds (default 60)
for a daemon that is still coming up.

Every container of a job (the shell job's own, and each cwltool or miniwdl step) carries the
label `tibanna.job=<jobid>` and runs under the cgroup parent `tibanna-<jobid>`: the label lets
any process (a kill, a supervisor that did not start the job) find and remove them, the
parent keeps CPU and memory totals after they exit (see cgroups.py). The job's workdir holds a
record of the runtime in use, so that `remove_job_containers(workdir)` knows what to clean up.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from tibanna import settings
from tibanna.agent import cgroups
from tibanna.exceptions import TibannaError

logger = logging.getLogger(__name__)

RUNTIMES = ("auto", "docker", "podman", "none")
# `docker run` / `podman run` exit with 125 when the runtime itself fails (e.g. the image cannot be pulled).
RUNTIME_ERROR_CODE = 125
LABEL = "tibanna.job"
RECORD_NAME = "containers.json"  # in the job's workdir, while it may have containers
PULL_ATTEMPTS = 3
PULL_RETRY_DELAY = 5.0  # seconds, doubled after each failed attempt
_CLIENT_ENV = ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY",
               "CONTAINER_HOST")
ECR_REGISTRY = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr(-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?$")


class ContainerError(TibannaError):
    """A runtime was asked for and cannot be used, or an image cannot be had."""


def requested_runtime(agent_choice: str | None, config: dict) -> str:
    """The runtime asked for: the agent's setting, else env TIBANNA_CONTAINER_RUNTIME, else the job's config."""
    choice = agent_choice or settings.TIBANNA_CONTAINER_RUNTIME.get() or config.get("container_runtime") or "auto"
    if choice not in RUNTIMES:
        raise TibannaError(f"container runtime must be one of {', '.join(RUNTIMES)}, not {choice!r}")
    return choice


def wait_seconds() -> float:
    """TIBANNA_CONTAINER_WAIT: how long to wait for a daemon coming up."""
    return max(settings.TIBANNA_CONTAINER_WAIT.seconds() or 0.0, 0.0)


@dataclass(frozen=True)
class Daemon:
    """A runtime that answered, and how it places containers in cgroups."""

    runtime: str
    cgroup_driver: str  # 'cgroupfs' | 'systemd'
    cgroup_version: int  # 1 | 2


_probed: dict[tuple, Daemon | str] = {}  # (runtime, client settings) -> Daemon, or why it did not answer


def probe(runtime: str, wait: float = 0.0, *, again: bool = True) -> Daemon | str:
    """The runtime's daemon, or the reason it is unusable, waiting up to `wait` s for it to answer.

    The answer is remembered for this process and the workers it forks (a local supervisor asks
    once); a failure is asked `again` unless told otherwise.
    """
    key = (runtime, *(os.environ.get(name) for name in _CLIENT_ENV))
    known = _probed.get(key)
    if isinstance(known, Daemon) or (known is not None and not again):
        return known
    if shutil.which(runtime) is None:
        return f"{runtime} is not installed"
    if runtime == "docker" and not _docker_endpoint_configured():
        return "no docker daemon is configured (no DOCKER_HOST, no /var/run/docker.sock)"
    deadline = time.monotonic() + wait
    while True:
        answer = _info(runtime)
        if isinstance(answer, Daemon) or time.monotonic() >= deadline:
            _probed[key] = answer
            return answer
        time.sleep(min(1.0, max(deadline - time.monotonic(), 0.0)))


def _info(runtime: str) -> Daemon | str:
    """Ask the daemon for its cgroup driver and version (`docker info` / `podman info`)."""
    fmt = ("{{.CgroupDriver}} {{.CgroupVersion}}" if runtime == "docker"
           else "{{.Host.CgroupManager}} {{.Host.CgroupsVersion}}")
    try:
        done = subprocess.run([runtime, "info", "--format", fmt], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as err:
        return f"`{runtime} info` failed: {err}"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"`{runtime} info` failed: {last}"
    driver, _, version = done.stdout.strip().partition(" ")
    return Daemon(runtime, driver or "cgroupfs", 2 if version.strip().lstrip("v") == "2" else 1)


def docker_answers() -> bool:
    """Whether a docker daemon answers now (no wait); a supervisor asks once and its workers inherit it."""
    return isinstance(probe("docker"), Daemon)


def _docker_endpoint_configured() -> bool:
    """A cheap pre-check that spares the `docker info` call where no daemon can be configured."""
    config_dir = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    return bool(os.environ.get("DOCKER_HOST") or os.environ.get("DOCKER_CONTEXT")
                or Path("/var/run/docker.sock").exists() or (config_dir / "contexts").is_dir())


@dataclass(frozen=True)
class Resolution:
    """The runtime a job uses (None: the host) and, for `auto` on the host, why."""

    daemon: Daemon | None
    fallback: str = ""

    @property
    def runtime(self) -> str | None:
        return self.daemon.runtime if self.daemon else None


def resolve_runtime(choice: str, wait: float | None = None) -> Resolution:
    """The runtime for `choice`, waiting for its daemon up to `wait` s (default `wait_seconds()`).

    `docker`/`podman` that do not answer raise ContainerError: such a job never runs on the host.
    `auto` waits only where a docker daemon is configured and this process (or the supervisor it
    was forked from) has not asked yet, and falls back to the host with a reason.
    """
    if choice == "none":
        return Resolution(None)
    wait = wait_seconds() if wait is None else wait
    if choice == "auto":
        answer = probe("docker", wait, again=False)
        return Resolution(answer) if isinstance(answer, Daemon) else Resolution(None, answer)
    answer = probe(choice, wait)
    if isinstance(answer, str):
        raise ContainerError(f"container runtime {choice} was asked for but cannot be used ({answer}; "
                             f"waited {wait:.0f} s): the job does not run on the host instead")
    return Resolution(answer)


def safe_name(jobid: str) -> str:
    """The jobid as a container name and cgroup name may spell it."""
    return re.sub(r"[^a-zA-Z0-9_.-]", "_", jobid)


def container_name(jobid: str) -> str:
    """The shell job's container's name, so that any process can find it."""
    return f"tibanna-{safe_name(jobid)}"


@dataclass
class JobContainers:
    """The containers of one job: the options that mark them, the record, the cleanup.

    Saved as `<workdir>/containers.json` while the job may have containers; `remove` (after the
    job, or from a kill or a supervisor's recovery) removes them, their cgroup parent and the record.
    """

    jobid: str
    runtime: str
    cgroup_driver: str = "cgroupfs"
    cgroup_version: int = 1
    env: dict[str, str] = field(default_factory=dict)  # the client settings (DOCKER_HOST, ...) in use

    @classmethod
    def for_job(cls, jobid: str, daemon: Daemon) -> JobContainers:
        env = {name: os.environ[name] for name in _CLIENT_ENV if name in os.environ}
        return cls(jobid, daemon.runtime, daemon.cgroup_driver, daemon.cgroup_version, env)

    @property
    def cgroup_parent(self) -> str:
        """`/tibanna-<job>` (cgroupfs), or the slice `tibanna-<job>.slice` (systemd; dashes would nest)."""
        if self.cgroup_driver == "systemd":
            return f"tibanna-{safe_name(self.jobid).replace('-', '_')}.slice"
        return f"/tibanna-{safe_name(self.jobid)}"

    def run_options(self) -> list[str]:
        """What marks a container as this job's: its label and cgroup parent."""
        return ["--label", f"{LABEL}={self.jobid}", "--cgroup-parent", self.cgroup_parent]

    def cgroup(self) -> cgroups.Cgroup | None:
        return cgroups.Cgroup.of_parent(self.cgroup_parent, self.cgroup_driver, self.cgroup_version)

    def client(self, *args: str, timeout: float = 60, input: str | None = None) -> subprocess.CompletedProcess:
        """`<runtime> <args>` with the job's client settings; output captured as text."""
        return subprocess.run([self.runtime, *args], capture_output=True, text=True, timeout=timeout, input=input,
                              env={**os.environ, **self.env})

    def save(self, workdir: Path) -> None:
        (workdir / RECORD_NAME).write_text(json.dumps(asdict(self)), encoding="utf-8")

    def ids(self) -> list[str]:
        """Ids of the job's containers, running or not."""
        done = self.client("ps", "-aq", "--filter", f"label={LABEL}={self.jobid}")
        return done.stdout.split() if done.returncode == 0 else []

    def remove(self, workdir: Path | None = None) -> list[str]:
        """Remove every container of the job (`rm -f`), then its cgroup parent and the record; the ids removed."""
        try:
            ids = self.ids()
            if ids:
                self.client("rm", "-f", *ids, timeout=120)
        except (OSError, subprocess.SubprocessError) as err:
            logger.warning("job %s: cannot remove its containers: %s", self.jobid, err)
            return []
        deadline = time.monotonic() + 5  # the runtime deletes a container's own cgroup just after it ends
        while cgroups.remove_parent(self.cgroup_parent, self.cgroup_driver) and time.monotonic() < deadline:
            time.sleep(0.05)
        if workdir is not None:
            (workdir / RECORD_NAME).unlink(missing_ok=True)
        return ids


    def give_back(self, data1: Path, image: str) -> None:
        """chown to the agent's user what the container wrote as root in `data1`, so the folder can be removed."""
        done = self.client("run", "--rm", *self.run_options(), "--network", "none", "-v", f"{data1}:/data1",
                           "--entrypoint", "chown", image, "-R", f"{os.getuid()}:{os.getgid()}", "/data1", timeout=600)
        if done.returncode != 0:
            logger.warning("job %s: cannot give back the files in %s: %s", self.jobid, data1, done.stderr.strip())


def remove_job_containers(workdir: Path) -> list[str]:
    """Remove the containers a job left (found by its record in `workdir`); their ids. For kills and recovery."""
    try:
        record = json.loads((Path(workdir) / RECORD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return JobContainers(**record).remove(Path(workdir))


def run_words(job: JobContainers, *, data1: Path, workdir: str, env_names: list[str], image: str,
              read_only_mounts: list[Path]) -> str:
    """`<rt> run --rm --name tibanna-<job> <label, cgroup> -v <data1>:/data1:rw -w <workdir> -e VAR ... <image>`.

    As bash words; the runner's command text follows. `read_only_mounts` are host folders that
    symlinks in the job folder point to (local `mount: true` inputs); they appear at the same paths.
    """
    words = [job.runtime, "run", "--rm", "--name", container_name(job.jobid), *job.run_options(),
             "-v", f"{data1}:/data1:rw", "-w", workdir]
    for folder in read_only_mounts:
        words += ["-v", f"{folder}:{folder}:ro"]
    for name in env_names:
        words += ["-e", name]
    words.append(image)
    return " ".join(shlex.quote(word) for word in words)


_SHIM = """#!/bin/sh
# {runtime} for the engine's steps: each container gets job {jobid}'s label and cgroup parent, and
# a pull is skipped when the image is already here (a local-only image cannot be pulled).
real={real}
case "$1" in
  run|create) sub=$1; shift; exec "$real" "$sub" {options} "$@" ;;
  pull) for last in "$@"; do :; done; "$real" image inspect "$last" >/dev/null 2>&1 && exit 0 ;;
esac
exec "$real" "$@"
"""


def write_shim(job: JobContainers, folder: Path) -> Path:
    """`<folder>/<runtime>`: the runtime as the engines (cwltool, miniwdl) call it; put `folder` first on PATH."""
    folder.mkdir(parents=True, exist_ok=True)
    real = shutil.which(job.runtime)
    if real is None:
        raise ContainerError(f"{job.runtime} is not installed")
    path = folder / job.runtime
    path.write_text(_SHIM.format(runtime=job.runtime, jobid=job.jobid, real=shlex.quote(real),
                                 options=" ".join(shlex.quote(w) for w in job.run_options())), encoding="utf-8")
    path.chmod(0o755)
    return path


def ecr_registry(image: str) -> tuple[str, str, str] | None:
    """(registry, account, region) for an ECR image `<account>.dkr.ecr.<region>.amazonaws.com/...`."""
    host = image.split("/", 1)[0] if "/" in image else ""
    match = ECR_REGISTRY.match(host)
    return (host, match["account"], match["region"]) if match else None


def ecr_login_command(runtime: str, registry: str, token: str) -> tuple[list[str], str]:
    """The login words and the stdin for an ECR authorization token (base64 `AWS:<password>`).

    The password goes to stdin (`--password-stdin`), never on a command line or in a log.
    """
    user, _, password = base64.b64decode(token).decode().partition(":")
    return [runtime, "login", "--username", user, "--password-stdin", f"https://{registry}"], password


def ecr_token(account: str, region: str) -> str:
    """The instance role's ECR authorization token for `account` (boto3, as upstream's `aws ecr get-login`)."""
    import boto3

    response = boto3.client("ecr", region_name=region).get_authorization_token(registryIds=[account])
    return response["authorizationData"][0]["authorizationToken"]


def ecr_login(job: JobContainers, image: str, log: Callable[[str], None]) -> None:
    """Log the runtime in to the image's ECR registry with the instance's role; nothing for other images."""
    found = ecr_registry(image)
    if found is None:
        return
    registry, account, region = found
    try:
        words, password = ecr_login_command(job.runtime, registry, ecr_token(account, region))
    except Exception as err:  # boto3's errors (no role, no network) all end the same way
        raise ContainerError(f"cannot get an ECR login for image {image}: {type(err).__name__}: {err}") from None
    done = job.client(*words[1:], input=password)
    detail = (done.stderr.strip().splitlines() or [""])[-1].replace(password, "****")
    if done.returncode != 0:
        raise ContainerError(f"{job.runtime} login to {registry} for image {image} failed: {detail}")
    log(f"logged in to ECR registry {registry} with the instance's role")


def ensure_image(job: JobContainers, image: str, log: Callable[[str], None]) -> None:
    """Make `image` present: nothing if it is here, else (ECR login and) pull, PULL_ATTEMPTS times
    with PULL_RETRY_DELAY s doubling between them. An image that cannot be had raises ContainerError naming it.
    """
    attempts, delay = PULL_ATTEMPTS, PULL_RETRY_DELAY
    if job.client("image", "inspect", "--format", "{{.Id}}", image).returncode == 0:
        return
    ecr_login(job, image, log)
    error = ""
    for attempt in range(1, attempts + 1):
        log(f"pulling image {image} (attempt {attempt} of {attempts})")
        done = job.client("pull", "--quiet", image, timeout=3600)
        if done.returncode == 0:
            return
        error = (done.stderr.strip().splitlines() or ["no output"])[-1]
        log(f"pull of {image} failed: {error}")
        if attempt < attempts:
            time.sleep(delay * 2 ** (attempt - 1))
    raise ContainerError(f"image {image} cannot be pulled after {attempts} attempts: {error}")


class Pull:
    """`ensure_image` in a thread, so a job's inputs are staged while its image is pulled; `done` is
    called once the image is here. `join` waits and returns what the pull raised, if anything."""

    def __init__(self, job: JobContainers, image: str, log: Callable[[str], None],
                 done: Callable[[], None]) -> None:
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._pull, args=(job, image, log, done), daemon=True)
        self._thread.start()

    def _pull(self, job: JobContainers, image: str, log: Callable[[str], None], done: Callable[[], None]) -> None:
        try:
            ensure_image(job, image, log)
            done()
        except Exception as err:  # noqa: BLE001 - raised in the job's thread after join()
            self.error = err

    def join(self) -> Exception | None:
        self._thread.join()
        return self.error
