"""The job folder: `<workdir>/data1` plays upstream's `/data1`, and how the job gets to see it there.

The agent itself always works on the real folder (`host_path`); only what the job sees (its
command, environment and inputs file) goes through `view`, which rewrites `/data1` when the
folder can be neither bind-mounted nor mounted into a container.
"""
from __future__ import annotations

import functools
import os
import posixpath
import re
import shlex
import subprocess
from pathlib import Path, PurePosixPath

from tibanna.exceptions import TibannaError

DATA1 = "/data1"
# '/data1' as a path of its own: not '/mnt/data1' nor '/data10'.
_DATA1_RE = re.compile(r"(?<![\w.-])/data1(?![\w.-])")

# A folder that can replace '/data1' inside a shell command without quoting.
_PLAIN_PATH_RE = re.compile(r"[A-Za-z0-9_./+@:,%=-]+")

_MAX_SYMLINK_HOPS = 40  # as the kernel's ELOOP limit

NATIVE, BIND, REWRITE, CONTAINER = "native", "bind", "rewrite", "container"


class JobFolder:
    """`<workdir>/data1` with upstream's subfolders, and the mapping of '/data1/...' paths onto it."""

    def __init__(self, workdir: Path, family: str) -> None:
        self.workdir = Path(workdir).absolute()
        self.data1 = self.workdir / "data1"
        self.family = family
        self.mode = NATIVE

    def create(self) -> None:
        """Make data1/{input,out,tmp,<family>}."""
        for sub in ("input", "out", "tmp", self.family):
            (self.data1 / sub).mkdir(parents=True, exist_ok=True)

    @property
    def job_cwd(self) -> str:
        """The job's working directory as it sees it."""
        return f"{DATA1}/{self.family}"

    def host_path(self, job_path: str) -> Path:
        """The real file behind a '/data1/...' path; refuses paths outside the job folder."""
        normal = posixpath.normpath(job_path)
        if normal != DATA1 and not normal.startswith(DATA1 + "/"):
            raise TibannaError(f"{job_path} is not under {DATA1}")
        return self.data1 / normal[len(DATA1):].lstrip("/")

    def real_path(self, job_path: str) -> Path:
        """The real file behind a '/data1/...' path with every symlink followed as the job sees it
        (a link to '/data1/x' means the job folder's x); refused if it lands outside the job folder,
        so an output can never publish a file the job was not meant to reach."""
        root = self.data1.resolve()
        pending = list(PurePosixPath(posixpath.normpath(job_path)).parts[1:])
        if pending[:1] != [DATA1.lstrip("/")]:
            raise TibannaError(f"{job_path} is not under {DATA1}")
        pending.pop(0)
        current, hops = root, 0
        while pending:
            part = pending.pop(0)
            if part == "..":
                current = current.parent
                continue
            candidate = current / part
            if not candidate.is_symlink():
                current = candidate
                continue
            hops += 1
            if hops > _MAX_SYMLINK_HOPS:
                raise TibannaError(f"{job_path}: too many levels of symbolic links")
            target = posixpath.normpath(os.readlink(candidate))
            if target == DATA1 or target.startswith(DATA1 + "/"):
                current, target = root, target[len(DATA1):].lstrip("/") or "."
            elif target.startswith("/"):
                current = Path("/")
            pending = [p for p in PurePosixPath(target).parts if p not in ("/", ".")] + pending
        if current != root and root not in current.parents:
            raise TibannaError(f"{job_path} is a link to {current}, outside the job folder ({DATA1}): "
                               "it is not uploaded")
        return current

    def view(self, text: str) -> str:
        """`text` as the job must see it: '/data1' replaced by the real folder in rewrite mode."""
        return _DATA1_RE.sub(str(self.data1), text) if self.mode == REWRITE else text

    def choose_mode(self, requested: str, in_container: bool) -> str:
        """Set and return how the job sees /data1: container, native, bind or rewrite.

        'bind' needs an empty /data1 directory and a working `unshare`; asked for explicitly
        where that is impossible, it is an error rather than a silent rewrite.
        """
        if in_container:
            self.mode = CONTAINER
        elif _same_dir(self.data1, Path(DATA1)):
            self.mode = NATIVE
        elif requested != REWRITE and bind_possible():
            self.mode = BIND
        elif requested == BIND:
            raise TibannaError(f"data1_mode 'bind' is not possible here: {DATA1} must be an empty directory "
                               "and `unshare --mount` must work (root)")
        elif not _PLAIN_PATH_RE.fullmatch(str(self.data1)):
            raise TibannaError(f"'/data1' cannot be rewritten to {self.data1}: the job folder's path must not "
                               "contain spaces or shell-special characters")
        else:
            self.mode = REWRITE
        return self.mode

    def bind_prefix(self) -> list[str]:
        """The argv prefix that runs a command in its own mount namespace (bind mode), else []."""
        return ["unshare", "--mount", "--propagation", "private"] if self.mode == BIND else []

    def bind_command(self) -> str:
        """The first line of the job script in bind mode: put the folder at /data1, privately."""
        return f"mount --bind {shlex.quote(str(self.data1))} {DATA1} || exit 97" if self.mode == BIND else ""


def _same_dir(a: Path, b: Path) -> bool:
    """Whether two paths are one directory: by a link, or by a bind mount (the EC2 bootstrap's /data1)."""
    try:
        return b.is_dir() and os.path.samefile(a, b)
    except OSError:
        return False


@functools.cache
def bind_possible() -> bool:
    """Whether an empty /data1 exists and a private mount namespace can bind onto it (checked once)."""
    try:
        if not Path(DATA1).is_dir() or any(os.scandir(DATA1)):
            return False
        probe = ["unshare", "--mount", "--propagation", "private", "mount", "--bind", DATA1, DATA1]
        return subprocess.run(probe, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=5).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False
