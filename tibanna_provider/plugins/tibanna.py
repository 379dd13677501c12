"""The `tibanna` plugin: the api-server serves a task's job files, so its extra links open; and
a deferred task a user marks failed or succeeded ends its jobs (`listener`).

Airflow's UI shows an extra link only when it is http(s) or same-origin, so a local job's
`file://` paths would not show. This plugin mounts a small FastAPI app on the api-server at
`/tibanna`:

    GET /tibanna/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/{name}?map_index=N

where `name` is `log`, `postrun` or `metrics`. It finds the task instance's job (the XCom the
operator pushed under `tibanna_job`: job id and connection id, only ids), then, on AWS, it
redirects to a freshly pre-signed URL of the log-bucket object (objects are never made public);
on the local backend (and a test's stub), it returns the file itself. The caller needs Airflow's
permission to read that DAG's task logs (the UI's session cookie or a bearer token). The pages are served
sandboxed (`Content-Security-Policy: sandbox`), so a job's files cannot act as the Airflow UI.
"""
from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import RedirectResponse, Response

from tibanna_provider.links.tibanna import JOB_XCOM_KEY, URL_PREFIX
from tibanna_provider.plugins import listener

MEDIA_TYPES = {"log": "text/plain; charset=utf-8", "postrun": "application/json",
               "metrics": "text/html; charset=utf-8"}
_HEADERS = {"Content-Security-Policy": "sandbox allow-scripts", "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store"}


def _task_job(dag_id: str, run_id: str, task_id: str, map_index: int) -> dict[str, Any] | None:
    """The job a task instance ran (its `tibanna_job` XCom), read from the metadata DB."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(XComModel.get_many(run_id=run_id, key=JOB_XCOM_KEY, dag_ids=dag_id,
                                                 task_ids=task_id, map_indexes=map_index)).first()
        return XComModel.deserialize_value(row) if row is not None else None


def _can_read_task_logs() -> Any:
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag

    return Depends(requires_access_dag(method="GET", access_entity=DagAccessEntity.TASK_LOGS))


def create_app() -> FastAPI:
    """The FastAPI app the plugin mounts at `/tibanna`."""
    app = FastAPI(title="Tibanna job files", description="A task's Tibanna job log, postrun JSON and "
                                                         "metrics report", openapi_url=None)

    @app.get("/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/{name}", dependencies=[_can_read_task_logs()])
    def job_file(dag_id: str, run_id: str, task_id: str, name: str, map_index: int = -1) -> Response:
        """One job file of a task instance: the file (local) or a redirect to a pre-signed URL (AWS)."""
        from tibanna_provider.hooks.tibanna import TibannaHook

        if name not in MEDIA_TYPES:
            raise HTTPException(404, f"no such job file {name!r}: one of {', '.join(MEDIA_TYPES)}")
        job = _task_job(dag_id, run_id, task_id, map_index)
        if not job:
            raise HTTPException(404, "this task instance has not started a Tibanna job")
        api = TibannaHook(job["conn_id"]).api
        if api.backend_name == "aws":
            return RedirectResponse(api.links(job["job_id"])[name], status_code=307, headers=_HEADERS)
        content = api.job_file(job["job_id"], name)
        if content is None:
            raise HTTPException(404, f"job {job['job_id']} has no {name} yet")
        return Response(content, media_type=MEDIA_TYPES[name], headers=_HEADERS)

    return app


class TibannaPlugin(AirflowPlugin):
    """Serves a task's Tibanna job files from the api-server, and ends the jobs of a deferred task a
    user ends (see the module docstring)."""

    name = "tibanna"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Tibanna job files"}]
    listeners = [listener]
