"""The settings table: every environment variable the project reads is in it, and read through it."""
from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest

from tibanna import settings
from tibanna.exceptions import TibannaError

REPO = Path(__file__).resolve().parent.parent
SOURCES = sorted(p for package in ("tibanna", "tibanna_provider") for p in (REPO / package).rglob("*.py"))
NAMES = {setting.name for setting in settings.SETTINGS}


def _is_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ"
            and isinstance(node.value, ast.Name) and node.value.id == "os")


def environment_reads(path: Path) -> list[tuple[int, str]]:
    """(line, variable) of each read of a named variable: os.environ.get/[]/in and os.getenv, with
    the name a string or a module constant (a name only known at run time is not counted)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    constants = {target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
                 for target in node.targets if isinstance(target, ast.Name)
                 and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}

    def name_of(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        return constants.get(node.id) if isinstance(node, ast.Name) else None

    found = []
    for node in ast.walk(tree):
        key = None
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in ("get", "pop") and _is_environ(func.value):
                key = node.args[0]
            elif isinstance(func, ast.Attribute) and func.attr == "getenv":
                key = node.args[0]
        elif isinstance(node, ast.Subscript) and _is_environ(node.value) and isinstance(node.ctx, ast.Load):
            key = node.slice
        elif isinstance(node, ast.Compare) and any(_is_environ(c) for c in node.comparators):
            key = node.left
        name = name_of(key) if key is not None else None
        if name is not None:
            found.append((node.lineno, name))
    return found


def test_no_setting_is_read_outside_the_settings_module():
    direct = [f"{path.relative_to(REPO)}:{line}: {name}" for path in SOURCES if path != REPO / "tibanna" / "settings.py"
              for line, name in environment_reads(path) if name in NAMES]
    assert direct == [], "read these through tibanna.settings:\n" + "\n".join(direct)


def test_every_variable_read_is_a_setting_or_listed_plumbing():
    unlisted = [f"{path.relative_to(REPO)}:{line}: {name}" for path in SOURCES
                for line, name in environment_reads(path) if name not in NAMES and name not in settings.PLUMBING]
    assert unlisted == [], "add these to tibanna/settings.py (SETTINGS or PLUMBING):\n" + "\n".join(unlisted)
    assert not NAMES & set(settings.PLUMBING) and len(NAMES) == len(settings.SETTINGS)


def test_the_scan_sees_each_way_of_reading(tmp_path):
    source = tmp_path / "reader.py"
    source.write_text('import os\nVAR = "TIBANNA_HOME"\na = os.environ.get(VAR)\nb = os.environ["SUBNETS"]\n'
                      'c = "AWS_REGION" in os.environ\nd = os.getenv("PATH")\nos.environ["X"] = "written"\n')
    assert environment_reads(source) == [(3, "TIBANNA_HOME"), (4, "SUBNETS"), (5, "AWS_REGION"), (6, "PATH")]


@pytest.mark.parametrize("setting", settings.SETTINGS, ids=lambda s: s.name)
def test_unset_or_empty_is_the_default(setting, monkeypatch):
    assert setting.meaning.endswith(".") and setting.name.isupper()
    monkeypatch.delenv(setting.name, raising=False)
    assert setting.get() == setting.default
    monkeypatch.setenv(setting.name, "")
    assert setting.get() == setting.default
    monkeypatch.setenv(setting.name, "given")
    assert setting.get() == "given"


def test_typed_reads(monkeypatch):
    monkeypatch.setenv("TIBANNA_SUPERVISOR_IDLE_SECONDS", "2.5")
    assert settings.TIBANNA_SUPERVISOR_IDLE_SECONDS.seconds() == 2.5
    monkeypatch.delenv("TIBANNA_IDLE_WINDOW_SECONDS", raising=False)
    assert settings.TIBANNA_IDLE_WINDOW_SECONDS.seconds() == 3600.0
    monkeypatch.setenv("TIBANNA_CONTAINER_WAIT", "soon")
    with pytest.raises(TibannaError, match="TIBANNA_CONTAINER_WAIT must be a number of seconds, not 'soon'"):
        settings.TIBANNA_CONTAINER_WAIT.seconds()
    monkeypatch.delenv("TIBANNA_SECRETS_DIR", raising=False)
    assert settings.TIBANNA_SECRETS_DIR.seconds() is None and settings.TIBANNA_SECRETS_DIR.path() is None
    monkeypatch.setenv("HOME", "/home/someone")
    monkeypatch.delenv("TIBANNA_HOME", raising=False)
    assert settings.TIBANNA_HOME.path() == Path("/home/someone/.tibanna")
    monkeypatch.setenv("SUBNETS", "subnet-a,subnet-b")
    assert settings.SUBNETS.words() == ["subnet-a", "subnet-b"]
    monkeypatch.delenv("SUBNETS")
    assert settings.SUBNETS.words() == []


def test_the_parser_gets_the_account_defaults_from_the_environment(monkeypatch):
    monkeypatch.setenv("S3_ENCRYPT_KEY_ID", "kms-123")
    monkeypatch.setenv("SUBNETS", "subnet-a,subnet-b")
    monkeypatch.setenv("SECURITY_GROUPS", "sg-1,sg-2")
    assert settings.description_defaults() == {"kms_key_id": "kms-123", "subnets": ["subnet-a", "subnet-b"],
                                               "security_groups": ["sg-1", "sg-2"]}
    for name in ("S3_ENCRYPT_KEY_ID", "SUBNETS", "SECURITY_GROUPS"):
        monkeypatch.delenv(name)
    assert settings.description_defaults() == {"kms_key_id": None, "subnets": [], "security_groups": []}


def test_the_readers_honour_their_settings(monkeypatch, tmp_path):
    from tibanna.agent import container
    from tibanna.backends.aws.lambdas.check_task_awsem import idle_window
    from tibanna.backends.local import LocalBackend
    from tibanna.core import API

    monkeypatch.setenv("TIBANNA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TIBANNA_DEFAULT_STEP_FUNCTION_NAME", "tibanna_unicorn_lab")
    backend = LocalBackend()
    assert backend.home.root == tmp_path / "home" and backend.default_sfn() == "tibanna_unicorn_lab"
    monkeypatch.delenv("TIBANNA_DEFAULT_STEP_FUNCTION_NAME")
    assert backend.default_sfn() == "tibanna_unicorn"
    monkeypatch.setenv("TIBANNA_BACKEND", "aws")
    assert API().backend_name == "aws" and API(backend="local").backend_name == "local"
    monkeypatch.setenv("TIBANNA_CONTAINER_RUNTIME", "none")
    assert container.requested_runtime(None, {"container_runtime": "docker"}) == "none"
    assert container.requested_runtime("podman", {}) == "podman"
    monkeypatch.setenv("TIBANNA_CONTAINER_WAIT", "-3")
    assert container.wait_seconds() == 0.0
    monkeypatch.setenv("TIBANNA_IDLE_WINDOW_SECONDS", "90")
    assert idle_window() == dt.timedelta(seconds=90)
