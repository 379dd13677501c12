"""The settings block: where Tibanna jobs run, saved once and loaded by name in flows."""
from __future__ import annotations

from typing import Literal

from prefect.blocks.core import Block
from pydantic import Field

from tibanna.core import API


class TibannaSettings(Block):
    """Where Tibanna jobs run: backend, step function, AWS region and profile, TIBANNA_HOME.

    An empty field falls back to what `API()` reads from the environment (`TIBANNA_BACKEND`,
    `TIBANNA_DEFAULT_STEP_FUNCTION_NAME`, `TIBANNA_HOME`, the AWS defaults).

    Example:
        Save settings once (`TibannaSettings(backend="aws", region="us-east-1").save("lab")`),
        then load them by name and hand them to the tasks:
        ```python
        from prefect import flow
        from tibanna_provider.prefect import TibannaSettings, stat

        settings = TibannaSettings.load("BLOCK_NAME")

        @flow
        def running_jobs() -> list[dict]:
            return stat(status="RUNNING", settings=settings)

        running_jobs()
        ```
    """

    _block_type_name = "Tibanna Settings"
    _documentation_url = "https://tibanna.readthedocs.io/"  # type: ignore[assignment]

    backend: Literal["local", "aws"] | None = Field(
        default=None, description="Where jobs run: local or aws; empty means TIBANNA_BACKEND, else local.")
    step_function: str | None = Field(
        default=None, description="The step function (unicorn) jobs go to; empty means the default one.")
    region: str | None = Field(
        default=None, description="AWS region of the step function (aws backend only).")
    profile: str | None = Field(
        default=None, description="AWS profile whose credentials are used (aws backend only).")
    tibanna_home: str | None = Field(
        default=None, description="Folder of the local index and buckets (local backend only); empty means "
                                  "TIBANNA_HOME, else ~/.tibanna.")

    def get_api(self) -> API:
        """A fresh `API` for these settings (one per call: its index connection is not shared between tasks)."""
        return API.from_settings(self.backend, home=self.tibanna_home, region=self.region, profile=self.profile,
                                 sfn=self.step_function)
