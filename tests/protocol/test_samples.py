"""samples.tsv: the rows the agent writes are the rows the metrics and check_task_awsem read."""
from __future__ import annotations

import pytest

from tibanna.samples import SAMPLE_COLUMNS, SAMPLES_HEADER, Sample, read_samples_tsv

T0 = 1709294400.0  # 2024-03-01 12:00 UTC
MB, GB = 2**20, 2**30


def test_what_the_agent_writes_reads_back():
    written = [Sample(T0 + 0.25, 12.5, 100 * MB, 900 * MB, GB, 10 * GB, 0),
               Sample(T0 + 1.5, 3.0, 120 * MB, 880 * MB, GB, 10 * GB, 4096)]
    text = SAMPLES_HEADER + "".join(sample.tsv() for sample in written)
    assert text.splitlines()[0].split("\t") == list(SAMPLE_COLUMNS)
    assert text.splitlines()[1] == f"{T0 + 0.25:.3f}\t12.50\t{100 * MB}\t{900 * MB}\t{GB}\t{10 * GB}\t0"
    assert read_samples_tsv(text) == written
    missing = Sample(T0, cpu_percent=None, read_bytes=7)
    assert read_samples_tsv(SAMPLES_HEADER + missing.tsv()) == [missing]


def test_columns_are_found_by_the_header_names():
    text = (SAMPLES_HEADER
            + f"{T0 + 1}\t-\t\tnan\t{GB}\t{10 * GB}\t2048\n"
            + f"{T0}\t12.5\t{100 * MB}\t{900 * MB}\t{GB}\t{10 * GB}\t0\n"
            + "not-a-time\t1\t1\t1\t1\t1\t1\n")
    assert read_samples_tsv(text) == [  # in time order; a row without a time is skipped
        Sample(T0, 12.5, 100 * MB, 900 * MB, GB, 10 * GB, 0.0),
        Sample(T0 + 1, None, None, None, GB, 10 * GB, 2048.0),
    ]
    reordered = f"cpu_percent\ttime\tcolumn_of_a_later_agent\n7\t{T0}\tx\n"
    assert read_samples_tsv(reordered) == [Sample(T0, cpu_percent=7.0)]
    assert read_samples_tsv("") == read_samples_tsv(None) == []
    with pytest.raises(ValueError, match="no 'time' column"):
        read_samples_tsv("cpu_percent\n1\n")
