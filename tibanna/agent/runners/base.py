"""The seam between the agent and a workflow language.

The agent owns everything that is the same for every language: run.json, the job folder, input
staging, the environment file, containers, monitoring, output uploads, the postrun JSON and the
markers. A `Runner` owns only what differs:

1. `prepare(ctx)`: after inputs are staged, fetch the workflow files into `/data1/<family>` and
   write the engine's inputs file (CWL/WDL: `inputs.yml` from `ctx.inputs` and Input_parameters).
2. `exports(ctx)` and `command(ctx)`: the variables to export and the bash text to run. The agent
   writes `export NAME=<word>` lines (then LANGUAGE and input_env) into a file that bash sources,
   `cd`s to `/data1/<family>` and runs `command` there; when `container_image` is set and a
   container runtime is usable, inside `<rt> run ... <image>`.
3. `output_files(ctx)`: after a successful run, argname -> {"path": <path as the job saw it>,
   "secondaryFiles": [{"path": ...}], ...} for args.output_target entries named by argname
   (cwltool's output object, WDL's metadata outputs). Targets given as file:// paths need none.
"""
from __future__ import annotations

import abc
import shlex
from dataclasses import dataclass, field
from typing import Any

from tibanna.agent.folder import JobFolder
from tibanna.agent.joblog import JobLog
from tibanna.storage import ObjectStore


def literal(value: Any) -> str:
    """A bash word that is exactly `value` (single-quoted as needed)."""
    return shlex.quote(str(value))


def double_quoted(text: str) -> str:
    """Upstream's quoting of COMMAND: `"<text with each " escaped as \\">"`.

    The text gets one round of bash double-quote processing when the file is sourced: `\\$X`
    stays `$X` for `sh -c` to expand, a bare `$X` is expanded then.
    """
    return '"' + text.replace('"', '\\"') + '"'


@dataclass
class RunContext:
    """What a runner may use: the job, its folder and store, and where its inputs were staged."""

    jobid: str
    run_json: dict
    store: ObjectStore
    folder: JobFolder
    log: JobLog
    container_runtime: str | None = None  # the usable runtime: `command` runs in container_image with it; engine runners give it to their steps
    inputs: dict[str, Any] = field(default_factory=dict)  # argname -> /data1 path(s), nested as object_key
    secondary_inputs: dict[str, Any] = field(default_factory=dict)

    @property
    def app(self) -> dict:
        return self.run_json["Job"]["App"]

    def view(self, text: str) -> str:
        """`text` as the job must see it (see JobFolder.view); apply it to every path you hand the job."""
        return self.folder.view(text)


class Runner(abc.ABC):
    """How one workflow language prepares, runs and reports its outputs (see the module docstring)."""

    def __init__(self, run_json: dict) -> None:
        self.run_json = run_json
        self.app: dict = run_json["Job"]["App"]

    @property
    def container_image(self) -> str:
        """The image `command` runs in when a runtime is usable; '' when the engine runs on the host."""
        return ""

    def prepare(self, ctx: RunContext) -> None:
        """Fetch workflow files and write the inputs file; nothing by default."""

    @abc.abstractmethod
    def exports(self, ctx: RunContext) -> dict[str, str]:
        """Variables to export before `command`: name -> bash word (use `literal` or `double_quoted`)."""

    @abc.abstractmethod
    def command(self, ctx: RunContext) -> str:
        """The bash text to run in /data1/<family> once the exports are sourced."""

    def output_files(self, ctx: RunContext) -> dict[str, dict]:
        """Argname-named outputs after a successful run; none by default."""
        return {}
