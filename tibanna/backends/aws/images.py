"""The images a job's instances boot, and their root device.

A user's image wins (`config.ami_id`, else `ami_per_region[arch][region]`); the default is Amazon's
current ECS-optimized Amazon Linux 2023 (docker installed and running) of the type's
architecture, read at launch from its public SSM parameter so it never ages. The root volume's
mapping must name the images' own root device, so the images of one launch must share it.
"""
from __future__ import annotations

from botocore.exceptions import ClientError

from tibanna.exceptions import EC2LaunchException
from tibanna.storage.s3 import Clients, error_code

DEFAULT_IMAGE_PARAMETERS = {"x86": "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id",
                            "Arm": "/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id"}


def image_for(clients: Clients, config: dict, arch: str) -> str:
    """The image of a job's instance of architecture `arch` (the catalogue's: `x86`, `Arm`)."""
    return config.get("ami_id") or (config.get("ami_per_region") or {}).get(arch, {}).get(clients.region) \
        or default_image(clients, arch)


def default_image(clients: Clients, arch: str) -> str:
    """The current image of Amazon's public SSM parameter for this architecture."""
    parameter = DEFAULT_IMAGE_PARAMETERS.get(arch)
    if parameter is None:
        raise EC2LaunchException(f"config.ami_id: no default image for architecture {arch}; give one")
    try:
        return clients("ssm").get_parameter(Name=parameter)["Parameter"]["Value"]
    except ClientError as err:
        raise EC2LaunchException(f"config.ami_id: cannot read the default image of {arch} from SSM "
                                 f"({parameter}): {error_code(err)}") from err


def root_device(clients: Clients, images: set[str]) -> str:
    """The root device name of the images (DescribeImages), which the root volume's mapping must use."""
    try:
        found = clients("ec2").describe_images(ImageIds=sorted(images))["Images"]
    except ClientError as err:
        raise EC2LaunchException(f"config.ami_id: {', '.join(sorted(images))}: {error_code(err)}") from err
    unknown = images - {image["ImageId"] for image in found}
    if unknown:
        raise EC2LaunchException(f"config.ami_id: {', '.join(sorted(unknown))} not found in {clients.region}")
    devices = {image["RootDeviceName"] for image in found}
    if len(devices) > 1:
        raise EC2LaunchException(f"config.instance_type: the images of these types have different root devices "
                                 f"({', '.join(sorted(devices))}); list types of one architecture")
    return devices.pop()
