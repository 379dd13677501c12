"""A private docker daemon for tests and benchmarks, and a tiny image built without any registry.

`DockerDaemon.start()` runs `dockerd` as root with everything it owns (data root, exec root,
pidfile, socket) in one temporary folder and with no bridge, no iptables and no IP forwarding,
so it touches neither the host's default daemon (/var/run/docker.sock) nor its networking.
`build_busybox_image` makes `local/busybox:1` from the host's static /bin/busybox with
`docker import` (no image can be pulled here). `stop()` removes every container, SIGTERMs the
daemon, unmounts what it left mounted and removes the folder.

Used by the `docker_daemon` fixture in tests/conftest.py and by bench/containers.py.
"""
from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

DOCKERD = "dockerd"
BUSYBOX = Path("/bin/busybox")
IMAGE = "local/busybox:1"
START_TIMEOUT = 30.0  # seconds for `docker version` to answer
STOP_TIMEOUT = 15.0  # seconds between SIGTERM and SIGKILL
_BASH = "#!/bin/sh\nexec /bin/sh \"$@\"\n"  # miniwdl runs /bin/bash; busybox has none


class DockerUnavailable(Exception):
    """The daemon cannot be started here (not root, not installed, failed to start)."""


def unavailable_reason() -> str | None:
    """Why a private daemon cannot run on this machine, or None when it can be tried."""
    if os.geteuid() != 0:
        return "a private dockerd needs root"
    for exe in (DOCKERD, "docker"):
        if shutil.which(exe, path=_sbin_path()) is None:
            return f"{exe} is not installed (apt-get install --no-install-recommends docker.io)"
    if not BUSYBOX.is_file() or not _is_static(BUSYBOX):
        return f"{BUSYBOX} is missing or not statically linked (apt-get install busybox-static)"
    return None


def _sbin_path() -> str:
    return os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin", "/sbin"])


def _is_static(path: Path) -> bool:
    """Whether an ELF executable has no program interpreter (PT_INTERP), i.e. runs in an empty image."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit ELF only
            return False
        endian = "<" if head[5] == 1 else ">"
        phoff, = struct.unpack_from(endian + "Q", head, 32)
        phentsize, phnum = struct.unpack_from(endian + "HH", head, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(struct.unpack_from(endian + "I", table, i * phentsize)[0] != 3 for i in range(phnum))


class DockerDaemon:
    """One private dockerd: `host` is its DOCKER_HOST, `env` the environment for its clients."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="tibanna-dockerd-"))  # short: socket paths are limited
        self.socket = self.root / "docker.sock"
        self.host = f"unix://{self.socket}"
        self.image = IMAGE
        self.process: subprocess.Popen | None = None
        self._log = self.root / "dockerd.log"

    @property
    def env(self) -> dict[str, str]:
        """os.environ with DOCKER_HOST pointing at this daemon (and no context overriding it)."""
        env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_CONTEXT",)}
        env["DOCKER_HOST"] = self.host
        return env

    def start(self) -> DockerDaemon:
        """Start dockerd and wait until it answers; DockerUnavailable (daemon cleaned up) if it does not."""
        reason = unavailable_reason()
        if reason:
            self._remove_root()
            raise DockerUnavailable(reason)
        words = [shutil.which(DOCKERD, path=_sbin_path()),
                 "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
                 "--pidfile", str(self.root / "dockerd.pid"), "-H", self.host,
                 "--storage-driver", "overlay2", "--exec-opt", "native.cgroupdriver=cgroupfs",
                 "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
                 "--bridge=none"]
        with open(self._log, "wb") as log:
            self.process = subprocess.Popen(words, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self.socket.exists() and self.docker("version", check=False).returncode == 0:
                return self
            time.sleep(0.1)
        tail = self._log.read_text(errors="replace").strip().splitlines()[-5:]
        self.stop()
        raise DockerUnavailable("dockerd did not start: " + (" | ".join(tail) or "no output"))

    def docker(self, *args: str, check: bool = True, input: bytes | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess:
        """Run `docker <args>` against this daemon; output captured as text (stdin bytes if given)."""
        result = subprocess.run(["docker", *args], env=self.env, input=input, capture_output=True,
                                timeout=timeout)
        out = subprocess.CompletedProcess(result.args, result.returncode,
                                          result.stdout.decode(errors="replace"),
                                          result.stderr.decode(errors="replace"))
        if check and out.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} failed ({out.returncode}): {out.stderr.strip()}")
        return out

    def build_busybox_image(self, name: str = IMAGE) -> str:
        """Import `name` from the host's static busybox: one symlink per applet, /bin/bash, /etc/passwd, /tmp."""
        rootfs = self.root / "rootfs"
        (rootfs / "bin").mkdir(parents=True, exist_ok=True)
        shutil.copy2(BUSYBOX, rootfs / "bin/busybox")
        applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout.split()
        for applet in applets:
            if applet not in ("busybox", "bash"):
                link = rootfs / "bin" / applet
                if not link.is_symlink():
                    link.symlink_to("busybox")
        (rootfs / "bin/bash").write_text(_BASH)
        (rootfs / "bin/bash").chmod(0o755)
        (rootfs / "usr").mkdir(exist_ok=True)
        if not (rootfs / "usr/bin").is_symlink():
            (rootfs / "usr/bin").symlink_to("../bin")
        (rootfs / "etc").mkdir(exist_ok=True)
        (rootfs / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")
        (rootfs / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
        for folder, mode in (("tmp", 0o1777), ("root", 0o700)):
            (rootfs / folder).mkdir(exist_ok=True)
            (rootfs / folder).chmod(mode)
        archive = self.root / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(rootfs, arcname=".")
        self.docker("import", "-c", "ENV PATH=/bin", str(archive), name)
        archive.unlink()
        return name

    def tag(self, name: str, source: str = IMAGE) -> str:
        """Give an image another name (e.g. the one a job description uses)."""
        self.docker("tag", source, name)
        return name

    def containers(self) -> list[str]:
        """Names of all containers, running or not (`docker ps -a`)."""
        out = self.docker("ps", "-a", "--format", "{{.Names}}").stdout
        return [line for line in out.splitlines() if line]

    def stop(self, *, keep: bool = False) -> None:
        """Remove all containers, SIGTERM dockerd (SIGKILL after STOP_TIMEOUT), unmount leftovers and
        remove the folder (`keep`: keep it, images and all, for another `start`)."""
        if self.process is not None and self.process.poll() is None:
            ids = self.docker("ps", "-aq", check=False, timeout=30).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, check=False, timeout=60)
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._end_containerd()
        self._unmount_all()
        if not keep:
            self._remove_root()

    def _end_containerd(self) -> None:
        """The containerd this dockerd started, if it outlived a killed daemon."""
        pid_file = self.root / "exec/containerd/containerd.pid"
        try:
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        except (OSError, ValueError):
            pass

    def _unmount_all(self) -> None:
        """Lazily unmount anything still mounted under the folder (exec/netns/default, overlays), deepest first."""
        prefix = str(self.root) + "/"
        try:
            mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
        except OSError:
            return
        for point in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True)

    def _remove_root(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DockerDaemon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
