"""Helpers of the Airflow tests: a task-instance stand-in, running a DAG, reading its results."""
from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest import mock

REPO = Path(__file__).resolve().parents[3]


def context(dag_id: str = "dag", task_id: str = "task", run_id: str = "manual__2024-01-01T00:00:00+00:00",
            map_index: int = -1) -> dict[str, Any]:
    """What an operator reads from its context: a task instance that records XCom pushes."""
    ti = mock.MagicMock(dag_id=dag_id, task_id=task_id, run_id=run_id, map_index=map_index)
    ti.pushed = {}
    ti.xcom_push.side_effect = lambda key, value: ti.pushed.__setitem__(key, value)
    return {"ti": ti}


def load_dag(path: Path, dag_id: str):
    """The DAG `dag_id` as Airflow parses it from `path`."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(path))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id]


def run_dag(path: Path, dag_id: str, **run_conf: Any):
    """`dag.test()` one run; returns the DagRun (its task instances hold states and XComs)."""
    return load_dag(path, dag_id).test(run_conf=run_conf or None)


def xcom(dag_run, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
    """An XCom value a task of a finished `dag.test()` run pushed (None when it pushed none)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(XComModel.get_many(run_id=dag_run.run_id, key=key, dag_ids=dag_run.dag_id,
                                                 task_ids=task_id, map_indexes=map_index)).first()
        return XComModel.deserialize_value(row) if row is not None else None


def task_instance(dag_run, task_id: str, map_index: int = -1):
    """A task instance of a finished `dag.test()` run (its state and try_number)."""
    return next(ti for ti in dag_run.get_task_instances() if ti.task_id == task_id and ti.map_index == map_index)
