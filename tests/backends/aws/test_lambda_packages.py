"""Each deployed Lambda runs from its zip alone: a fresh interpreter with only the zip's files and
boto3 (what the Python runtime provides) on sys.path imports the handler and answers an event."""
from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from test_costupdater import queue_cost
from tibanna import names
from tibanna.backends.aws import build

# What the Lambda Python runtime ships besides the standard library.
RUNTIME = ("boto3", "botocore", "jmespath", "dateutil", "s3transfer", "urllib3", "six")

_RUN = """
import json, sys
sys.path[:0] = json.loads(sys.argv[1])
import importlib
module, event = importlib.import_module(sys.argv[2]), json.loads(sys.argv[3])
try:
    answer = {"result": module.handler(event, None)}
except Exception as err:
    answer = {"error": type(err).__name__, "message": str(err)}
print(json.dumps(answer, default=str))
"""


def _runtime(where: Path) -> Path:
    where.mkdir()
    for name in RUNTIME:
        spec = importlib.util.find_spec(name)
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (where / source.name).symlink_to(source)
    return where


@pytest.fixture
def lambda_root(api, deployed, tmp_path: Path) -> tuple[Path, dict]:
    """The Lambdas' zip as deploy builds it (byte for byte: the build is reproducible), unpacked as
    /var/task is, and the deployed Lambdas' environment."""
    client = api.backend.clients("lambda")
    function = names.lambda_name(names.RUN_TASK, deployed["usergroup"])
    code = build.build_lambda_zip(build.agent_bundle())
    assert client.get_function(FunctionName=function)["Configuration"]["CodeSha256"] == \
        base64.b64encode(hashlib.sha256(code).digest()).decode()
    root = tmp_path / "task"
    zipfile.ZipFile(io.BytesIO(code)).extractall(root)
    env = client.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
    env[build.BUNDLE_PATH_ENV] = str(root / Path(env[build.BUNDLE_PATH_ENV]).relative_to("/var/task"))
    return root, env


def _invoke(root: Path, runtime: Path, kind: str, event: dict, env: dict) -> dict:
    import os
    result = subprocess.run([sys.executable, "-I", "-S", "-c", _RUN, json.dumps([str(root), str(runtime)]),
                             f"tibanna.backends.aws.lambdas.{kind}", json.dumps(event)],
                            capture_output=True, text=True, timeout=120, env=os.environ | env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_each_handler_runs_with_only_its_zip_and_boto3(api, deployed, lambda_root, shell_job, tmp_path, player,
                                                       moto_endpoint):
    root, env = lambda_root
    runtime = _runtime(tmp_path / "runtime")
    submitted = api.run_workflow(shell_job("echo ok"), sfn=deployed["sfn"], open_browser=False)
    launched = _invoke(root, runtime, names.RUN_TASK, submitted, env)
    assert "result" in launched, launched
    assert launched["result"]["config"]["instance_id"].startswith("i-")
    checked = _invoke(root, runtime, names.CHECK_TASK, launched["result"], env)
    assert checked["error"] == "EC2StartingException", checked
    event = {"sfn_arn": submitted["_tibanna"]["exec_arn"], "log_bucket": "log-bucket", "job_id": submitted["jobid"],
             "aws_region": "us-east-1"}
    costed = _invoke(root, runtime, names.UPDATE_COST, event, env)
    assert costed == {"result": {"done": False, "message": "Job is still running"}}, costed
    # Billed, with a report to hold the cost: the updater writes it without the report's chart libraries.
    done = api.run_workflow(shell_job("echo billed"), sfn=deployed["sfn"], open_browser=False)
    assert player.play(done["_tibanna"]["exec_arn"], on_retry=player.agent_on_boot).status == "SUCCEEDED"
    api.plot_metrics(done["jobid"], open_browser=False)
    queue_cost(moto_endpoint, "0.0456")
    event.update(sfn_arn=done["_tibanna"]["exec_arn"], job_id=done["jobid"])
    costed = _invoke(root, runtime, names.UPDATE_COST, event, env)
    assert costed == {"result": {"done": True, "message": "Cost updated: 0.0456"}}, costed
    report = api.backend.store.get_text("log-bucket", f"{done['jobid']}.metrics/metrics_report.tsv")
    assert "Cost\t0.0456" in report.splitlines()
