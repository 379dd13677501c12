"""An instance's boot (docs/design.md 3.6): its user data script and the pre-signed URLs it uses.

The script extracts the agent's bundle that deploy built (checked against its sha256), mounts the
data volume and starts the agent. Until the bundle is extracted it has no AWS client, so an early
failure is reported through pre-signed PUTs into the log bucket; `tibanna-boot` lines in its log
time each part of boot to command.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from tibanna import __version__, protocol
from tibanna.backends.aws import build
from tibanna.storage.s3 import Clients

DATA_DEVICE = "/dev/sdb"  # the data volume's mapping in the launch template
DATA_MOUNT = "/mnt/data1"
BOOT_URL_SECONDS = 6 * 3600  # how long the bootstrap's pre-signed URLs are valid (boot takes minutes)


@dataclass(frozen=True)
class Bootstrap:
    """Where the instance finds the agent's bundle, its checksum, and the architectures it serves."""

    bucket: str
    key: str
    sha256: str
    arches: tuple[str, ...]
    python: str  # the Python version its compiled files are for


@dataclass(frozen=True)
class BootUrls:
    """Pre-signed URLs for the bootstrap, which has no AWS client before the bundle is extracted:
    the bundle, and the log bucket's objects an early failure writes."""

    bundle: str
    started: str
    log: str
    error: str


def boot_urls(clients: Clients, bootstrap: Bootstrap, log_bucket: str, jobid: str) -> BootUrls:
    """Pre-signed GET of the bundle and PUTs of the log bucket's `.job_started`, `.log` and `.error`."""
    s3 = clients("s3")

    def signed(method: str, bucket_name: str, key: str) -> str:
        return s3.generate_presigned_url(method, Params={"Bucket": bucket_name, "Key": key},
                                         ExpiresIn=BOOT_URL_SECONDS)

    return BootUrls(bundle=signed("get_object", bootstrap.bucket, bootstrap.key),
                    **{field: signed("put_object", log_bucket, protocol.key(jobid, suffix))
                       for field, suffix in (("started", protocol.JOB_STARTED), ("log", protocol.LOG),
                                             ("error", protocol.ERROR))})


