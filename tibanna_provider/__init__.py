"""Tibanna for Airflow and Prefect: hooks, operators, sensors, triggers, links (and `prefect/`).

Airflow finds this provider through the `apache_airflow_provider` entry point, which calls
`get_provider_info`; it must stay cheap to import (no Airflow, no backend).
"""
from __future__ import annotations

from typing import Any

from tibanna import __version__

INTEGRATION = "Tibanna"
CONNECTION_EXTRAS = ("backend", "sfn", "region", "aws_conn_id", "profile", "tibanna_home")


def get_provider_info() -> dict[str, Any]:
    """What `airflow providers list/get` shows and what the UI needs for the `tibanna` connection."""
    return {
        "package-name": "tibanna",  # must equal the distribution's canonical name
        "name": "Tibanna",
        "description": "Run CWL, WDL, Snakemake and shell jobs one machine per job (local or AWS) "
                       "from Airflow: submit, wait (deferrable), kill, rerun, metrics and cost.",
        "versions": [__version__],
        "integrations": [{"integration-name": INTEGRATION,
                          "external-doc-url": "https://tibanna.readthedocs.io/",
                          "tags": ["software"]}],
        "hooks": [{"integration-name": INTEGRATION, "python-modules": ["tibanna_provider.hooks.tibanna"]}],
        "operators": [{"integration-name": INTEGRATION, "python-modules": ["tibanna_provider.operators.tibanna"]}],
        "sensors": [{"integration-name": INTEGRATION, "python-modules": ["tibanna_provider.sensors.tibanna"]}],
        "triggers": [{"integration-name": INTEGRATION, "python-modules": ["tibanna_provider.triggers.tibanna"]}],
        "extra-links": [
            "tibanna_provider.links.tibanna.TibannaJobLogLink",
            "tibanna_provider.links.tibanna.TibannaPostrunLink",
            "tibanna_provider.links.tibanna.TibannaMetricsReportLink",
            "tibanna_provider.links.tibanna.TibannaExecutionLink",
        ],
        "connection-types": [{
            "connection-type": "tibanna",
            "hook-class-name": "tibanna_provider.hooks.tibanna.TibannaHook",
            "hook-name": "Tibanna",
            "ui-field-behaviour": {
                "hidden-fields": ["host", "port", "login", "password", "schema"],
                "relabeling": {},
                "placeholders": {"extra": '{"backend": "local", "tibanna_home": "/data/tibanna"}'},
            },
            "conn-fields": {
                "backend": {"label": "Backend", "description": "Where jobs run: local or aws",
                            "schema": {"type": "string", "enum": ["local", "aws"], "default": "local"}},
                "sfn": {"label": "Step function", "description": "Default step function (unicorn) for submissions",
                        "schema": {"type": ["string", "null"]}},
                "region": {"label": "AWS region", "description": "aws backend: the region of the unicorn",
                           "schema": {"type": ["string", "null"]}},
                "aws_conn_id": {"label": "AWS connection id",
                                "description": "aws backend: take credentials from this Airflow connection",
                                "schema": {"type": ["string", "null"]}},
                "profile": {"label": "AWS profile", "description": "aws backend: a named profile instead",
                            "schema": {"type": ["string", "null"]}},
                "tibanna_home": {"label": "TIBANNA_HOME", "description": "local backend: its index and buckets",
                                 "schema": {"type": ["string", "null"]}},
            },
        }],
    }
