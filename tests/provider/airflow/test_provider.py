"""Registration: the entry point, the provider info schema, and what Airflow's ProvidersManager sees."""
from __future__ import annotations

import importlib
import json
from importlib.metadata import entry_points
from pathlib import Path

import jsonschema

from tibanna_provider import get_provider_info


def test_entry_point_gives_the_provider_info():
    (point,) = [p for p in entry_points(group="apache_airflow_provider") if p.value.startswith("tibanna_provider")]
    assert point.load() is get_provider_info
    assert get_provider_info()["package-name"] == "tibanna"  # the distribution's canonical name


def test_provider_info_is_valid_and_names_real_classes():
    import airflow

    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    info = get_provider_info()
    jsonschema.validate(info, schema)
    modules = [m for kind in ("hooks", "operators", "sensors", "triggers") for entry in info[kind]
               for m in entry["python-modules"]]
    for module in modules:
        importlib.import_module(module)
    for path in info["extra-links"] + [c["hook-class-name"] for c in info["connection-types"]]:
        module, _, name = path.rpartition(".")
        assert getattr(importlib.import_module(module), name)


def test_providers_manager_lists_provider_connection_type_triggers_and_links():
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    manager = ProvidersManager()
    assert manager.providers["tibanna"].version == get_provider_info()["versions"][0]
    hook = ProvidersManagerTaskRuntime().hooks["tibanna"]
    assert (hook.hook_class_name, hook.connection_id_attribute_name) == (
        "tibanna_provider.hooks.tibanna.TibannaHook", "tibanna_conn_id")
    assert "tibanna_provider.triggers.tibanna" in [t.trigger_class_name for t in manager.trigger]
    assert "tibanna_provider.links.tibanna.TibannaJobLogLink" in manager.extra_links_class_names


def test_the_plugin_mounts_the_job_files_app_and_the_form_offers_a_backend():
    from airflow import plugins_manager
    from airflow.providers_manager import ProvidersManager

    (point,) = [p for p in entry_points(group="airflow.plugins") if p.value.startswith("tibanna_provider")]
    assert point.load().name == "tibanna"
    apps, _ = plugins_manager.get_fastapi_plugins()
    (app,) = [a for a in apps if a["name"] == "Tibanna job files"]
    assert app["url_prefix"] == "/tibanna"
    widget = ProvidersManager().connection_form_widgets["extra__tibanna__backend"]
    assert widget.field["value"] == "local" and widget.field["schema"]["enum"] == ["local", "aws"]
