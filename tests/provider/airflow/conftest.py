"""Airflow test set-up: a throw-away AIRFLOW_HOME, set before anything imports airflow.

The example DAGs are the `dags-folder` bundle; DAGs only the tests need live in a second bundle
(`tests/provider/airflow/dags`). The metadata DB is reset once per session.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
TEST_DAGS = Path(__file__).resolve().parent / "dags"
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="tibanna-airflow-home-")

os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "example_dags")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps([
    {"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle", "kwargs": {}},
    {"name": "tibanna-test-dags", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
     "kwargs": {"path": str(TEST_DAGS)}},
])


@pytest.fixture(scope="session", autouse=True)
def airflow_db():
    """A fresh metadata DB for the session; AIRFLOW_HOME is removed afterwards."""
    from airflow.utils import db

    db.resetdb()
    yield
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)
