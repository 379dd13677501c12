"""A loopback EC2 instance: the user data `run_task_awsem` launched, run as a script on this machine.

What an instance has, stood in for on loopback:
- instance metadata (IMDSv2 only: a token first) at AWS_EC2_METADATA_SERVICE_ENDPOINT, with the
  instance profile's credentials: the script gets no static keys;
- S3, EC2, CloudWatch: the moto server (AWS_ENDPOINT_URL);
- its file system: a private mount namespace and root (the host's folders bound into a tmpfs),
  with empty /opt, /mnt and /var/log, so the script's /opt/tibanna, /mnt/data1, /data1 and
  bootstrap log never reach the host;
- its disk and power: `lsblk` reports the data volume's NVMe serial (its EBS id), `mkfs` does
  nothing, `mount /dev/<disk>` binds a folder, `shutdown` records its arguments;
- its docker: a private daemon started in the same namespace (late, when the test says), with the job's
  image built from busybox.

The inside part (`python loopback.py <spec.json>`) runs under `unshare --mount`; `Instance.boot`
starts it from the test and returns when the script has exited, as shutdown would.
"""
from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tibanna.backends.aws.userdata import DATA_DEVICE  # the launch template's data volume

TOKEN = "loopback-imds-token"
ROLE = "loopback-instance-role"
NAMESPACED = ("/opt", "/mnt")  # top-level folders the instance has its own (empty) copy of
BOOTSTRAP_LOG = "/var/log/tibanna-bootstrap.log"
TESTS = Path(__file__).resolve().parents[2]
STAMP_RE = re.compile(r"tibanna-boot (\w+) ([0-9.]+)")
# The parts of boot to command, by the stamps that bound them (staging and the image pull overlap).
BOOT_PARTS = {"packages (a Python)": ("boot", "python"), "agent install (bundle)": ("python", "agent_installed"),
              "data volume": ("agent_installed", "volume"), "agent start": ("volume", "agent"),
              "staging": ("agent", "staged"), "image pull": ("agent", "image"),
              "command start": ("staged", "command")}
DOCKER_RELEASE = "start-docker"  # the file that lets a late daemon start


class FakeIMDS:
    """IMDSv2 on 127.0.0.1: `PUT /latest/api/token`, then metadata with the token header only."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.requests: list[tuple[str, str, bool]] = []  # (method, path, had the token)
        imds = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:  # noqa: N802 - http.server's name
                ok = self.path == "/latest/api/token" and "X-aws-ec2-metadata-token-ttl-seconds" in self.headers
                imds.requests.append(("PUT", self.path, ok))
                self._answer(200 if ok else 400, TOKEN if ok else "")

            def do_GET(self) -> None:  # noqa: N802
                authorised = self.headers.get("X-aws-ec2-metadata-token") == TOKEN
                imds.requests.append(("GET", self.path, authorised))
                if not authorised:
                    return self._answer(401, "")
                value = imds.values.get(self.path.removeprefix("/latest/meta-data/"))
                self._answer(404 if value is None else 200, value or "")

            def _answer(self, status: int, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def be_instance(self, instance_id: str) -> None:
        """Answer as this instance, with its instance profile's (temporary) credentials."""
        credentials = {"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": "ASIALOOPBACKINSTANCE",
                       "SecretAccessKey": "loopback-secret", "Token": "loopback-session-token",
                       "Expiration": "2099-01-01T00:00:00Z", "LastUpdated": "2026-01-01T00:00:00Z"}
        self.values.update({"instance-id": instance_id, "iam/security-credentials/": ROLE,
                            f"iam/security-credentials/{ROLE}": json.dumps(credentials),
                            "placement/region": "us-east-1"})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Instance:
    """One launched instance's user data, booted on loopback."""

    ec2: object  # a boto3 EC2 client of the moto server
    instance_id: str
    moto_endpoint: str
    imds: FakeIMDS
    workdir: Path
    image: str = "ubuntu:20.04"  # the job's container_image, built from busybox
    docker_late: bool = False  # the instance's docker daemon starts only on `start_docker()`
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    def user_data(self) -> str:
        answer = self.ec2.describe_instance_attribute(InstanceId=self.instance_id, Attribute="userData")
        return base64.b64decode(answer["UserData"]["Value"]).decode()

    def data_volume(self) -> str:
        """The EBS id of the data volume at /dev/sdb. moto gives a fleet's instance only a root volume
        (it ignores the launch template's mappings), so the volume AWS would create is made here."""
        instance = self.ec2.describe_instances(InstanceIds=[self.instance_id])["Reservations"][0]["Instances"][0]
        for mapping in instance["BlockDeviceMappings"]:
            if mapping["DeviceName"] == DATA_DEVICE:
                return mapping["Ebs"]["VolumeId"]
        volume = self.ec2.create_volume(Size=10, AvailabilityZone=instance["Placement"]["AvailabilityZone"])
        self.ec2.attach_volume(Device=DATA_DEVICE, InstanceId=self.instance_id, VolumeId=volume["VolumeId"])
        return volume["VolumeId"]

    def start(self) -> Instance:
        """Boot: the user data starts running (in the background)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.imds.be_instance(self.instance_id)
        (self.workdir / "user-data.sh").write_text(self.user_data())
        spec = {"workdir": str(self.workdir), "volume": self.data_volume(), "image": self.image,
                "docker_late": self.docker_late, "python": str(Path(sys.base_prefix) / "bin" / "python3.11"),
                "env": {"AWS_ENDPOINT_URL": self.moto_endpoint,
                        "AWS_EC2_METADATA_SERVICE_ENDPOINT": self.imds.endpoint, **self.env}}
        (self.workdir / "spec.json").write_text(json.dumps(spec))
        self.process = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", sys.executable, __file__, str(self.workdir / "spec.json")],
            stdout=open(self.workdir / "harness.log", "wb"), stderr=subprocess.STDOUT,
            env={"PATH": os.environ["PATH"], "PYTHONPATH": str(TESTS)})
        return self

    def start_docker(self) -> None:
        """Let a late docker daemon come up now."""
        (self.workdir / DOCKER_RELEASE).touch()

    def wait(self, timeout: float = 240.0) -> int:
        """The script's exit status once it ended; the instance is then terminated, as shutdown does."""
        assert self.process is not None
        try:
            self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        self.ec2.terminate_instances(InstanceIds=[self.instance_id])
        return json.loads((self.workdir / "result.json").read_text())["status"]

    def boot(self, timeout: float = 240.0) -> int:
        return self.start().wait(timeout)

    @property
    def bootstrap_log(self) -> str:
        path = self.workdir / "bootstrap.log"
        return path.read_text() if path.exists() else ""

    @property
    def shutdown_calls(self) -> list[str]:
        path = self.workdir / "shutdown.calls"
        return path.read_text().splitlines() if path.exists() else []

    def stamps(self) -> dict[str, float]:
        """The `tibanna-boot <part> <epoch>` stamps of the user data and the agent, by part."""
        return {part: float(stamp) for part, stamp in STAMP_RE.findall(self.bootstrap_log)}

    def boot_to_command(self) -> dict[str, float]:
        """Seconds from the first user-data line to the job's command, and its parts."""
        stamps = self.stamps()
        parts = {label: stamps[end] - stamps[start] for label, (start, end) in BOOT_PARTS.items()}
        return {"boot to command": stamps["command"] - stamps["boot"], **parts}


