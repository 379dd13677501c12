"""Fixtures for the metrics tests (builders in metrics_builders.py)."""
from __future__ import annotations

import pytest
from metrics_builders import job_top_text, make_samples

from tibanna.samples import Sample


@pytest.fixture
def top_text() -> str:
    """Ten one-a-minute snapshots of a job running bwa and samtools, amid Tibanna's machinery."""
    return job_top_text()


@pytest.fixture
def samples() -> list[Sample]:
    return make_samples()
