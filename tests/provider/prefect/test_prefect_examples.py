"""The example flows in example_dags/ end to end, and every code example in the docstrings, run as written."""
from __future__ import annotations

import importlib.util
import inspect
import re
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

import tibanna_provider.prefect as tibanna_prefect
from prefect_helpers import all_jobs, read_object

EXAMPLES = Path(__file__).resolve().parents[3] / "example_dags"

pytestmark = pytest.mark.usefixtures("prefect_server")


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_job_flow(home):
    summary = load_example("tibanna_one_job_flow").one_job(name="prefect", poll_interval=0.5)
    assert read_object(home, "tibanna-data", "hello/hello.txt") == "hello prefect\n"
    assert summary["output_files"]["file:///data1/out/hello.txt"]["target"] == "hello/hello.txt"
    assert summary["metrics_report"].endswith("metrics.html")
    assert (home / "buckets" / "tibanna-logs" / f"{summary['jobid']}.metrics" / "metrics.html").exists()
    assert [(r["jobid"], r["status"]) for r in all_jobs()] == [(summary["jobid"], "SUCCEEDED")]


def test_fan_out_flow_joins_twenty_jobs(home):
    summary = load_example("tibanna_fan_out_flow").fan_out(poll_interval=0.5)
    assert read_object(home, "tibanna-data", "fan-out/joined.txt").split() == [str(i * i) for i in range(20)]
    assert read_object(home, "tibanna-data", "fan-out/part-07.txt") == "49\n"
    rows = all_jobs()
    assert len(rows) == 21 and {r["status"] for r in rows} == {"SUCCEEDED"}
    assert rows[0]["jobid"] == summary["jobid"]  # the join came last


def _code_examples() -> list:
    """Every ```python block in the exported tasks' and flows' docstrings (the block's needs a saved block)."""
    found = []
    for name in sorted(set(tibanna_prefect.__all__) - {"TibannaSettings"}):
        doc = inspect.getdoc(getattr(tibanna_prefect, name)) or ""
        codes = re.findall(r"```python\n(.*?)```", doc, re.S)
        found += [pytest.param(textwrap.dedent(code), id=name) for code in codes]
    return found


@pytest.mark.parametrize("code", _code_examples())
def test_docstring_example_runs(home, code):
    exec(compile(code, "<docstring example>", "exec"), {"__name__": "docstring_example"})
