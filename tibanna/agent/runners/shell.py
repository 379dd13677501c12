"""Language `shell`: args.command run by `sh -c`, in container_image when a runtime is usable."""
from __future__ import annotations

from tibanna.agent.runners.base import RunContext, Runner, double_quoted, literal


class ShellRunner(Runner):
    """Upstream's shell job: `export COMMAND="..."` sourced by bash, then `sh -c "$COMMAND"`."""

    @property
    def container_image(self) -> str:
        return self.app.get("container_image") or ""

    def exports(self, ctx: RunContext) -> dict[str, str]:
        return {"COMMAND": double_quoted(ctx.view(self.app["command"])),
                "CONTAINER_IMAGE": literal(self.container_image)}

    def command(self, ctx: RunContext) -> str:
        return 'sh -c "$COMMAND"'
