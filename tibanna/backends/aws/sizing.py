"""How big a job's instance is: its instance types and its data volume, by upstream's rules.

`config.instance_type` (a type or a list), else the cheapest types fitting `mem` and `cpu` from the
catalogue, else the app's benchmark (the Benchmark-4dn package), which also sizes the data volume
when `ebs_size` is not given. The volume is `ebs_size` GB or `<n>x` the inputs' bytes, at least
10 GB, plus 5 unless `ebs_size_as_is`.
"""
from __future__ import annotations

import math

from tibanna import jobspec
from tibanna.backends.aws.catalogue import Catalogue
from tibanna.exceptions import EC2LaunchException
from tibanna.storage.s3 import Clients, S3Store

_GIB = 1024 ** 3


def instance_types(clients: Clients, store: S3Store, config: dict, args: dict) -> list[str]:
    """The types to ask the fleet for, best first; a benchmark's sizes go into `config` where not given."""
    wanted = config.get("instance_type")
    if wanted:
        return [wanted] if isinstance(wanted, str) else list(wanted)
    mem = float(config.get("mem") or 0)
    cpu = float(config.get("cpu") or 0)
    if not mem or not cpu:
        sized = benchmark(args, input_sizes(store, args))
        if not config.get("ebs_size"):
            config["ebs_size"] = sized["ebs_size"]
        if config.get("EBS_optimized") in ("", None):
            config["EBS_optimized"] = sized["EBS_optimized"]
        return [sized["instance_type"]]
    return Catalogue(clients).cheapest(cpu, mem if config.get("mem_as_is") else mem + 1,
                                       bool(config.get("spot_instance")), config.get("EBS_optimized") is True)


def data_volume(store: S3Store, config: dict, args: dict) -> int:
    """The data volume in GB (the inputs are measured only for an `<n>x` size)."""
    inputs = input_bytes(input_sizes(store, args)) if str(config.get("ebs_size", "")).endswith("x") else None
    return ebs_size(config, inputs)


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
