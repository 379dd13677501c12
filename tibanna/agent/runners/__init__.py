"""Runners by language family; `runner_for` picks the one for a job's language."""
from __future__ import annotations

from tibanna import protocol
from tibanna.agent.runners.base import RunContext, Runner
from tibanna.agent.runners.cwl import CwlRunner
from tibanna.agent.runners.shell import ShellRunner
from tibanna.agent.runners.snakemake import SnakemakeRunner
from tibanna.agent.runners.wdl import WdlRunner
from tibanna.exceptions import TibannaError

RUNNERS: dict[str, type[Runner]] = {"shell": ShellRunner, "cwl": CwlRunner, "wdl": WdlRunner,
                                    "snakemake": SnakemakeRunner}

__all__ = ["RUNNERS", "RunContext", "Runner", "runner_for"]


def runner_for(language: str) -> type[Runner]:
    """The runner class for a language (cwl_v1, wdl*, snakemake, shell)."""
    family = protocol.language_family(language)
    try:
        return RUNNERS[family]
    except KeyError:
        raise TibannaError(f"this agent has no runner for language {language!r} yet") from None