# -- inside the instance's mount namespace ---------------------------------------------------------

def _stand_ins(folder: Path, workdir: Path, volume: str, python: str) -> None:
    """`lsblk`, `mkfs`, `mount` and `shutdown` as the instance's would behave, and its Python."""
    folder.mkdir(parents=True, exist_ok=True)
    disk_folder = workdir / "volume"
    disk_folder.mkdir(exist_ok=True)
    scripts = {
        "lsblk": f"#!/bin/sh\necho 'nvme0n1 vol0root'\necho 'nvme1n1 {volume.replace('-', '')}'\n",
        "mkfs": f"#!/bin/sh\necho \"$@\" >> {workdir}/mkfs.calls\n",
        "mount": (f"#!/bin/sh\nif [ \"$1\" = /dev/nvme1n1 ]; then exec /usr/bin/mount --bind {disk_folder} \"$2\"; fi\n"
                  "exec /usr/bin/mount \"$@\"\n"),
        "shutdown": f"#!/bin/sh\necho \"$@\" >> {workdir}/shutdown.calls\n",
    }
    for name, text in scripts.items():
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
    (folder / "python3.11").symlink_to(python)


def _enter_private_root(root: Path) -> None:
    """chroot into a tmpfs that holds the host's top-level folders by bind mount, except those the
    instance owns (/opt, /mnt, /var/log: empty) and room for its own (/data1): nothing the script
    writes there reaches the host's root, where local jobs would see a /data1."""
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(root)], check=True)
    for entry in sorted(Path("/").iterdir()):
        target = root / entry.name
        if entry.is_symlink():
            target.symlink_to(os.readlink(entry))
        elif entry.is_dir() and entry.name != "data1":
            target.mkdir()
            if str(entry) not in NAMESPACED:
                subprocess.run(["mount", "--rbind", str(entry), str(target)], check=True)
    (root / "var" / "log").mkdir(exist_ok=True)  # /var is the host's: its log folder is hidden by a tmpfs
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(root / "var" / "log")], check=True)
    os.chroot(root)
    os.chdir("/")


def _inside(spec_path: Path) -> None:
    from dockerd import DockerDaemon

    spec = json.loads(spec_path.read_text())
    workdir = Path(spec["workdir"])
    _enter_private_root(workdir / "root")
    stand_ins = workdir / "bin"
    _stand_ins(stand_ins, workdir, spec["volume"], spec["python"])
    daemon = DockerDaemon()

    public_socket = workdir / "docker.sock"  # what the instance's clients use: there once the image is

    def start_docker() -> None:
        while spec["docker_late"] and not (workdir / DOCKER_RELEASE).exists():
            time.sleep(0.1)
        daemon.start()
        daemon.build_busybox_image()
        daemon.tag(spec["image"])  # as if pulled: no registry can be reached here
        public_socket.symlink_to(daemon.socket)

    docker = threading.Thread(target=start_docker)
    if spec["docker_late"]:
        docker.start()
    else:
        start_docker()
    env = {"PATH": f"{stand_ins}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "HOME": str(workdir), "LANG": "C.UTF-8", "DOCKER_HOST": f"unix://{public_socket}", **spec["env"]}
    try:
        status = subprocess.run(["bash", str(workdir / "user-data.sh")], env=env, cwd="/", timeout=600).returncode
    finally:
        if docker.is_alive():
            docker.join()
        daemon.stop()
        if Path(BOOTSTRAP_LOG).exists():
            (workdir / "bootstrap.log").write_text(Path(BOOTSTRAP_LOG).read_text())
    (workdir / "result.json").write_text(json.dumps({"status": status}))


if __name__ == "__main__":
    _inside(Path(sys.argv[1]))
