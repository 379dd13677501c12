"""Launch one job's instance: EC2 Fleet (instant), sizes, tags, IMDSv2 and the agent's bootstrap.

Upstream's launch, rebuilt: a launch template per launch, one fleet override per
(instance type x subnet), spot or on-demand, `behavior_on_capacity_limit`, the data volume sized
from `ebs_size` (GB, or `"<n>x"` the inputs), tags on the instance and its volumes. The user data
extracts the agent's bundle that deploy built (checked against its sha256) and starts the agent.
"""
from __future__ import annotations

import base64
import logging
import math
import secrets
import shlex
import string
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from tibanna import __version__, jobspec, protocol
from tibanna.backends.aws import build, names
from tibanna.backends.aws.catalogue import Catalogue
from tibanna.exceptions import EC2InstanceLimitException, EC2InstanceLimitWaitException, EC2LaunchException
from tibanna.storage.s3 import Clients, S3Store, error_code

log = logging.getLogger(__name__)

# Fleet errors (one per override) that mean "no capacity for this request now".
CAPACITY_ERRORS = ("InsufficientInstanceCapacity", "InsufficientCapacity", "InstanceLimitExceeded",
                   "UnfulfillableCapacity", "VcpuLimitExceeded", "MaxSpotInstanceCountExceeded",
                   "SpotMaxPriceTooLow", "InsufficientFreeAddressesInSubnet", "InsufficientHostCapacity",
                   "InsufficientReservedInstanceCapacity", "MaxSpotFleetRequestCountExceeded")
_DESCRIBE_ATTEMPTS = 10  # DescribeInstances may not know a just-created instance yet
TEMPLATE_RETRIES = 5
DATA_DEVICE = "/dev/sdb"
# The default image: Amazon's current ECS-optimized Amazon Linux 2023 (docker installed and running),
# read at launch from its public SSM parameter so it never ages; config.ami_id or ami_per_region win.
DEFAULT_IMAGE_PARAMETERS = {"x86": "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id",
                            "Arm": "/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id"}
BUNDLE_ARCH = {"x86": "x86_64", "Arm": "aarch64"}  # the catalogue's architectures as `uname -m` says them
BOOT_URL_SECONDS = 6 * 3600  # how long the bootstrap's pre-signed URLs are valid (boot takes minutes)
DATA_MOUNT = "/mnt/data1"
_GIB = 1024 ** 3
_IP_WAIT_SECONDS = 10


def _profile_not_visible(errors: list[dict]) -> bool:
    """A fleet error saying the instance profile is unknown: a new one EC2 does not see yet."""
    return any(e.get("ErrorCode") == "InvalidParameterValue" and "instance profile" in
               e.get("ErrorMessage", "").lower() for e in errors)


@dataclass(frozen=True)
class Launched:
    instance_id: str
    instance_ip: str
    availability_zone: str
    instance_type: str


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


def input_sizes(store: S3Store, args: dict) -> dict[str, int | list[int]]:
    """Bytes per input argument (secondary files as `<arg>_secondary`), a list for a list of keys,
    as upstream passes them to Benchmark; a key that is a folder counts its objects."""
    def size(bucket: str, key: str) -> int:
        found = store.size(bucket, key)
        return found if found is not None else sum(
            o["Size"] for o in store.list_objects(bucket, key.rstrip("/") + "/"))

    sizes: dict[str, int | list[int]] = {}
    for section, suffix in (("input_files", ""), ("secondary_files", "_secondary")):
        for argname, spec in (args.get(section) or {}).items():
            keys = jobspec.iter_keys(spec["object_key"])
            found = [size(spec["bucket_name"], key) for key in keys]
            sizes[argname + suffix] = found if isinstance(spec["object_key"], list) else found[0]
    return sizes


def input_bytes(sizes: dict[str, int | list[int]]) -> int:
    """The total of `input_sizes`."""
    return sum(sum(v) if isinstance(v, list) else v for v in sizes.values())


