"""Languages wdl, wdl_v1, wdl_draft2: miniwdl runs the workflow on the host.

Upstream runs cromwell (or caper); this agent drives miniwdl, which reads the same inputs JSON
(`inputs.yml`: plain paths, nested as the object keys) and names outputs as cromwell does
(`<workflow>.<call>.<output>` without an output section). Its tasks run in docker or podman when
usable, else on the host through the miniwdl-backend-bare plugin.

With either runtime, miniwdl's `podman` backend runs the tasks: it is a plain single-host
`<exe> run --rm -v ...` per task. miniwdl's default backend for docker (`docker_swarm`) would
run `docker swarm init` on the user's daemon, making it a swarm manager with a new
`docker_gwbridge` network, and leave it so. The podman backend always pulls first; the agent's
runtime shim on PATH (see container.write_shim) skips that pull when the image is present, so
local-only images work, and gives each task's container the job's label and cgroup parent.
"""
from __future__ import annotations

import importlib.util
from typing import Any

from tibanna.agent.folder import DATA1
from tibanna.agent.runners.base import RunContext, literal
from tibanna.agent.runners.workflow_files import EngineRunner, job_path, missing_extra

ENGINE = "miniwdl"
RUN_DIR = f"{DATA1}/wdl/run"  # miniwdl's run folder (upstream: cromwell-executions under /data1/wdl)
_BACKENDS = {None: {"MINIWDL__SCHEDULER__CONTAINER_BACKEND": "bare"},
             **{runtime: {"MINIWDL__SCHEDULER__CONTAINER_BACKEND": "podman", "MINIWDL__PODMAN__EXE": f'["{runtime}"]'}
                for runtime in ("docker", "podman")}}


class WdlRunner(EngineRunner):
    family, engine, extra = "wdl", ENGINE, "wdl"

    def check_engine(self, ctx: RunContext) -> None:
        """miniwdl, and its bare backend when no runtime is usable; a workflow_engine it replaces is logged."""
        super().check_engine(ctx)
        requested = self.app.get("workflow_engine") or ENGINE
        if requested != ENGINE:
            passed = "; run_args are passed to miniwdl as given" if self.app.get("run_args") else ""
            ctx.log.info(f"workflow_engine {requested} is not available to this agent, which runs WDL with "
                         f"{ENGINE}: the workflow runs on {ENGINE}{passed}")
        if ctx.container_runtime is not None:
            ctx.log.info(f"{ENGINE} runs the workflow's tasks with {ctx.container_runtime}")
            return
        if importlib.util.find_spec("miniwdl_backend_bare") is None:
            raise missing_extra(ctx, "miniwdl-backend-bare when no container runtime is usable", self.extra)
        ctx.log.info(f"no container runtime is usable: {ENGINE} runs each task on the host "
                     "(miniwdl-backend-bare); the tasks' docker images were not used")

    def input_value(self, ctx: RunContext, path: str) -> str:
        return path

    def exports(self, ctx: RunContext) -> dict[str, str]:
        words = {"WDL_URL": self.app["wdl_url"], "MAIN_WDL": self.app["main_wdl"],
                 "WDL_FILES": self.app["other_wdl_files"], "RUN_ARGS": ctx.view(self.app.get("run_args") or ""),
                 **_BACKENDS[ctx.container_runtime]}
        return {name: literal(value) for name, value in words.items()}

    def command(self, ctx: RunContext) -> str:
        return ctx.view(f'{ENGINE} run "$MAIN_WDL" -i inputs.yml --dir {RUN_DIR}/. $RUN_ARGS '
                        f"> {self.output_object_path(ctx)}")

    def outputs_from(self, ctx: RunContext, document: Any) -> dict[str, dict]:
        """miniwdl's {"outputs": {name: value}}: file outputs (paths) only; an unrun conditional's is null."""
        outputs = document.get("outputs") if isinstance(document, dict) else None
        return {name: {"path": job_path(ctx, value)} for name, value in (outputs or {}).items()
                if isinstance(value, str) and value.startswith("/")}
