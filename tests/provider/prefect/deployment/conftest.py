"""A real Prefect deployment for the session: `prefect server start` on 127.0.0.1 and a free port (its own
PREFECT_HOME), the settings block registered, every shipped flow served by `flow.serve` in one process and
deployed to a process work pool with a `prefect worker` polling it.

Where the server cannot start, the tests skip with the reason; under CI (CI=true) that is a failure.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from jobhelpers import free_port, unavailable
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.objects import FlowRun
from prefect.exceptions import ObjectNotFound

HERE = Path(__file__).resolve().parent
PREFECT = Path(sys.executable).with_name("prefect")
POOL = "tibanna-tests"
STARTUP_SECONDS = 240  # the server, the served deployments and the worker (~15 s; minutes on a crowded machine)
RUN_SECONDS = 300  # a flow run, from creation to its final state


@dataclass
class Deployment:
    """The running deployment: its API, environment and processes."""

    api_url: str
    env: dict[str, str]
    logs: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, *args: str | Path) -> subprocess.Popen:
        """A process of the deployment, its output in logs/<name>.log, in its own process group."""
        with open(self.logs / f"{name}.log", "wb") as out:
            process = subprocess.Popen([str(a) for a in args], env=self.env, cwd=HERE, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self.processes[name] = process
        return process

    def run(self, name: str, *args: str | Path, timeout: float = RUN_SECONDS) -> subprocess.CompletedProcess:
        """A command against the deployment (the `prefect` CLI, a script), to its end."""
        return subprocess.run([str(a) for a in args], env=self.env, cwd=HERE, capture_output=True, text=True,
                              timeout=timeout)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def client(self) -> SyncPrefectClient:
        return SyncPrefectClient(self.api_url)

    def registered(self, deployment: str) -> UUID:
        """The id of deployment `<flow>/<name>`, once the serve process or the deploy script registered it."""
        deadline = time.monotonic() + STARTUP_SECONDS
        with self.client() as client:
            while True:
                try:
                    return client.read_deployment_by_name(deployment).id
                except ObjectNotFound:
                    if time.monotonic() > deadline:
                        raise AssertionError(f"no deployment {deployment}; serve log:\n{self.log('serve')[-3000:]}"
                                             f"\ndeploy log:\n{self.log('deploy')[-3000:]}") from None
                    time.sleep(1)

    def create_run(self, deployment: str, parameters: dict[str, Any]) -> UUID:
        """Start a flow run of deployment `<flow>/<name>`."""
        deployment_id = self.registered(deployment)
        with self.client() as client:
            return client.create_flow_run_from_deployment(deployment_id, parameters=parameters).id

    def final(self, flow_run_id: UUID, timeout: float = RUN_SECONDS) -> FlowRun:
        """The flow run once its state is final."""
        deadline = time.monotonic() + timeout
        with self.client() as client:
            while True:
                flow_run = client.read_flow_run(flow_run_id)
                if flow_run.state is not None and flow_run.state.is_final():
                    return flow_run
                assert time.monotonic() < deadline, f"flow run {flow_run_id} still {flow_run.state}"
                time.sleep(1)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return json.loads(response.read()) is True
    except (OSError, ValueError):
        return False


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    if not PREFECT.exists():
        unavailable("the Prefect server", f"no prefect command next to {sys.executable}")
    root = tmp_path_factory.mktemp("prefect-deployment")
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(root / "prefect-home"), "PREFECT_API_URL": api_url,
           "PREFECT_SERVER_API_HOST": "127.0.0.1", "PREFECT_SERVER_API_PORT": str(port),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
           "PREFECT_TELEMETRY_ENABLE_RESOURCE_METRICS": "false", "PYTHONUNBUFFERED": "1"}
    env.pop("PREFECT_PROFILES_PATH", None)
    (root / "logs").mkdir()
    deployed = Deployment(api_url, env, root / "logs")
    try:
        server = deployed.start("server", PREFECT, "server", "start")
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _healthy(api_url):
            if server.poll() is not None or time.monotonic() > deadline:
                unavailable("the Prefect server", f"prefect server did not start on {api_url}: {deployed.log('server')[-1500:]}")
            time.sleep(0.5)
        registered = deployed.run("register", PREFECT, "block", "register", "-m", "tibanna_provider.prefect")
        assert registered.returncode == 0, registered.stdout + registered.stderr
        with deployed.client() as client:
            client.create_work_pool(WorkPoolCreate(name=POOL, type="process"))
        deployed.start("serve", sys.executable, HERE / "served_flows.py", "serve")
        deployed.start("worker", PREFECT, "worker", "start", "--pool", POOL)
        deployed.start("deploy", sys.executable, HERE / "served_flows.py", "deploy", POOL)
        yield deployed
    finally:
        deployed.stop()
