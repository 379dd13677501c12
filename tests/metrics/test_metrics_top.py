"""`.top` parsing into upstream's top_cpu.tsv / top_mem.tsv."""
from __future__ import annotations

import datetime as dt

import pytest
from metrics_builders import MACHINERY, START, top_snapshot

from tibanna.metrics.top import (
    ALL_COMMANDS,
    collapse_commands,
    is_excluded,
    parse_top,
    read_top_tsv,
    snapshots_from_tsvs,
    top_table,
)

BWA = "bwa mem -t 2 ref.fa reads.fq"
SAMTOOLS = "samtools sort -o out.bam -"
TOP_START = START.replace(tzinfo=None)  # top's time stamps are naive UTC


def test_top_cpu_tsv_finds_the_job_commands(top_text):
    table = top_table(parse_top(top_text))
    tsv = table.to_tsv("cpu")
    lines = tsv.splitlines()
    assert lines[0] == f'interval\t"{BWA}"\t"{SAMTOOLS}"'
    assert lines[1] == "1\t90.0\t10.0"
    assert lines[10] == "10\t99.0\t10.0"
    assert len(lines) == 11 and tsv.endswith("\n")
    assert table.to_tsv("mem").splitlines()[1] == "1\t5.0\t2.5"


@pytest.mark.parametrize("command", [c for _, _, c in MACHINERY])
def test_machinery_is_excluded(command):
    assert is_excluded(command)


@pytest.mark.parametrize("command", [
    BWA, SAMTOOLS, "python3 myscript.py --in x", 'python -c "print(1)"', "java -jar gatk.jar HaplotypeCaller",
    "aws ec2 describe-instances", "/usr/bin/python3 -m my_tool.run", "Rscript analysis.R",
])
def test_job_commands_are_kept(command):
    assert not is_excluded(command)


def test_idle_and_machinery_rows_are_dropped(top_text):
    snapshots = parse_top(top_text)
    assert len(snapshots) == 10
    assert {p.command for s in snapshots for p in s.processes} == {BWA, SAMTOOLS}


def test_gaps_are_zero_filled_and_intervals_are_one_based():
    text = "".join(top_snapshot(START + dt.timedelta(minutes=m), [(50.0, 1.0, "align x")]) for m in (0, 1, 4))
    lines = top_table(parse_top(text)).to_tsv("cpu").splitlines()
    assert lines == ['interval\t"align x"', "1\t50.0", "2\t50.0", "3\t0", "4\t0", "5\t50.0"]


def test_runs_longer_than_a_day_do_not_wrap():
    text = "".join(top_snapshot(START + dt.timedelta(minutes=m), [(10.0, 1.0, "long job")]) for m in (0, 1501))
    lines = top_table(parse_top(text)).to_tsv("cpu").splitlines()
    assert len(lines) == 1 + 1502
    assert lines[-1] == "1502\t10.0"


def test_per_second_snapshots_cpu_by_mean_memory_by_max():
    text = ""
    for second in range(0, 60, 10):  # six snapshots within minute 0 (nearest minute: 0 for < 30 s)
        cpu, mem = (100.0, 8.0) if second == 20 else (40.0, 2.0)
        rows = [(cpu, mem, "tool run")]
        if second >= 30:  # snapshots from 30 s on belong to minute 1
            rows.append((30.0, 1.0, "helper"))
        text += top_snapshot(START + dt.timedelta(seconds=second), rows)
    table = top_table(parse_top(text))
    assert table.commands == ["helper", "tool run"]
    # minute 0: seconds 0, 10, 20 -> tool cpu mean (40+40+100)/3, mem max 8; helper absent
    assert table.cpu[0] == [0.0, 60.0]
    assert table.mem[0] == [0.0, 8.0]
    # minute 1: seconds 30, 40, 50
    assert table.cpu[1] == [30.0, 40.0]
    assert table.mem[1] == [1.0, 2.0]


def test_processes_of_one_command_are_summed_per_snapshot():
    text = top_snapshot(START, [(50.0, 1.0, "worker --id 1"), (50.0, 1.0, "worker --id 1"), (25.0, 2.0, "other")])
    table = top_table(parse_top(text))
    assert table.cpu == [[25.0, 100.0]]
    assert table.mem == [[2.0, 2.0]]


def test_more_than_sixteen_commands_collapse_to_word_prefixes():
    commands = [f"bwa mem -t 2 ref.fa sample{i}.fq" for i in range(20)] + ["samtools index x.bam"]
    assert collapse_commands(commands) == ["bwa mem -t 2 ref.fa", "samtools index x.bam"]


def test_collapse_goes_down_to_characters_then_all_commands():
    commands = [f"tool{i:02d}" for i in range(20)]  # one word each: only character prefixes help
    assert collapse_commands(commands) == ["tool0", "tool1"]
    many = [f"{a}{b}x" for a in "abcdefgh" for b in "abc"]  # 24 words differing in the first letter
    assert collapse_commands(many) == [ALL_COMMANDS]


def test_collapsed_columns_add_up_their_commands():
    rows = [(float(i), 0.5, f"bwa mem -t 2 ref.fa sample{i}.fq") for i in range(20)]
    table = top_table(parse_top(top_snapshot(START, rows)))
    assert table.commands == ["bwa mem -t 2 ref.fa"]
    assert table.cpu == [[float(sum(range(20)))]]
    assert table.mem == [[10.0]]


def test_empty_top_gives_a_header_only_table():
    assert top_table(parse_top("")).to_tsv("cpu") == "interval\n"


def test_read_top_tsv_round_trip(top_text):
    table = top_table(parse_top(top_text))
    commands, intervals, rows = read_top_tsv(table.to_tsv("cpu"))
    assert commands == table.commands
    assert intervals == list(range(1, 11))
    assert rows == table.cpu


def test_rows_without_a_timestamp_or_with_odd_values_are_skipped():
    text = ("top - 10:00:00 up 1 day\n\n    PID USER PR NI VIRT RES SHR S %CPU %MEM TIME+ COMMAND\n"
            "      1 root 20 0 1 1 1 S 50.0 1.0 0:01 orphan\n\n"
            + top_snapshot(START, [(20.0, 1.0, "kept")]).replace(" 20.0 ", " 20,0 ")
            + "Timestamp: not-a-time\n")
    snapshots = parse_top(text)
    assert [(p.cpu, p.command) for s in snapshots for p in s.processes] == [(20.0, "kept")]


def test_rows_of_any_width_from_an_origin_count_their_snapshots():
    times = (-3, 0, 0, 1, 4)  # seconds after the origin; two snapshots stamped the same second
    text = "".join(top_snapshot(START + dt.timedelta(seconds=s), [(10.0 * (k + 1), 1.0, "tool")])
                   for k, s in enumerate(times))
    table = top_table(parse_top(text), interval=1.0, origin=TOP_START)
    assert table.interval == 1.0
    assert table.seen == [2, 1, 0, 0, 1]  # the snapshot before the origin is left out
    assert [row[0] for row in table.cpu] == [25.0, 40.0, 0.0, 0.0, 50.0]


def test_top_tsvs_back_into_snapshots(top_text):
    table = top_table(parse_top(top_text))
    again = top_table(snapshots_from_tsvs(table.to_tsv("cpu"), table.to_tsv("mem"), TOP_START))
    assert (again.commands, again.cpu, again.mem) == (table.commands, table.cpu, table.mem)
    assert snapshots_from_tsvs("", "", TOP_START) == []
