"""A rerun's description, made from the one its job kept: what `API.rerun` and `rerun_many` submit.

Upstream's rules: the kept description loses its job id, execution and run name; `rerun`'s flags
override its config (`ebs_size` in GB unless `<n>x`, gp2 drops `ebs_iops`, `use_spot` /
`do_not_use_spot`, `name` the run name); its secret input_env values, never kept, come from this
process's environment (docs/design.md 4). `rerun_many` picks jobs by the time they stopped.
"""
from __future__ import annotations

import copy
import datetime as dt
import os
from typing import Any

from tibanna import secret_env
from tibanna.exceptions import UserInputError


def of_app(description: dict, app_name: str | None) -> bool:
    """Whether a kept description is of the app `app_name` (any app when None)."""
    return not app_name or app_name in (description.get("app_name"), description.get("args", {}).get("app_name"))


def config_overrides(override_config: dict | None, *, use_spot: bool | None, do_not_use_spot: bool | None,
                     **fields: Any) -> dict:
    """`override_config` with rerun's config flags (`fields`, None for not given) applied upstream's way."""
    overrides = dict(override_config or {})
    overrides.update({field: value for field, value in fields.items() if value is not None})
    ebs_size = fields.get("ebs_size")
    if ebs_size is not None and not str(ebs_size).endswith("x"):
        overrides["ebs_size"] = int(ebs_size)
    if overrides.get("ebs_type") == "gp2":
        overrides["ebs_iops"] = ""
    if use_spot or do_not_use_spot:
        overrides["spot_instance"] = bool(use_spot)
    return overrides


def rerun_description(description: dict, overrides: dict) -> dict:
    """A copy of a kept description to submit again: a new job with `overrides` on its config."""
    template = copy.deepcopy(description)
    for field in ("jobid", "_tibanna"):
        template.pop(field, None)
    config = template.setdefault("config", {})
    config.pop("run_name", None)
    config.update(overrides)
    _restore_secrets(template)
    return template


def _restore_secrets(description: dict) -> None:
    """A rerun's secret input_env values, which were never kept: from this process's environment."""
    env = description.get("args", {}).get("input_env") or {}
    for name in secret_env.withheld_names(env):
        if name not in os.environ:
            raise UserInputError(f"args.input_env.{name}: a secret value is not kept after its job; "
                                 f"set {name} in the environment to rerun it")
        env[name] = os.environ[name]


def stop_cutoff(stopdate: str, stophour: int, stopminute: int, offset: int) -> float:
    """`rerun_many`'s time as epoch seconds: read in the system time zone, `offset` hours added, as
    python-api.rst defines it (with the system on UTC, stophour=12 and offset=5 mean 17:00 UTC)."""
    import pendulum

    try:
        day = dt.datetime.strptime(stopdate, "%d%b%Y")
        cutoff = pendulum.datetime(day.year, day.month, day.day, int(stophour), int(stopminute),
                                   tz=pendulum.local_timezone()).add(hours=int(offset))
    except (ValueError, TypeError) as err:
        raise UserInputError(f"stopdate/stophour/stopminute/offset: {err} (e.g. stopdate='14Feb2018', "
                             "stophour=15)") from None
    return cutoff.timestamp()
