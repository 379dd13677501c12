"""`config`: the machine, disks, spot and logging of a job, with upstream's defaults (Config.fill_default)."""
from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from annotated_types import Ge, Gt
from pydantic import Field, PlainValidator, StringConstraints, model_validator

from tibanna.exceptions import EC2LaunchException
from tibanna.jobspec.fields import (Bool, Bucket, DependencyField, NonNegativeNumber, OptionalPositiveInt,
                                    PositiveNumber, Section, Str, StrList, given)
from tibanna.jobspec.refusal import problem, refuse, show
from tibanna.jobspec.upstream import (CAPACITY_BEHAVIORS, CONTAINER_RUNTIMES, DEFAULT_AWSF_IMAGE,
                                      DEFAULT_ROOT_EBS_SIZE, EBS_SIZE_LIMIT_GB, EBS_SIZE_OVERHEAD_GB, EBS_TYPES,
                                      MIN_EBS_SIZE_GB)


def _one_of(values: tuple[str, ...]) -> str:
    return "one of " + ", ".join(values)


_EBS_TYPE = "must be " + _one_of(EBS_TYPES)
_CAPACITY_BEHAVIOR = "must be " + _one_of(CAPACITY_BEHAVIORS)
_CONTAINER_RUNTIME = "must be null or " + _one_of(CONTAINER_RUNTIMES)


def _is_number(value: Any) -> bool:
    """A JSON number: not a boolean, NaN or infinity (an int is finite, whatever its size)."""
    return not isinstance(value, bool) and (isinstance(value, int) or isinstance(value, float) and math.isfinite(value))


def _check_ebs_size(size: Any) -> int | str:
    """GB (a whole number; 10.0 is 10) or '<n>x', n times the input size, n > 0."""
    if isinstance(size, float) and size.is_integer():
        size = int(size)
    if isinstance(size, str):
        try:
            multiplier = float(size[:-1]) if size.endswith("x") else math.nan
        except ValueError:
            multiplier = math.nan
        if not (math.isfinite(multiplier) and multiplier > 0):
            refuse(f'{show(size)} is neither a number nor "<n>x"')
    elif not _is_number(size):
        refuse(f'{show(size)} is neither a number nor "<n>x"')
    elif not isinstance(size, int) or size < 0:
        refuse(f"must be a whole number of GB >= 0, not {show(size)}")
    return size


EbsSize = Annotated[int | str, PlainValidator(_check_ebs_size, json_schema_input_type=Annotated[int, Ge(0)] | Annotated[
    str, StringConstraints(pattern=r"^[0-9]*\.?[0-9]+([eE][+-]?[0-9]+)?x$"),
    Field(description="'<n>x': n times the total input size")])]


def data_volume_gb(size: int, as_is: bool = False) -> int:
    """The data volume for `size` GB: at least 10, plus 5 unless `as_is`; under EBS's 16 TB limit
    (EC2LaunchException), which the parser checks for a size in GB and the launch for `<n>x`."""
    volume = max(size, MIN_EBS_SIZE_GB) + (0 if as_is else EBS_SIZE_OVERHEAD_GB)
    if volume >= EBS_SIZE_LIMIT_GB:
        raise EC2LaunchException(f"EBS size limit (16TB) exceeded: (attempted size: {volume})")
    return volume


