"""What an EC2 instance's bootstrap asks of the agent's package, outside the job itself.

    python -m tibanna.agent.instance volume DEVICE
        prints the id of the EBS volume attached at DEVICE (e.g. /dev/sdb) of this instance, which
        the bootstrap matches against the disks' NVMe serials to find the data volume;
    python -m tibanna.agent.instance watch-spot --jobid J --log-bucket B
        (spot instances, in the background) on an interruption notice, writes `<jobid>.spot_failure`
        once, so check_task reruns the job instead of waiting for it;
    python -m tibanna.agent.instance crashed --jobid J --log-bucket B --workdir W --status N --bootstrap-log L
        after the agent exited with status N without ending the job: the job's log with the
        bootstrap log's tail (the traceback) appended becomes `<jobid>.log`, `.error` is written
        and a waiting execution is told, so the user sees why instead of "terminated unintendedly".

Instance metadata is read with IMDSv2 at AWS_EC2_METADATA_SERVICE_ENDPOINT (tibanna/settings.py);
credentials come from the instance profile.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

from tibanna import protocol
from tibanna.agent.imds import metadata
from tibanna.agent.callback import Callback
from tibanna.storage import ObjectStore

log = logging.getLogger(__name__)

_MAPPING_WAIT_SECONDS = 30.0  # DescribeInstances may not show a just-launched instance's volumes yet
SPOT_POLL_SECONDS = 30.0  # EC2 gives two minutes' notice
CRASH_LOG_LINES = 200  # of the bootstrap log appended to the job's log


def volume_id(device: str, ec2: Any, wait: float = _MAPPING_WAIT_SECONDS) -> str:
    """The EBS volume attached at `device` of this instance, as DescribeInstances tells it."""
    instance_id = metadata("instance-id")
    deadline = time.monotonic() + wait
    while True:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        for mapping in reservations[0]["Instances"][0].get("BlockDeviceMappings", []) if reservations else []:
            if mapping.get("DeviceName") == device and mapping.get("Ebs", {}).get("VolumeId"):
                return mapping["Ebs"]["VolumeId"]
        if time.monotonic() > deadline:
            raise LookupError(f"instance {instance_id} has no EBS volume at {device}")
        time.sleep(2)


def watch_spot(store: ObjectStore, jobid: str, log_bucket: str, interval: float = SPOT_POLL_SECONDS) -> None:
    """Poll for a spot interruption notice (404 until there is one); on one, mark the job and return."""
    while True:
        time.sleep(interval)
        try:
            metadata("spot/instance-action")
        except OSError:  # HTTPError 404 included: no notice yet
            continue
        log.info("job %s: spot interruption notice", jobid)
        store.put_bytes(log_bucket, protocol.key(jobid, protocol.SPOT_FAILURE), b"")
        return


def report_crash(store: ObjectStore, jobid: str, log_bucket: str, workdir: Path, status: int,
                 bootstrap_log: Path) -> bool:
    """End a job whose agent died: `.log` with the traceback, `.error`, the execution told.
    False (nothing written) when the agent had ended the job itself."""
    if any(store.exists(log_bucket, protocol.key(jobid, marker)) for marker in (protocol.SUCCESS, protocol.ERROR)):
        return False
    job_log = workdir / "agent" / f"{jobid}{protocol.LOG}"
    text = job_log.read_text(errors="replace") if job_log.is_file() else ""
    tail = bootstrap_log.read_text(errors="replace").splitlines()[-CRASH_LOG_LINES:] if bootstrap_log.is_file() else []
    text += f"\nTibanna agent crashed (exit status {status}); the end of the instance's bootstrap log:\n"
    text += "\n".join(tail) + "\n"
    store.put_text(log_bucket, protocol.key(jobid, protocol.LOG), text)
    started = protocol.key(jobid, protocol.JOB_STARTED)
    if not store.exists(log_bucket, started):  # it crashed before it began: check_task must not wait for a boot
        store.put_bytes(log_bucket, started, b"")
    store.put_bytes(log_bucket, protocol.key(jobid, protocol.ERROR), b"")
    Callback(store, jobid, log_bucket).finish({}, failed=True, log_text=text)
    log.info("job %s: the agent crashed (exit status %s); .error written", jobid, status)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tibanna.agent.instance")
    verbs = parser.add_subparsers(dest="verb", required=True)
    volume = verbs.add_parser("volume", help="the EBS volume id attached at a device of this instance")
    volume.add_argument("device")
    spot = verbs.add_parser("watch-spot", help="mark the job when a spot interruption is announced")
    spot.add_argument("--jobid", required=True)
    spot.add_argument("--log-bucket", required=True)
    crashed = verbs.add_parser("crashed", help="end a job whose agent died")
    crashed.add_argument("--jobid", required=True)
    crashed.add_argument("--log-bucket", required=True)
    crashed.add_argument("--workdir", required=True, type=Path)
    crashed.add_argument("--status", required=True, type=int)
    crashed.add_argument("--bootstrap-log", required=True, type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from tibanna.storage.s3 import Clients, S3Store  # boto3 is needed only on AWS

    clients = Clients(None)
    if args.verb == "volume":
        print(volume_id(args.device, clients("ec2")))
        return 0
    if args.verb == "watch-spot":
        watch_spot(S3Store(clients), args.jobid, args.log_bucket)
        return 0
    report_crash(S3Store(clients), args.jobid, args.log_bucket, args.workdir, args.status, args.bootstrap_log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
