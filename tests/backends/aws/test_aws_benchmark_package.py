"""Upstream's app sizing through the real Benchmark-4dn package (the `aws` extra installs it)."""
from __future__ import annotations

import pytest

from tibanna.backends.aws.sizing import benchmark

pytest.importorskip("Benchmark")


@pytest.mark.parametrize("app, sizes, instance_type", [
    ("md5", {"input_file": 20_000_000}, "t3.micro"),
    ("fastqc", {"input_fastq": 2_000_000_000}, None),
])
def test_benchmarkable_apps_are_sized_by_upstreams_formulas(app, sizes, instance_type):
    sized = benchmark({"app_name": app}, sizes)
    assert sized["instance_type"] and (instance_type is None or sized["instance_type"] == instance_type)
    assert sized["ebs_size"] >= 10
    assert isinstance(sized["EBS_optimized"], bool)
