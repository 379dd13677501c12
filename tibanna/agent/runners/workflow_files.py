"""The files of a workflow job: its workflow files, the engine's inputs file and its output object.

`fetch_workflow` brings the main and child files from `<family>_url` (http(s):// or s3://, which
on the local backend is a local bucket) into `/data1/<family>`, as upstream's download_workflow.
`EngineRunner` is what CWL and WDL share: the engine runs on the host, reads `inputs.yml` built
from the staged inputs and Input_parameters, and prints its output object to
`/data1/out/<jobid>.log.json`, from which the argname outputs are read.
"""
from __future__ import annotations

import abc
import json
import os
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, ClassVar

from tibanna.agent.folder import DATA1
from tibanna.agent.runners.base import RunContext, Runner
from tibanna.exceptions import TibannaError
from tibanna.storage import parse_s3_url

DOWNLOAD_TIMEOUT = 60  # seconds for one workflow file over http(s)
INPUTS_FILE = "inputs.yml"  # upstream's name; the content is JSON, which YAML readers take too


class WorkflowError(TibannaError):
    """A workflow file, an engine or the engine's output object is missing."""


def missing_extra(ctx: RunContext, what: str, extra: str) -> WorkflowError:
    """The error for a job whose engine is not installed: which extra brings it."""
    return WorkflowError(f"language {ctx.app['language']} needs {what}: pip install 'tibanna[{extra}]'")


def require_executable(ctx: RunContext, name: str, extra: str) -> None:
    """Fail unless `name` is on the PATH the job gets (this Python's bin/ first, as the agent runs it)."""
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", os.defpath)])
    if shutil.which(name, path=path) is None:
        raise missing_extra(ctx, name, extra)


def fetch_workflow(ctx: RunContext, family: str) -> list[str]:
    """Download `main_<family>` and `other_<family>_files` into /data1/<family>; their names, main first."""
    url = ctx.app[f"{family}_url"].rstrip("/")
    names = [ctx.app[f"main_{family}"], *filter(None, ctx.app.get(f"other_{family}_files", "").split(","))]
    for name in names:
        dest = ctx.folder.host_path(f"{DATA1}/{family}/{name}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        source = f"{url}/{name}"
        if url.startswith("s3://"):
            bucket, key = parse_s3_url(source)
            if not ctx.store.exists(bucket, key):
                raise WorkflowError(f"workflow file {source} does not exist")
            ctx.store.get_file(bucket, key, dest)
        elif url.startswith(("http://", "https://")):
            quoted = f"{url}/{urllib.parse.quote(name)}"
            try:
                with urllib.request.urlopen(quoted, timeout=DOWNLOAD_TIMEOUT) as response, open(dest, "wb") as out:
                    shutil.copyfileobj(response, out)
            except (urllib.error.URLError, OSError) as err:
                raise WorkflowError(f"cannot download workflow file {quoted}: {err}") from err
        else:
            raise WorkflowError(f"{family}_directory_url must be an http(s):// or s3:// url, not {url!r}")
        ctx.log.info(f"workflow file {source} -> {DATA1}/{family}/{name}")
    return names


def job_path(ctx: RunContext, path: str) -> str:
    """A path an engine reported, as the job sees it: the inverse of `ctx.view` ('/data1/...')."""
    for root in dict.fromkeys((str(ctx.folder.data1), str(ctx.folder.data1.resolve()))):
        if path == root or path.startswith(root + "/"):
            return DATA1 + path[len(root):]
    return path


def _nested(value: Any, convert: Callable[[str], Any]) -> Any:
    return [_nested(item, convert) for item in value] if isinstance(value, list) else convert(value)


class EngineRunner(Runner):
    """A workflow engine on the host (cwl, wdl); its steps use `ctx.container_runtime` when one is usable."""

    family: ClassVar[str]  # 'cwl' | 'wdl': the working folder and the App fields
    engine: ClassVar[str]  # the executable
    extra: ClassVar[str]  # the pyproject extra that installs it

    def __init__(self, run_json: dict) -> None:
        super().__init__(run_json)
        self.files: list[str] = []  # the fetched workflow files, relative to /data1/<family>, main first

    def prepare(self, ctx: RunContext) -> None:
        """Check the engine, fetch the workflow files, write inputs.yml."""
        self.check_engine(ctx)
        self.files = fetch_workflow(ctx, self.family)
        self.write_inputs(ctx)

    def check_engine(self, ctx: RunContext) -> None:
        """Fail the job with the missing extra's name when the engine is not installed."""
        require_executable(ctx, self.engine, self.extra)

    def write_inputs(self, ctx: RunContext) -> None:
        """inputs.yml: each staged input (nested as its object_key) as `input_value`, then Input_parameters."""
        document = {name: _nested(paths, lambda path: self.input_value(ctx, path))
                    for name, paths in ctx.inputs.items()}
        document.update(ctx.run_json["Job"]["Input"].get("Input_parameters") or {})
        text = ctx.view(json.dumps(document, indent=2))
        ctx.folder.host_path(f"{DATA1}/{self.family}/{INPUTS_FILE}").write_text(text + "\n", encoding="utf-8")

    @abc.abstractmethod
    def input_value(self, ctx: RunContext, path: str) -> Any:
        """How the engine's inputs file names a staged file at `path`."""

    def output_object_path(self, ctx: RunContext) -> str:
        """Where the engine's stdout (its output object) goes: upstream's /data1/out/<jobid>.log.json."""
        return f"{DATA1}/out/{ctx.jobid}.log.json"

    def output_files(self, ctx: RunContext) -> dict[str, dict]:
        path = self.output_object_path(ctx)
        try:
            document = json.loads(ctx.folder.host_path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise WorkflowError(f"{self.engine}'s output object {path} cannot be read: {err}") from err
        return self.outputs_from(ctx, document)

    @abc.abstractmethod
    def outputs_from(self, ctx: RunContext, document: Any) -> dict[str, dict]:
        """Argname -> postrun entry ({"path": <job path>, ...}) for each file output in the output object."""
