"""Secret values in a job's `input_env`: the job gets them, nothing stored or returned holds them.

A variable whose name contains SECRET, PASSWORD, TOKEN or ACCESS_KEY (any case) is a secret.
At submission its value is taken out of the description (which then says `****`) and handed to
the backend beside it: the local backend keeps it in a `Vault` outside TIBANNA_HOME, readable
only by its owner, until the job ends; the agent puts the real value in the command's
environment only.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

from tibanna import settings

log = logging.getLogger(__name__)

MASK = "****"
SECRET_WORDS = ("SECRET", "PASSWORD", "TOKEN", "ACCESS_KEY")


def is_secret_name(name: str) -> bool:
    """Whether an environment variable of this name holds a secret."""
    upper = name.upper()
    return any(word in upper for word in SECRET_WORDS)


def withhold(job: dict) -> tuple[dict, dict[str, str]]:
    """The job with its secret input_env values written `****`, and those values as exported text."""
    env = job.get("args", {}).get("input_env") or {}
    names = [name for name in env if is_secret_name(name) and env[name] != MASK]
    if not names:
        return job, {}
    masked = copy.deepcopy(job)
    values = {name: _exported(env[name]) for name in names}
    masked["args"]["input_env"].update({name: MASK for name in names})
    return masked, values


def withheld_names(env: dict) -> list[str]:
    """The input_env names whose value was withheld (the description says `****`)."""
    return [name for name, value in env.items() if value == MASK and is_secret_name(name)]


def _exported(value: object) -> str:
    """The text a variable gets when exported (booleans as JSON spells them, like the env file does)."""
    return json.dumps(value) if isinstance(value, bool) else str(value)


class Vault:
    """Secret values of queued and running local jobs, one 0600 file per job, outside TIBANNA_HOME.

    The folder is `$TIBANNA_SECRETS_DIR`, else a per-user folder in /dev/shm (memory, gone at reboot)
    or the temp dir, with one sub-folder per home; a value never lands on a disk under TIBANNA_HOME.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def for_home(cls, home: Path) -> "Vault":
        base = settings.TIBANNA_SECRETS_DIR.get()
        if not base:
            shm = Path("/dev/shm")
            base = str((shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir()))
                       / f"tibanna-secrets-{os.getuid()}")
        digest = hashlib.sha256(str(Path(home).resolve()).encode()).hexdigest()[:16]
        return cls(Path(base) / digest)

    def _path(self, jobid: str) -> Path:
        return self.folder / f"{jobid}.json"

    def put(self, jobid: str, values: dict[str, str]) -> None:
        """Keep a job's secret values (written aside, then renamed, so a reader never sees half)."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.folder.parent, 0o700)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".put-")
        with os.fdopen(fd, "w") as handle:  # mkstemp makes it 0600
            json.dump(values, handle)
        os.replace(tmp, self._path(jobid))

    def read(self, jobid: str) -> dict[str, str]:
        """A job's secret values; {} when it has none (or they were lost, e.g. by a reboot)."""
        try:
            return json.loads(self._path(jobid).read_text())
        except FileNotFoundError:
            return {}

    def discard(self, jobid: str) -> None:
        """Forget a job's secret values once it has ended."""
        try:
            self._path(jobid).unlink()
        except FileNotFoundError:
            pass
