"""What the caller (a backend) tells the agent about the machine it runs on."""
from __future__ import annotations

from dataclasses import dataclass

DATA1_MODES = ("auto", "bind", "rewrite")


@dataclass(frozen=True)
class AgentDefaults:
    """Per-machine settings; the job's config may refine some of them (see `run_job`).

    metrics_interval: seconds between process-tree samples (local 1 s; AWS passes 60). A job's
        config.metrics_interval, when set, wins.
    container_runtime: 'auto' | 'docker' | 'podman' | 'none'; None means env
        TIBANNA_CONTAINER_RUNTIME, else the job's config.container_runtime, else 'auto'.
    data1_mode: how jobs see `/data1` on the host: 'bind' (private mount namespace),
        'rewrite' (the path is replaced in what the job sees) or 'auto' (bind when possible).
    log_upload_interval: seconds between uploads of the log, the top file and the samples.
    cloudwatch: also publish every sample to CloudWatch (namespace CWAgent, dimension InstanceId),
        as upstream's CloudWatch agent did; only on EC2 (the AWS user data passes --cloudwatch).
    """

    metrics_interval: float = 1.0
    container_runtime: str | None = None
    data1_mode: str = "auto"
    log_upload_interval: float = 5.0
    cloudwatch: bool = False

    def __post_init__(self) -> None:
        if self.data1_mode not in DATA1_MODES:
            raise ValueError(f"data1_mode must be one of {', '.join(DATA1_MODES)}, not {self.data1_mode!r}")
        if self.metrics_interval <= 0 or self.log_upload_interval <= 0:
            raise ValueError("metrics_interval and log_upload_interval must be positive")
