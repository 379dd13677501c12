"""Every environment variable tibanna honours: its default and what it means, in one table.

A setting is read here and nowhere else: the code asks its `Setting` (`settings.TIBANNA_HOME.path()`)
each time it needs the value, so a change of the environment between calls is seen. An empty
variable counts as unset. Arguments win over settings: `API(backend=...)` over TIBANNA_BACKEND,
a description's own `config.subnet` over SUBNETS, the agent's `--container-runtime` over
TIBANNA_CONTAINER_RUNTIME; the job parser is given the settings it needs as arguments
(`description_defaults`). What the local or AWS backend passes to the agent about its machine is
not an environment variable: it is `tibanna.agent.settings.AgentDefaults`.

Variables that only pass something from one process to another, or that belong to another tool,
are not settings; `PLUMBING` lists them and where they are read.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tibanna.exceptions import TibannaError


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, its default (None: unset means "not given") and meaning."""

    name: str
    default: str | None
    meaning: str

    def get(self) -> str | None:
        """The variable's value, or the default when it is unset or empty."""
        return os.environ.get(self.name) or self.default

    def seconds(self) -> float | None:
        """The value as a number of seconds (None when unset without a default)."""
        text = self.get()
        if text is None:
            return None
        try:
            return float(text)
        except ValueError:
            raise TibannaError(f"{self.name} must be a number of seconds, not {text!r}") from None

    def words(self) -> list[str]:
        """A comma-separated value as its parts ([] when unset)."""
        text = self.get()
        return text.split(",") if text else []

    def path(self) -> Path | None:
        """The value as a path, `~` expanded (None when unset without a default)."""
        text = self.get()
        return Path(text).expanduser() if text else None


# The API and the command -------------------------------------------------------------------------
TIBANNA_BACKEND = Setting(
    "TIBANNA_BACKEND", "local",
    "The backend API() and the tibanna command use when none is given: local or aws.")
TIBANNA_DEFAULT_STEP_FUNCTION_NAME = Setting(
    "TIBANNA_DEFAULT_STEP_FUNCTION_NAME", None,
    "The step function used when none is given. Unset: on local the one deploy_unicorn last recorded "
    "in TIBANNA_HOME/config, else tibanna_unicorn; on AWS tibanna_unicorn. deploy_unicorn sets it in "
    "its own process (unless no_setenv) and on its Lambdas.")
TIBANNA_DEBUG = Setting(
    "TIBANNA_DEBUG", None,
    "Any value: the tibanna command shows the traceback of an unexpected error, not one line.")

# The local backend -------------------------------------------------------------------------------
TIBANNA_HOME = Setting(
    "TIBANNA_HOME", "~/.tibanna",
    "The local backend's home: the job index, the buckets (buckets/<bucket>/<key>), the job folders, "
    "the supervisor's log and the price table (prices.json).")
TIBANNA_SUPERVISOR_IDLE_SECONDS = Setting(
    "TIBANNA_SUPERVISOR_IDLE_SECONDS", "30",
    "Seconds a local supervisor with no job waits before it exits (the next submission starts one).")
TIBANNA_SECRETS_DIR = Setting(
    "TIBANNA_SECRETS_DIR", None,
    "Where queued and running local jobs' secret input_env values wait, one 0600 file per job. "
    "Unset: a per-user folder in /dev/shm (memory), else in the temp dir; never under TIBANNA_HOME.")

# The agent (on the machine that runs the job) ---------------------------------------------------
TIBANNA_CONTAINER_RUNTIME = Setting(
    "TIBANNA_CONTAINER_RUNTIME", None,
    "auto, docker, podman or none: where a job's command runs. Unset: the job's "
    "config.container_runtime, else auto (docker when its daemon answers, else the host).")
TIBANNA_CONTAINER_WAIT = Setting(
    "TIBANNA_CONTAINER_WAIT", "60",
    "Seconds the agent waits for a container daemon that is still coming up (docker at an instance's boot).")
AWS_EC2_METADATA_DISABLED = Setting(
    "AWS_EC2_METADATA_DISABLED", None,
    "true: the agent does not ask the instance metadata service (IMDS) for its instance id "
    "(botocore's variable, honoured the same way).")