def benchmark(args: dict, sizes: dict[str, int | list[int]]) -> dict:
    """Upstream's sizing of a known app: {instance_type, ebs_size, EBS_optimized}.

    The Benchmark-4dn package holds upstream's per-app formulas; it is used when installed.
    """
    try:
        from Benchmark import run as bench
    except ImportError:
        raise EC2LaunchException(f"args.app_name: sizing {args.get('app_name')!r} needs the Benchmark-4dn package "
                                 "(pip install Benchmark-4dn); or give config.instance_type, or mem and cpu") from None
    parameters = dict(args.get("input_parameters") or {}) | dict(args.get("additional_benchmarking_parameters") or {})
    result = bench.benchmark(args["app_name"], {"input_size_in_bytes": sizes, "parameters": parameters})
    if not result:
        raise EC2LaunchException(f"args.app_name: Benchmarking not working for {args['app_name']!r}")
    total = result["total_size_in_GB"]
    return {"instance_type": result["aws"]["recommended_instance_type"],
            "ebs_size": jobspec.MIN_EBS_SIZE_GB if total < jobspec.MIN_EBS_SIZE_GB else int(total) + 1,
            "EBS_optimized": result["aws"]["EBS_optimized"]}


def ebs_size(config: dict, inputs: int | None) -> int:
    """The data volume in GB: `ebs_size` or `<n>x` the inputs, at least 10, +5 unless `ebs_size_as_is`."""
    size = config.get("ebs_size") or 0
    if isinstance(size, str) and size.endswith("x"):
        size = math.ceil(float(size[:-1]) * (inputs or 0) / _GIB)
    return jobspec.data_volume_gb(int(size), bool(config.get("ebs_size_as_is")))


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


