"""The layers of docs/design.md 2, read from the source: what each part may import of the others."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_FOR_THE_PROVIDER = {"tibanna", "tibanna.core", "tibanna.exceptions", "tibanna.clock"}


def _imports(folder: Path) -> dict[str, set[str]]:
    """Module names imported by each file under `folder` (relative imports left out)."""
    found: dict[str, set[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        names = found.setdefault(str(path.relative_to(ROOT)), set())
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
    return found


@pytest.mark.parametrize("folder", ["tibanna_provider", "example_dags"])
def test_the_provider_and_the_examples_use_the_public_api_only(folder):
    beyond = {path: sorted(name for name in names if name.split(".")[0] == "tibanna"
                           and name not in PUBLIC_FOR_THE_PROVIDER)
              for path, names in _imports(ROOT / folder).items()}
    assert {path: names for path, names in beyond.items() if names} == {}


def test_the_core_never_imports_an_orchestrator_and_the_agent_never_a_backend():
    for path, names in _imports(ROOT / "tibanna").items():
        assert not {name for name in names if name.split(".")[0] in ("airflow", "prefect", "tibanna_provider")}, path
        if path.startswith("tibanna/agent/"):
            assert not [name for name in names if name.startswith("tibanna.backends")], path