def user_data(jobid: str, log_bucket: str, region: str, shutdown_min: Any, bootstrap: Bootstrap, urls: BootUrls,
              spot: bool) -> str:
    """The instance's bootstrap script (bash, run as root by cloud-init).

    It needs only bash, curl, coreutils, util-linux and the Python version of the bundle (the
    image's, else its distribution's package). Until the agent's bundle is extracted it has no AWS client, so it reports an
    early failure through pre-signed URLs; afterwards everything goes through the agent's package.
    """
    q = shlex.quote
    return f"""#!/bin/bash
# Tibanna {__version__}: job {jobid}. Runs the agent of the bundle deploy built (sha256-checked).
set -u
export JOBID={q(jobid)} LOGBUCKET={q(log_bucket)} AWS_DEFAULT_REGION={q(region)}
SHUTDOWN_MIN={q(str(shutdown_min))} BUNDLE_SHA256={q(bootstrap.sha256)} PYTHON=python{q(bootstrap.python)}
BUNDLE_URL={q(urls.bundle)}
STARTED_URL={q(urls.started)}
LOG_URL={q(urls.log)}
ERROR_URL={q(urls.error)}
OPT=/opt/tibanna DATA={DATA_MOUNT} LOG=/var/log/tibanna-bootstrap.log
mkdir -p "$OPT"
exec >>"$LOG" 2>&1
# Boot timestamps (epoch seconds) for the boot-to-command figure.
stamp() {{ echo "tibanna-boot $1 $(date +%s.%N)"; }}
stamp boot
finish() {{ shutdown -h "$([ "$SHUTDOWN_MIN" = now ] && echo now || echo "+$SHUTDOWN_MIN")"; }}
put() {{ curl -sfS --retry 3 -X PUT --upload-file "$2" "$1"; }}
fail() {{  # before the agent could end the job itself: the bootstrap log becomes the job's log
  echo "bootstrap failed: $*"
  put "$STARTED_URL" /dev/null; put "$LOG_URL" "$LOG"; put "$ERROR_URL" /dev/null
  finish; exit 1
}}
# The bundle's Python version (its compiled files are built for it): the image's, else its distribution's.
if ! command -v "$PYTHON" >/dev/null; then  # e.g. Amazon Linux 2023: Python 3.9, 3.11 and 3.12 in its repository
  dnf install -y -q "$PYTHON" || (apt-get update -q && apt-get install -y -q "$PYTHON")
fi
PY=$PYTHON
command -v "$PY" >/dev/null || fail "no $PYTHON on this image or in its distribution"
stamp python
curl -sfS --retry 5 -o "$OPT/agent.zip" "$BUNDLE_URL" || fail "cannot download the agent's bundle"
echo "$BUNDLE_SHA256  $OPT/agent.zip" | sha256sum -c - || fail "the agent's bundle does not match its checksum"
"$PY" - "$OPT/agent.zip" "$OPT" "$(uname -m)" <<'EXTRACT' || fail "cannot extract the agent's bundle"
import json, sys, zipfile
from pathlib import Path
bundle, opt, arch = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
with zipfile.ZipFile(bundle) as archive:
    for name in archive.namelist():
        tree, _, path = name.partition("/")
        if tree in ("{build.PURE}", arch) and path and not name.endswith("/"):
            (opt / "site" / path).parent.mkdir(parents=True, exist_ok=True)
            (opt / "site" / path).write_bytes(archive.read(name))
    scripts = json.loads(archive.read("{build.MANIFEST}"))["scripts"]
(opt / "bin").mkdir(exist_ok=True)
for name, target in scripts.items():
    module, _, function = target.partition(":")
    script = opt / "bin" / name
    script.write_text(f"#!{{sys.executable}}\\nimport sys\\nfrom {{module}} import {{function.split('.')[0]}}\\n"
                      f"sys.exit({{function}}())\\n")
    script.chmod(0o755)
EXTRACT
export PYTHONPATH="$OPT/site" PATH="$OPT/bin:$PATH"
stamp agent_installed
# The data volume: the disk whose NVMe serial is its EBS volume id (Xen names it after the mapping).
volume=$("$PY" -m tibanna.agent.instance volume {DATA_DEVICE}) || volume=""
disk=""
[ -n "$volume" ] && disk=$(lsblk -dno NAME,SERIAL | awk -v serial="${{volume//-/}}" '$2 == serial {{print $1; exit}}')
if [ -z "$disk" ]; then
  for name in xvdb sdb; do [ -b "/dev/$name" ] && disk=$name && break; done
fi
[ -n "$disk" ] || fail "no disk is the data volume ${{volume:-at {DATA_DEVICE}}}"
mkfs -t ext4 -q "/dev/$disk" && mkdir -p "$DATA" && mount "/dev/$disk" "$DATA" || fail "cannot mount $volume"
# /data1 is the job folder itself, so upstream's /data1 paths work as they are.
mkdir -p "$DATA/data1" /data1 && mount --bind "$DATA/data1" /data1 || fail "cannot bind the job folder at /data1"
stamp volume
{_spot_watcher() if spot else ""}"$PY" -m tibanna.agent --jobid "$JOBID" --log-bucket "$LOGBUCKET" --workdir "$DATA" --store s3 \\
  --metrics-interval 60 --log-upload-interval 60 --cloudwatch --container-runtime docker
status=$?
if [ $status -ne 0 ]; then
  "$PY" -m tibanna.agent.instance crashed --jobid "$JOBID" --log-bucket "$LOGBUCKET" --workdir "$DATA" \\
    --status $status --bootstrap-log "$LOG" || fail "the agent exited with status $status"
fi
stamp done
finish
"""


def _spot_watcher() -> str:
    """In the background: on a spot interruption notice, `<jobid>.spot_failure` once."""
    return '"$PY" -m tibanna.agent.instance watch-spot --jobid "$JOBID" --log-bucket "$LOGBUCKET" &\n'