class Launcher:
    """Launches the instance of one parsed job (the execution's input)."""

    def __init__(self, clients: Clients, store: S3Store, job: dict, bootstrap: Bootstrap,
                 instance_profile: str) -> None:
        self.clients, self.store, self.job, self.bootstrap = clients, store, job, bootstrap
        self.config, self.args, self.jobid = job["config"], job["args"], job["jobid"]
        self.instance_profile = instance_profile
        self.ec2 = clients("ec2")

    def instance_types(self) -> list[str]:
        """config.instance_type (a type or a list), else the cheapest fitting mem/cpu from the catalogue,
        else the app's benchmark (which also sizes the data volume when ebs_size is not given)."""
        wanted = self.config.get("instance_type")
        if wanted:
            return [wanted] if isinstance(wanted, str) else list(wanted)
        mem = float(self.config.get("mem") or 0)
        cpu = float(self.config.get("cpu") or 0)
        if not mem or not cpu:
            sized = benchmark(self.args, input_sizes(self.store, self.args))
            if not self.config.get("ebs_size"):
                self.config["ebs_size"] = sized["ebs_size"]
            if self.config.get("EBS_optimized") in ("", None):
                self.config["EBS_optimized"] = sized["EBS_optimized"]
            return [sized["instance_type"]]
        return Catalogue(self.clients).cheapest(cpu, mem if self.config.get("mem_as_is") else mem + 1,
                                                bool(self.config.get("spot_instance")),
                                                self.config.get("EBS_optimized") is True)

    def overrides(self, types: list[str]) -> list[dict]:
        """One fleet override per (type x subnet), each with the image of the type's architecture."""
        shapes = Catalogue(self.clients).types(types)
        missing = [t for t in types if t not in shapes]
        if missing:
            raise EC2LaunchException(f"config.instance_type: {', '.join(missing)} not offered in {self.clients.region}")
        subnets = self.config.get("subnet") or []
        subnets = [subnets] if isinstance(subnets, str) else list(subnets)
        found = []
        for name in types:
            arch = shapes[name].arch
            if BUNDLE_ARCH.get(arch) not in self.bootstrap.arches:
                raise EC2LaunchException(
                    f"config.instance_type: {name} is {arch}, and the agent's bundle deployed holds compiled files "
                    f"for {', '.join(self.bootstrap.arches) or 'no architecture'} only; redeploy where pip can "
                    f"fetch {BUNDLE_ARCH.get(arch, arch)} wheels, or choose another instance type")
            image = self.config.get("ami_id") or (self.config.get("ami_per_region") or {}).get(arch, {}).get(
                self.clients.region) or self._default_image(arch)
            for subnet in subnets or [None]:
                found.append({"InstanceType": name, "ImageId": image} | ({"SubnetId": subnet} if subnet else {}))
        return found

    def _default_image(self, arch: str) -> str:
        """The current image of Amazon's public SSM parameter for this architecture."""
        parameter = DEFAULT_IMAGE_PARAMETERS.get(arch)
        if parameter is None:
            raise EC2LaunchException(f"config.ami_id: no default image for architecture {arch}; give one")
        try:
            return self.clients("ssm").get_parameter(Name=parameter)["Parameter"]["Value"]
        except ClientError as err:
            raise EC2LaunchException(f"config.ami_id: cannot read the default image of {arch} from SSM "
                                     f"({parameter}): {error_code(err)}") from err

    def root_device(self, images: set[str]) -> str:
        """The root device name of the images (DescribeImages), which the root volume's mapping must use."""
        try:
            found = self.ec2.describe_images(ImageIds=sorted(images))["Images"]
        except ClientError as err:
            raise EC2LaunchException(f"config.ami_id: {', '.join(sorted(images))}: {error_code(err)}") from err
        unknown = images - {image["ImageId"] for image in found}
        if unknown:
            raise EC2LaunchException(f"config.ami_id: {', '.join(sorted(unknown))} not found in {self.clients.region}")
        devices = {image["RootDeviceName"] for image in found}
        if len(devices) > 1:
            raise EC2LaunchException(f"config.instance_type: the images of these types have different root devices "
                                     f"({', '.join(sorted(devices))}); list types of one architecture")
        return devices.pop()

    def boot_urls(self) -> BootUrls:
        """Pre-signed GET of the bundle and PUTs of the log bucket's `.job_started`, `.log` and `.error`."""
        s3, bucket = self.clients("s3"), self.config["log_bucket"]

        def signed(method: str, bucket_name: str, key: str) -> str:
            return s3.generate_presigned_url(method, Params={"Bucket": bucket_name, "Key": key},
                                             ExpiresIn=BOOT_URL_SECONDS)

        return BootUrls(bundle=signed("get_object", self.bootstrap.bucket, self.bootstrap.key),
                        **{field: signed("put_object", bucket, protocol.key(self.jobid, suffix))
                           for field, suffix in (("started", protocol.JOB_STARTED), ("log", protocol.LOG),
                                                 ("error", protocol.ERROR))})

    def template_data(self, size: int, spot: bool, root_device: str) -> dict:
        cfg = self.config
        data_volume: dict[str, Any] = {"VolumeSize": size, "VolumeType": cfg.get("ebs_type") or "gp3",
                                       "DeleteOnTermination": True}
        if cfg.get("ebs_iops") and data_volume["VolumeType"] in ("io1", "io2", "gp3"):
            data_volume["Iops"] = int(cfg["ebs_iops"])
        if cfg.get("ebs_throughput") and data_volume["VolumeType"] == "gp3":
            data_volume["Throughput"] = int(cfg["ebs_throughput"])
        tags = [{"Key": "Name", "Value": names.instance_name(self.jobid)},
                {"Key": "Type", "Value": names.INSTANCE_TYPE_TAG}]
        script = user_data(self.jobid, cfg["log_bucket"], self.clients.region, cfg.get("shutdown_min", "now"),
                           self.bootstrap, self.boot_urls(), spot)
        data: dict[str, Any] = {
            "IamInstanceProfile": {"Arn": f"arn:aws:iam::{self.clients.account}:instance-profile/"
                                          f"{self.instance_profile}"},
            "UserData": base64.b64encode(script.encode()).decode(),
            "InstanceInitiatedShutdownBehavior": "terminate", "DisableApiTermination": False,
            "BlockDeviceMappings": [
                {"DeviceName": DATA_DEVICE, "Ebs": data_volume},
                {"DeviceName": root_device, "Ebs": {
                    "VolumeSize": int(cfg.get("root_ebs_size") or jobspec.DEFAULT_ROOT_EBS_SIZE),
                    "VolumeType": "gp3", "DeleteOnTermination": True}}],
            "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 2},
            "TagSpecifications": [{"ResourceType": kind, "Tags": tags} for kind in ("instance", "volume")],
        }
        if cfg.get("key_name"):
            data["KeyName"] = cfg["key_name"]
        if cfg.get("EBS_optimized") is True:
            data["EbsOptimized"] = True
        if cfg.get("availability_zone"):
            data["Placement"] = {"AvailabilityZone": cfg["availability_zone"]}
        if cfg.get("security_group"):
            data["SecurityGroupIds"] = [cfg["security_group"]]
        if spot:
            options: dict[str, Any] = {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"}
            data["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": options}
        return data

    def launch(self) -> Launched:
        """Create the fleet; on a capacity error act as `behavior_on_capacity_limit` says."""
        spot = bool(self.config.get("spot_instance"))
        behaviour = self.config.get("behavior_on_capacity_limit") or "fail"
        overrides = self.overrides(self.instance_types())
        root_device = self.root_device({override["ImageId"] for override in overrides})
        inputs = input_bytes(input_sizes(self.store, self.args)) \
            if str(self.config.get("ebs_size", "")).endswith("x") else None
        size = ebs_size(self.config, inputs)
        template_failures = 0
        while True:
            errors, instance_id = self._create_fleet(overrides, size, spot, root_device)
            if instance_id:
                return self._describe(instance_id)
            codes = {e.get("ErrorCode", "") for e in errors}
            detail = "; ".join(f"{e.get('ErrorCode')}: {e.get('ErrorMessage', '')}" for e in errors)
            if template_failures < TEMPLATE_RETRIES and (any(c.startswith("InvalidLaunchTemplate") for c in codes)
                                                         or _profile_not_visible(errors)):
                template_failures += 1
                time.sleep(template_failures if _profile_not_visible(errors) else 0)
                continue
            if codes & set(CAPACITY_ERRORS):  # any override out of capacity: the others failed too
                if behaviour == "retry_without_spot" and spot:
                    log.info("job %s: no spot capacity (%s); retrying on demand", self.jobid, detail)
                    spot, behaviour = False, "fail"
                    self.config["spot_instance"], self.config["behavior_on_capacity_limit"] = False, "fail"
                    continue
                if behaviour in ("wait_and_retry", "other_instance_types"):
                    raise EC2InstanceLimitWaitException(f"Instance limit exception - wait and retry later: {detail}")
                raise EC2InstanceLimitException("Instance limit exception - use 'behavior_on_capacity_limit' "
                                                f"option or try it later: {detail}")
            raise EC2LaunchException(f"Unexpected result from create_fleet command: {detail or 'no instance'}")

    def _create_fleet(self, overrides: list[dict], size: int, spot: bool,
                      root_device: str) -> tuple[list[dict], str | None]:
        """One fleet request with a throw-away launch template; (errors, instance id)."""
        template = names.LAUNCH_TEMPLATE_PREFIX + "".join(secrets.choice(string.ascii_lowercase) for _ in range(8))
        self.ec2.create_launch_template(LaunchTemplateName=template, LaunchTemplateData=self.template_data(size, spot, root_device))
        try:
            fleet = self.ec2.create_fleet(
                Type="instant",
                TargetCapacitySpecification={"TotalTargetCapacity": 1,
                                             "DefaultTargetCapacityType": "spot" if spot else "on-demand"},
                SpotOptions={"AllocationStrategy": "capacity-optimized"},
                OnDemandOptions={"AllocationStrategy": "lowest-price"},
                LaunchTemplateConfigs=[{"LaunchTemplateSpecification": {"LaunchTemplateName": template,
                                                                        "Version": "$Latest"},
                                        "Overrides": overrides}])
            instances = [i for entry in fleet.get("Instances", []) for i in entry.get("InstanceIds", [])]
            if instances:
                return [], instances[0]
            try:
                self.ec2.delete_fleets(FleetIds=[fleet["FleetId"]], TerminateInstances=True)
            except ClientError as err:
                log.debug("delete_fleets %s: %s", fleet.get("FleetId"), err)
            return fleet.get("Errors") or [], None
        finally:
            self.ec2.delete_launch_template(LaunchTemplateName=template)

    def _describe(self, instance_id: str) -> Launched:
        """The instance's public IP ('' in a private subnet) and zone, once it has them."""
        deadline = time.monotonic() + _IP_WAIT_SECONDS
        unknown = 0
        while True:
            try:
                instance = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
            except ClientError as err:  # eventual consistency: the fleet's instance is not visible yet
                unknown += 1
                if error_code(err) != "InvalidInstanceID.NotFound" or unknown >= _DESCRIBE_ATTEMPTS:
                    raise
                time.sleep(min(2 ** unknown * 0.1, 5))
                continue
            ip = instance.get("PublicIpAddress", "")
            if ip or instance["State"]["Name"] != "pending" or time.monotonic() > deadline:
                return Launched(instance_id, ip, instance["Placement"]["AvailabilityZone"], instance["InstanceType"])
            time.sleep(1)
