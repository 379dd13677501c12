"""Names users see on both backends (docs/design.md 3.5): step functions and their Lambdas.

Upstream's naming, so a user's scripts and habits carry over: `tibanna_unicorn[_<group>][_<suffix>]`,
`run_task_awsem[_<group>][_<suffix>]` and `check_task_awsem...`, and `<sfn>_costupdater` with its
`update_cost_awsem...`. The AWS-only names (IAM, DynamoDB, tags) are in backends/aws/names.py.
"""
from __future__ import annotations

SFN_PREFIX = "tibanna_unicorn"
DEFAULT_SFN = SFN_PREFIX  # the step function used when none is given or set (settings.DEFAULT_SFN)
RUN_TASK = "run_task_awsem"
CHECK_TASK = "check_task_awsem"
UPDATE_COST = "update_cost_awsem"
LAMBDAS = (RUN_TASK, CHECK_TASK)  # the unicorn's, which deploy_core('all') deploys
ALL_LAMBDAS = (*LAMBDAS, UPDATE_COST)  # and the cost updater's (deploy_unicorn(deploy_costupdater=True))
COSTUPDATER_SUFFIX = "_costupdater"


def suffix(sfx: str | None, usergroup: str | None) -> str:
    """Upstream's create_tibanna_suffix: `_<group>_<suffix>`, `_<suffix>`, `_<group>` or ''."""
    return "".join(f"_{part}" for part in (usergroup, sfx) if part)


def sfn_name(usergroup: str | None, sfx: str | None = None) -> str:
    """`tibanna_unicorn[_<group>][_<suffix>]`."""
    return SFN_PREFIX + suffix(sfx, usergroup)


def costupdater_name(sfn: str) -> str:
    """`<sfn>_costupdater`: the cost updater of a unicorn."""
    return sfn + COSTUPDATER_SUFFIX


def lambda_name(kind: str, usergroup: str | None, sfx: str | None = None) -> str:
    """`run_task_awsem[_<group>][_<suffix>]`, `check_task_awsem...` or `update_cost_awsem...`."""
    return kind + suffix(sfx, usergroup)
