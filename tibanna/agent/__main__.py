"""`python -m tibanna.agent --jobid J --log-bucket LB --workdir W --store local:<buckets-root>|s3[:<region>]`."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Callable

from tibanna import protocol
from tibanna.agent import AgentDefaults, run_job
from tibanna.agent.container import RUNTIMES
from tibanna.agent.settings import DATA1_MODES
from tibanna.storage import LocalStore, ObjectStore


def _s3_store(region: str) -> ObjectStore:
    from tibanna.storage.s3 import Clients, S3Store  # boto3 is needed only on AWS

    return S3Store(Clients(region or None))


# Store kinds by the scheme of --store: `local:<root>` holds one folder per bucket; `s3[:<region>]` is S3.
STORES: dict[str, Callable[[str], ObjectStore]] = {"local": LocalStore, "s3": _s3_store}


def parse_store(spec: str) -> ObjectStore:
    """An object store from `<scheme>:<location>`, e.g. `local:/home/me/.tibanna/buckets`."""
    scheme, sep, location = spec.partition(":")
    if scheme not in STORES or not (sep or scheme == "s3"):
        raise argparse.ArgumentTypeError(f"--store must be one of {', '.join(s + ':...' for s in STORES)}; "
                                         f"got {spec!r}")
    return STORES[scheme](location)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tibanna.agent", description="Run one Tibanna job here.")
    parser.add_argument("--jobid", required=True)
    parser.add_argument("--log-bucket", required=True)
    parser.add_argument("--workdir", required=True, type=Path, help="the job folder (data1/ is made in it)")
    parser.add_argument("--store", required=True, type=parse_store, help="where the buckets are: local:<root> or s3")
    defaults = AgentDefaults()
    parser.add_argument("--metrics-interval", type=float, default=defaults.metrics_interval)
    parser.add_argument("--log-upload-interval", type=float, default=defaults.log_upload_interval)
    parser.add_argument("--container-runtime", choices=RUNTIMES, default=defaults.container_runtime)
    parser.add_argument("--data1-mode", choices=DATA1_MODES, default=defaults.data1_mode)
    parser.add_argument("--cloudwatch", action="store_true", default=defaults.cloudwatch,
                        help="also publish resource samples to CloudWatch (on EC2)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    defaults = AgentDefaults(metrics_interval=args.metrics_interval, container_runtime=args.container_runtime,
                             data1_mode=args.data1_mode, log_upload_interval=args.log_upload_interval,
                             cloudwatch=args.cloudwatch)
    return run_job(args.store, args.jobid, args.log_bucket, args.workdir, defaults=defaults,
                   secrets=take_secrets(args.store, args.log_bucket, args.jobid))


def take_secrets(store: ObjectStore, log_bucket: str, jobid: str) -> dict[str, str]:
    """The job's secret input_env values the submitter left in the log bucket; the object is deleted."""
    key = protocol.key(jobid, protocol.SECRET_ENV)
    text = store.get_text(log_bucket, key)
    if text is None:
        return {}
    store.delete(log_bucket, key)
    return json.loads(text)


if __name__ == "__main__":
    sys.exit(main())
