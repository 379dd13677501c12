"""Which container runtime runs a job's image, and the `<rt> run ...` words that do it (DESIGN 5)."""
from __future__ import annotations

import functools
import os
import shlex
import shutil
import subprocess
from pathlib import Path

from tibanna.exceptions import TibannaError

RUNTIMES = ("auto", "docker", "podman", "none")
ENV_VAR = "TIBANNA_CONTAINER_RUNTIME"
# `docker run` / `podman run` exit with 125 when the runtime itself fails (e.g. the image cannot be pulled).
RUNTIME_ERROR_CODE = 125


def requested_runtime(agent_choice: str | None, config: dict) -> str:
    """The runtime asked for: the agent's setting, else env TIBANNA_CONTAINER_RUNTIME, else the job's config."""
    choice = agent_choice or os.environ.get(ENV_VAR) or config.get("container_runtime") or "auto"
    if choice not in RUNTIMES:
        raise TibannaError(f"container runtime must be one of {', '.join(RUNTIMES)}, not {choice!r}")
    return choice


def resolve_runtime(choice: str) -> str | None:
    """The runtime to use for `choice` ('docker', 'podman'), or None for the host.

    'auto' means docker when its daemon answers; a forced runtime is not probed, so that a
    broken one fails the job with its own error instead of falling back to the host.
    """
    if choice == "auto":
        return "docker" if docker_answers() else None
    return None if choice == "none" else choice


@functools.cache
def docker_answers() -> bool:
    """Whether `docker info` succeeds; asked once per process (a backend may ask before it forks)."""
    if not shutil.which("docker") or not _docker_endpoint_configured():
        return False
    try:
        return subprocess.run(["docker", "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=5).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _docker_endpoint_configured() -> bool:
    """A cheap pre-check that spares the `docker info` call where no daemon can be configured."""
    config_dir = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    return bool(os.environ.get("DOCKER_HOST") or os.environ.get("DOCKER_CONTEXT")
                or Path("/var/run/docker.sock").exists() or (config_dir / "contexts").is_dir())


def container_name(jobid: str) -> str:
    """The container's name, so that a kill can stop it (it is not in the agent's process tree)."""
    return f"tibanna-{jobid}"


def run_words(runtime: str, *, jobid: str, data1: Path, workdir: str, env_names: list[str], image: str,
              read_only_mounts: list[Path]) -> str:
    """`<rt> run --rm -v <data1>:/data1:rw -w <workdir> -e VAR ... <image>` as bash words.

    The runner's command text follows. `read_only_mounts` are host folders that symlinks in the
    job folder point to (local `mount: true` inputs); they appear at the same paths.
    """
    words = [runtime, "run", "--rm", "--name", container_name(jobid), "-v", f"{data1}:/data1:rw", "-w", workdir]
    for folder in read_only_mounts:
        words += ["-v", f"{folder}:{folder}:ro"]
    for name in env_names:
        words += ["-e", name]
    words.append(image)
    return " ".join(shlex.quote(word) for word in words)


def stop_container(runtime: str, jobid: str) -> None:
    """Best-effort removal of the job's container when the job is terminated."""
    try:
        subprocess.run([runtime, "rm", "-f", container_name(jobid)], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)
    except (OSError, subprocess.SubprocessError):
        pass
