"""Extra links of a task that ran a Tibanna job: its log, postrun JSON, metrics report and execution.

The operator stores each URL in XCom under the link's `xcom_key` as soon as the job is known, so
the links work while the job runs (Airflow 3's api-server reads them from there). The log,
postrun and metrics links point at the `tibanna` plugin on the api-server
(`tibanna_provider.plugins.tibanna`): same-origin, so the UI shows them, and on AWS the plugin
redirects to a freshly pre-signed URL. With `[api] base_url` set, the links are absolute under
it; else they are paths on the api-server's root. The execution link is the Step Functions
console page on AWS (none on local).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink, conf
from airflow.sdk.execution_time.xcom import XCom

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context
    from airflow.sdk.types import TaskInstanceKey

    from tibanna.core import API


URL_PREFIX = "/tibanna"  # where the plugin's app is mounted on the api-server
JOB_XCOM_KEY = "tibanna_job"  # the task instance's job: {"job_id": ..., "conn_id": ...}


def file_path(dag_id: str, run_id: str, task_id: str, map_index: int, name: str) -> str:
    """The path (on the api-server) at which the plugin serves one job file of a task instance."""
    query = f"?map_index={map_index}" if map_index >= 0 else ""
    return (f"{URL_PREFIX}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}/tasks/"
            f"{quote(task_id, safe='')}/{name}{query}")


class TibannaLink(BaseOperatorLink):
    """A link whose URL the operator stored with `persist_job_links`. A subclass gives its button's
    `name` and the `kind` of the job's link it shows (log, postrun, metrics or execution)."""

    name: ClassVar[str]
    kind: ClassVar[str]

    def __init_subclass__(cls, *, name: str, kind: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.name, cls.kind = name, kind

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return XCom.get_value(ti_key=ti_key, key=self.xcom_key) or ""


class TibannaJobLogLink(TibannaLink, name="Tibanna job log", kind="log"):
    """The job's log."""


class TibannaPostrunLink(TibannaLink, name="Tibanna postrun JSON", kind="postrun"):
    """The job's postrun JSON (what ran, where, with which resources), once the job ended."""


class TibannaMetricsReportLink(TibannaLink, name="Tibanna metrics report", kind="metrics"):
    """The job's metrics report (`<jobid>.metrics/metrics.html`), once plot_metrics has made it."""


class TibannaExecutionLink(TibannaLink, name="Tibanna execution", kind="execution"):
    """The job's Step Functions execution in the AWS console (nothing on the local backend)."""


JOB_LINKS = (TibannaJobLogLink, TibannaPostrunLink, TibannaMetricsReportLink, TibannaExecutionLink)


def job_link_urls(context: Context, api: API, job_id: str) -> dict[str, str]:
    """The URL of each link of the task instance's job ('' shows no link)."""
    ti = context["ti"]
    base = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    urls = {kind: base + file_path(ti.dag_id, ti.run_id, ti.task_id, ti.map_index, kind)
            for kind in ("log", "postrun", "metrics")}
    return urls | {"execution": api.links(job_id)["execution"]}


def persist_job_links(context: Context, api: API, job_id: str, conn_id: str,
                      links: tuple[type[TibannaLink], ...] = JOB_LINKS) -> None:
    """Record the task instance's job (ids only, for the plugin) and store its links' URLs."""
    ti = context["ti"]
    ti.xcom_push(key=JOB_XCOM_KEY, value={"job_id": job_id, "conn_id": conn_id})
    urls = job_link_urls(context, api, job_id)
    for link in links:
        ti.xcom_push(key=link().xcom_key, value=urls[link.kind])
