"""Launch one job's instance: EC2 Fleet (instant), its launch template, spot or on-demand.

Upstream's launch, rebuilt: a launch template per launch, one fleet override per
(instance type x subnet) with the image of the type's architecture, `behavior_on_capacity_limit`
on a capacity error, tags on the instance and its volumes, IMDSv2. What it is given comes from
`sizing` (types, data volume), `images` (image, root device) and `userdata` (the boot script).
"""
from __future__ import annotations

import base64
import logging
import secrets
import string
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from tibanna import jobspec
from tibanna.backends.aws import images, names, sizing
from tibanna.backends.aws.catalogue import Catalogue
from tibanna.backends.aws.userdata import DATA_DEVICE, Bootstrap, boot_urls, user_data
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
BUNDLE_ARCH = {"x86": "x86_64", "Arm": "aarch64"}  # the catalogue's architectures as `uname -m` says them
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


class Launcher:
    """Launches the instance of one parsed job (the execution's input)."""

    def __init__(self, clients: Clients, store: S3Store, job: dict, bootstrap: Bootstrap,
                 instance_profile: str) -> None:
        self.clients, self.store, self.job, self.bootstrap = clients, store, job, bootstrap
        self.config, self.args, self.jobid = job["config"], job["args"], job["jobid"]
        self.instance_profile = instance_profile
        self.ec2 = clients("ec2")

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
            image = images.image_for(self.clients, self.config, arch)
            for subnet in subnets or [None]:
                found.append({"InstanceType": name, "ImageId": image} | ({"SubnetId": subnet} if subnet else {}))
        return found

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
        urls = boot_urls(self.clients, self.bootstrap, cfg["log_bucket"], self.jobid)
        script = user_data(self.jobid, cfg["log_bucket"], self.clients.region, cfg.get("shutdown_min", "now"),
                           self.bootstrap, urls, spot)
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
        overrides = self.overrides(sizing.instance_types(self.clients, self.store, self.config, self.args))
        root_device = images.root_device(self.clients, {override["ImageId"] for override in overrides})
        size = sizing.data_volume(self.store, self.config, self.args)
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