class Config(Section):
    """The machine, disks, spot behaviour and logging of a job (upstream's `config`)."""

    log_bucket: Bucket
    """Where the job's logs, run JSON and postrun JSON go."""
    instance_type: Annotated[str | StrList, problem("must be an instance type or a list of them")] = ""
    """An EC2 instance type, or a list of them to try in order."""
    mem: Annotated[NonNegativeNumber, problem("must be a number of GB")] = 0
    """Memory in GB, to choose an instance type with cpu (when instance_type is not given)."""
    cpu: Annotated[Literal[""] | NonNegativeNumber, problem("must be a number of vCPUs")] = ""
    ebs_type: Annotated[Literal[EBS_TYPES], problem(_EBS_TYPE)] = "gp3"
    ebs_iops: OptionalPositiveInt = ""
    ebs_throughput: OptionalPositiveInt = ""
    """gp3 throughput, 125-1000 MB/s."""
    spot_duration: OptionalPositiveInt = ""
    root_ebs_size: Annotated[Annotated[int, Gt(0)], problem("must be a positive whole number of GB")] \
        = DEFAULT_ROOT_EBS_SIZE
    EBS_optimized: Annotated[Literal[""] | bool, problem("must be true or false")] = ""
    shutdown_min: Annotated[Literal["now"] | Annotated[int, Ge(0)] | Annotated[str, StringConstraints(
        pattern=r"^[0-9]+$")], problem("must be a number of minutes or 'now'")] = "now"
    """Minutes the instance stays up after the job (to ssh in), or 'now'."""
    behavior_on_capacity_limit: Annotated[Literal[CAPACITY_BEHAVIORS], problem(_CAPACITY_BEHAVIOR)] = "fail"
    subnet: Annotated[str | StrList, problem("must be a subnet id or a list of them")] = ""
    """Default: the SUBNETS environment variable (comma-separated), if set."""
    kms_key_id: Annotated[str | None, problem("must be a string or null")] = given()
    """Default: the S3_ENCRYPT_KEY_ID environment variable (which turns on encrypt_s3_upload), else null."""
    ami_per_region: Annotated[dict[str, dict[str, Any]], problem(
        "must be a dictionary of architecture -> {region: ami id}")] = Field(default_factory=dict)
    """AMIs per architecture (x86, Arm) and region; default none: Amazon's current ECS-optimized image."""
    metrics_interval: Annotated[PositiveNumber | None, problem("must be a positive number of seconds or null")] \
        = None
    spot_interruption_reruns: Annotated[Annotated[int, Ge(0)], problem("must be a whole number >= 0")] = 0
    container_runtime: Annotated[Literal[CONTAINER_RUNTIMES] | None, problem(_CONTAINER_RUNTIME)] = None
    mem_as_is: Bool = False
    ebs_size_as_is: Bool = False
    spot_instance: Bool = False
    public_postrun_json: Bool = False
    encrypt_s3_upload: Bool = False
    disable_metrics_collection: Bool = False
    cloudwatch_dashboard: Bool = False
    """Deprecated upstream: always false."""
    use_benchmark: Bool = given()
    """Default: true unless instance_type (or both mem and cpu) and ebs_size are given."""
    singularity: Bool = given()
    """Also read from args.singularity: either one true runs the containers with Singularity."""
    password: Str = ""
    key_name: Str = ""
    availability_zone: Str = ""
    security_group: Str = ""
    """Default: the first of the SECURITY_GROUPS environment variable (comma-separated), if set."""
    ami_id: Str = ""
    awsf_image: Str = DEFAULT_AWSF_IMAGE
    run_name: Str = given()
    ebs_size: EbsSize = 0
    """The data disk: GB, or '<n>x' times the input size; at least 10 unless the app is benchmarkable."""
    dependency: DependencyField = given()

    @classmethod
    def required_in(cls, field: str, data: dict) -> str:
        return "config"

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        """The EBS size limit, gp3's throughput range, retry_without_spot's condition; use_benchmark's default."""
        if isinstance(self.ebs_size, int):
            try:
                data_volume_gb(self.ebs_size, self.ebs_size_as_is)
            except EC2LaunchException as err:
                refuse(str(err), at=("ebs_size",), exc=EC2LaunchException)
        throughput = self.ebs_throughput
        if self.ebs_type == "gp3" and throughput and not 125 <= throughput <= 1000:
            refuse("Invalid EBS throughput. Specify a value between 125 and 1000.", at=("ebs_throughput",),
                   exc=EC2LaunchException)
        if self.behavior_on_capacity_limit == "retry_without_spot" and not self.spot_instance:
            refuse("'behavior_on_capacity_limit': 'retry_without_spot' works only with 'spot_instance' : true",
                   at=("behavior_on_capacity_limit",))
        given_fields = self.model_fields_set
        if "use_benchmark" not in given_fields:
            self.use_benchmark = ("instance_type" not in given_fields
                                  and ("cpu" not in given_fields or "mem" not in given_fields)
                                  or "ebs_size" not in given_fields)
        self.cloudwatch_dashboard = False
        return self