AWS_EC2_METADATA_SERVICE_ENDPOINT = Setting(
    "AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://169.254.169.254",
    "Where the agent finds the instance metadata service (botocore's variable).")

# AWS ---------------------------------------------------------------------------------------------
TIBANNA_AWS_REGION = Setting(
    "TIBANNA_AWS_REGION", None,
    "The AWS region. Unset: AWS_REGION, else the profile's region, else us-east-1.")
AWS_REGION = Setting(
    "AWS_REGION", None,
    "The AWS region when TIBANNA_AWS_REGION is unset (boto3's variable).")
AWS_ENDPOINT_URL = Setting(
    "AWS_ENDPOINT_URL", None,
    "One endpoint for every AWS service (moto, LocalStack); an API's endpoint_url wins.")
AWS_ACCOUNT_NUMBER = Setting(
    "AWS_ACCOUNT_NUMBER", None,
    "The AWS account id. Unset: asked of STS once.")
S3_ENCRYPT_KEY_ID = Setting(
    "S3_ENCRYPT_KEY_ID", None,
    "The default config.kms_key_id: a job without one encrypts its uploads with this KMS key.")
SUBNETS = Setting(
    "SUBNETS", None,
    "Comma-separated subnets: the default config.subnet (deploy_unicorn's subnets set it on run_task_awsem).")
SECURITY_GROUPS = Setting(
    "SECURITY_GROUPS", None,
    "Comma-separated security groups; the first is the default config.security_group "
    "(deploy_unicorn's security_groups set it on run_task_awsem).")
AWS_S3_ROLE_NAME = Setting(
    "AWS_S3_ROLE_NAME", "S3_access",
    "The instance profile run_task_awsem gives a job's instance (deploy_unicorn sets it to the "
    "usergroup's tibanna_<group>_for_ec2).")
TIBANNA_IDLE_WINDOW_SECONDS = Setting(
    "TIBANNA_IDLE_WINDOW_SECONDS", "3600",
    "Seconds a started job may show no CPU use and no reads before check_task_awsem ends it as idle.")

SETTINGS: tuple[Setting, ...] = (
    TIBANNA_BACKEND, TIBANNA_DEFAULT_STEP_FUNCTION_NAME, TIBANNA_DEBUG,
    TIBANNA_HOME, TIBANNA_SUPERVISOR_IDLE_SECONDS, TIBANNA_SECRETS_DIR,
    TIBANNA_CONTAINER_RUNTIME, TIBANNA_CONTAINER_WAIT, AWS_EC2_METADATA_DISABLED, AWS_EC2_METADATA_SERVICE_ENDPOINT,
    TIBANNA_AWS_REGION, AWS_REGION, AWS_ENDPOINT_URL, AWS_ACCOUNT_NUMBER, S3_ENCRYPT_KEY_ID, SUBNETS,
    SECURITY_GROUPS, AWS_S3_ROLE_NAME, TIBANNA_IDLE_WINDOW_SECONDS,
)

# Not settings: read where they are used.
PLUMBING: dict[str, str] = {
    "PATH": "agent/job.py, agent/runners/workflow_files.py: a job's PATH gets this Python's bin/ first",
    **{name: "agent/container.py: docker's and podman's own settings, passed to the clients the agent runs"
       for name in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY",
                    "CONTAINER_HOST")},
    "DISPLAY": "core.py: whether plot_metrics can open a browser",
    "BROWSER": "core.py: whether plot_metrics can open a browser (Python's webbrowser honours it)",
    **{name: "lambdas/run_task_awsem.py: set by deploy on the Lambda (backends/aws/build.py): its agent bundle's "
              "path, sha256, architectures and Python version"
              for name in ("TIBANNA_AGENT_BUNDLE", "TIBANNA_AGENT_BUNDLE_SHA256", "TIBANNA_AGENT_BUNDLE_ARCHES",
                           "TIBANNA_AGENT_BUNDLE_PYTHON")},
    "TIBANNA_JOB_TOKEN": "backends/local/worker.py sets it on a job's processes; a kill finds them by it",
}


def description_defaults() -> dict:
    """The account's defaults the job parser fills in: `jobspec.parse(..., **description_defaults())`."""
    return {"kms_key_id": S3_ENCRYPT_KEY_ID.get(), "subnets": SUBNETS.words(),
            "security_groups": SECURITY_GROUPS.words()}
