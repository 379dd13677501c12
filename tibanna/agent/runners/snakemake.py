"""Language snakemake: the workflow files are fetched into /data1/snakemake, then `command` runs there.

As upstream, `command` (e.g. `snakemake --cores 1`) runs like a shell job's: in container_image
when a runtime is usable, else on the host, which then needs snakemake installed.
"""
from __future__ import annotations

from tibanna.agent.runners.base import RunContext, literal
from tibanna.agent.runners.shell import ShellRunner
from tibanna.agent.runners.workflow_files import fetch_workflow, require_executable


class SnakemakeRunner(ShellRunner):
    def prepare(self, ctx: RunContext) -> None:
        if ctx.container_runtime is None:
            require_executable(ctx, "snakemake", "snakemake")
        fetch_workflow(ctx, "snakemake")

    def exports(self, ctx: RunContext) -> dict[str, str]:
        return {"SNAKEMAKE_URL": literal(self.app["snakemake_url"]),
                "MAIN_SNAKEMAKE": literal(self.app["main_snakemake"]),
                "SNAKEMAKE_FILES": literal(self.app["other_snakemake_files"]), **super().exports(ctx)}
