"""Builders for synthetic `.top` text and resource samples, shared by the metrics tests."""
from __future__ import annotations

import datetime as dt
import math

from tibanna.metrics.resources import GB, MB
from tibanna.samples import Sample

START = dt.datetime(2024, 3, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
HEADER = "    PID USER      PR  NI    VIRT    RES    SHR S  %CPU  %MEM     TIME+ COMMAND"


def top_snapshot(when: dt.datetime, rows: list[tuple[float, float, str]]) -> str:
    """One procps `top -b -n 1 -c` snapshot preceded by the agent's Timestamp line."""
    lines = [
        f"Timestamp: {when.strftime('%Y-%m-%d-%H:%M:%S')}",
        f"top - {when.strftime('%H:%M:%S')} up 4 days,  2:37,  0 users,  load average: 5.59, 5.28, 5.76",
        "Tasks:   7 total,   1 running,   6 sleeping,   0 stopped,   0 zombie",
        "%Cpu(s):  6.6 us,  0.1 sy,  0.0 ni, 93.2 id,  0.0 wa,  0.0 hi,  0.0 si,  0.0 st",
        "MiB Mem :  15953.1 total,   1234.5 free,   2345.6 used,  12373.0 buff/cache",
        "MiB Swap:      0.0 total,      0.0 free,      0.0 used.  13300.1 avail Mem",
        "",
        HEADER,
    ]
    for pid, (cpu, mem, command) in enumerate(rows, start=100):
        lines.append(f"{pid:>7} root      20   0  123456  65432   1234 S {cpu:>5.1f} {mem:>5.1f}   1:02.03 {command}")
    lines.append("")
    return "\n".join(lines) + "\n"


MACHINERY = [
    (3.0, 0.1, "top -b -n 1 -c"),
    (2.0, 0.5, "/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock"),
    (1.0, 0.2, "/usr/bin/containerd-shim-runc-v2 -namespace moby -id 1234"),
    (0.5, 0.0, "/usr/sbin/cron -f"),
    (4.0, 0.3, "mount-s3 my-bucket /mnt/data1/input"),
    (7.0, 1.0, "/usr/bin/python3 /usr/local/bin/cwltool --outdir /data1/out main.cwl"),
    (1.0, 0.4, "/usr/bin/python3 /usr/local/bin/awsf3 upload_output"),
    (9.0, 0.2, "/usr/bin/python3 /usr/local/bin/aws s3 cp out.bam s3://b/out.bam"),
    (5.0, 4.0, "java -jar /usr/local/bin/cromwell-35.jar run main.wdl"),
    (0.3, 0.0, "[kworker/0:1-events]"),
    (1.5, 0.8, "/work/main/.venv/bin/python -m tibanna.agent run --jobid abc"),
    (0.2, 0.6, "python3 -m tibanna.backends.local.supervisor /root/.tibanna"),
]


def job_top_text() -> str:
    """Ten one-a-minute snapshots of a job running bwa and samtools, amid Tibanna's machinery."""
    text = ""
    for minute in range(10):
        rows = [(90.0 + minute, 5.0, "bwa mem -t 2 ref.fa reads.fq"),
                (10.0, 2.5, "samtools sort -o out.bam -"),
                (0.0, 0.0, "sleep 1000")] + MACHINERY
        text += top_snapshot(START + dt.timedelta(minutes=minute, seconds=minute % 3), rows)
    return text


def make_samples(minutes: int = 10, every: float = 5.0) -> list[Sample]:
    """Samples of a job whose memory and disk grow while the CPU oscillates."""
    samples = []
    t0 = START.timestamp()
    for k in range(int(minutes * 60 / every)):
        t = t0 + k * every
        frac = k / (minutes * 60 / every)
        samples.append(Sample(
            time=t,
            cpu_percent=55 + 40 * math.sin(k / 5),
            mem_used_bytes=(600 + 900 * frac) * MB,
            mem_available_bytes=(3200 - 900 * frac) * MB,
            disk_used_bytes=(0.5 + 6 * frac) * GB,
            disk_total_bytes=20 * GB,
            read_bytes=1e6 * k,
        ))
    return samples
