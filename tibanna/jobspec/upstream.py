"""Upstream Tibanna's tables and limits that the job description's defaults and checks use."""
from __future__ import annotations

from tibanna import __version__

# Apps that upstream's Benchmark package can size without instance_type or mem+cpu.
BENCHMARKABLE_APP_NAMES: frozenset[str] = frozenset({
    "addfragtopairs", "bamqc", "bwa-mem", "compartments-caller", "encode-atacseq",
    "encode-atacseq-aln", "encode-atacseq-postaln", "encode-chipseq", "encode-chipseq-aln-chip",
    "encode-chipseq-aln-ctl", "encode-chipseq-postaln", "encode-rnaseq-stranded",
    "encode-rnaseq-unstranded", "fastqc", "fastqc-0-11-4-1", "hi-c-processing-bam",
    "hi-c-processing-pairs", "hi-c-processing-pairs-nonorm", "hi-c-processing-pairs-nore",
    "hi-c-processing-pairs-nore-nonorm", "hi-c-processing-partb", "hi-c-processing-partc",
    "insulation-scores-and-boundaries-caller", "md5", "merge-fastq", "mergebed", "pairs-patch",
    "pairsam-filter", "pairsam-markasdup", "pairsam-merge", "pairsam-parse-sort",
    "pairsqc-single", "repliseq-parta",
})

WDL_LANGUAGES = ("wdl", "wdl_v1", "wdl_draft2")
LANGUAGES = ("cwl_v1", *WDL_LANGUAGES, "snakemake", "shell")
EBS_TYPES = ("gp2", "gp3", "io1", "io2", "st1", "sc1", "standard")
CAPACITY_BEHAVIORS = ("fail", "wait_and_retry", "other_instance_types", "retry_without_spot")
CONTAINER_RUNTIMES = ("auto", "docker", "podman", "none")
UNZIP_TYPES = ("gz", "bz2", "")

DATA_ROOT = "/data1/"
EBS_SIZE_LIMIT_GB = 16000
EBS_SIZE_OVERHEAD_GB = 5
MIN_EBS_SIZE_GB = 10
DEFAULT_ROOT_EBS_SIZE = 10
DEFAULT_AWSF_IMAGE = f"4dndcic/tibanna-awsf:{__version__}"
