"""`make demo`: one real job on the local backend, then its status, log and metrics report.

Run it with `python -m tibanna.demo`; it uses TIBANNA_HOME (default ~/.tibanna).
"""
from __future__ import annotations

import gzip
import json
import random
import sys
import time

from tibanna.core import API

JOB = {
    "args": {
        "language": "shell",
        "container_image": "ubuntu:20.04",
        "app_name": "demo-gc-content",
        "command": [
            "zcat /data1/input/reads.fastq.gz | awk 'NR % 4 == 2' > /data1/out/seqs.txt",
            "python3 -c \"import collections,sys; c=collections.Counter(open('/data1/out/seqs.txt').read());"
            " gc=(c['G']+c['C'])/max(1,sum(c[b] for b in 'ACGT')); print(f'GC content: {gc:.4f}')\""
            " > /data1/out/report.txt",
            "python3 -c \"import collections; s=open('/data1/out/seqs.txt').read().split();"
            " [print(f'top {k}-mers:', collections.Counter(r[i:i+k] for r in s for i in range(len(r)-k+1))"
            ".most_common(2)) for k in range(6, 12)]\" >> /data1/out/report.txt",
            "md5sum /data1/out/seqs.txt >> /data1/out/report.txt",
            "cat /data1/out/report.txt",
        ],
        "input_files": {"reads": {"bucket_name": "demo-inputs", "object_key": "reads.fastq.gz", "rename": "reads.fastq.gz"}},
        "output_S3_bucket": "demo-outputs",
        "output_target": {"file:///data1/out/report.txt": "demo/report.txt"},
    },
    "config": {"log_bucket": "demo-logs", "cpu": 1, "mem": 1, "ebs_size": 10},
}


def fake_reads(n: int = 40000, length: int = 100) -> bytes:
    rng = random.Random(7)
    lines = []
    for i in range(n):
        seq = "".join(rng.choice("ACGGTC") for _ in range(length))
        lines += [f"@read{i}", seq, "+", "I" * length]
    return gzip.compress("\n".join(lines).encode() + b"\n")


def main() -> int:
    api = API()
    store = api.backend.store
    store.put_bytes("demo-inputs", "reads.fastq.gz", fake_reads())
    print("Submitting a job on the local backend (TIBANNA_HOME =", api.backend.home.root, ")")
    result = api.run_workflow(JOB, verbose=False)
    jobid = result["jobid"]
    print(f"JOBID {jobid} submitted\nEXECUTION ARN = {result['_tibanna']['exec_arn']}")
    while (status := api.check_status(job_id=jobid)) == "RUNNING":
        time.sleep(0.2)
    print(f"\n== tibanna stat -j {jobid}")
    for row in api.stat(job_ids=[jobid], verbose=True):
        print("\t".join(f"{k}={v}" for k, v in row.items()))
    print(f"\n== tibanna log -j {jobid}")
    print(api.log(job_id=jobid))
    postrun = json.loads(api.log(job_id=jobid, postrunjson=True) or "{}")
    print("== metrics (postrun JSON)")
    print(json.dumps(postrun.get("Job", {}).get("Metrics", {}), indent=2))
    print("\n== output", store.path("demo-outputs", "demo/report.txt"))
    print(store.get_text("demo-outputs", "demo/report.txt") or "(missing)")
    report = api.plot_metrics(jobid, open_browser=False)
    print(f"== metrics report: {report}")
    return 0 if status == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(main())
