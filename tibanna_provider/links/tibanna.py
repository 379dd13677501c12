"""Extra links of a task that ran a Tibanna job: its log, its metrics report, its execution (AWS).

The operator stores each URL in XCom under the link's `xcom_key` as soon as the job is known, so
the links work while the job runs; the API server reads them from there.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from airflow.sdk import BaseOperatorLink
from airflow.sdk.execution_time.xcom import XCom

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context
    from airflow.sdk.types import TaskInstanceKey


class TibannaLink(BaseOperatorLink):
    """A link whose URL the operator stored with `persist`."""

    name: ClassVar[str]
    kind: ClassVar[str]  # which of TibannaHook.links() it shows

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return XCom.get_value(ti_key=ti_key, key=self.xcom_key) or ""

    @classmethod
    def persist(cls, context: Context, urls: dict[str, str]) -> None:
        """Store this link's URL (from `TibannaHook.links`; '' shows no link) for the running task instance."""
        context["ti"].xcom_push(key=cls().xcom_key, value=urls.get(cls.kind, ""))


class TibannaJobLogLink(TibannaLink):
    """The job's log in its log bucket."""

    name = "Tibanna job log"
    kind = "log"


class TibannaMetricsReportLink(TibannaLink):
    """The job's metrics report (`<jobid>.metrics/metrics.html`), once plot_metrics has made it."""

    name = "Tibanna metrics report"
    kind = "metrics"


class TibannaExecutionLink(TibannaLink):
    """The job's Step Functions execution in the AWS console (nothing on the local backend)."""

    name = "Tibanna execution"
    kind = "execution"


JOB_LINKS = (TibannaJobLogLink, TibannaMetricsReportLink, TibannaExecutionLink)


def persist_job_links(context: Context, urls: dict[str, str]) -> None:
    """Store every link URL of one job."""
    for link in JOB_LINKS:
        link.persist(context, urls)
