"""A real Airflow deployment for the tests: api-server, dag-processor, scheduler and triggerer.

Started once per session as separate processes, as a user runs them: LocalExecutor on SQLite,
the api-server on 127.0.0.1 with a free port, the scheduler and triggerer without their log
servers. DAG runs are triggered through the REST API v2 with a token from `/auth/token` (the
simple auth manager's generated admin password). Every process shares one TIBANNA_HOME, so the
test reads the jobs the DAGs started with `tibanna.core.API`.

When Airflow cannot start here, the tests skip with the reason; under CI (CI=true) they fail.
All these tests are in one xdist group, so one worker runs them while the other runs the rest.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from jobhelpers import free_port, kill_supervisor, unavailable

REPO = Path(__file__).resolve().parents[4]
DEPLOYMENT_DAGS = Path(__file__).resolve().parent / "dags"
BIN = Path(sys.executable).parent
COMPONENTS = (["api-server"], ["dag-processor"], ["scheduler", "--skip-serve-logs"],
              ["triggerer", "--skip-serve-logs"])
STARTUP_TIMEOUT = 240.0  # a loaded machine (make test on 2 cores) starts Airflow slowly
DAG_IDS = ("tibanna_quick_mapped", "tibanna_clear_me", "tibanna_kill_me", "tibanna_run_and_plot_metrics",
           "tibanna_fan_out_and_join", "tibanna_rerun_on_failure")


class Deployment:
    """The running deployment: its REST API (authenticated) and its TIBANNA_HOME."""

    def __init__(self, root: Path, port: int, env: dict[str, str]) -> None:
        self.root, self.port, self.env = root, port, env
        self.base_url = f"http://127.0.0.1:{port}"
        self.tibanna_home = Path(env["TIBANNA_HOME"])
        self.processes: list[subprocess.Popen] = []
        self.client = httpx.Client(base_url=self.base_url, timeout=120)

    # Running it ------------------------------------------------------------------------------
    def start(self) -> None:
        logs = self.root / "logs"
        logs.mkdir()
        migrate = subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=self.env, capture_output=True,
                                 text=True, timeout=180)
        if migrate.returncode != 0:
            unavailable("the Airflow deployment", f"airflow db migrate failed: {migrate.stderr[-2000:]}")
        for args in COMPONENTS:
            out = open(logs / f"{args[0]}.log", "wb")
            self.processes.append(subprocess.Popen([str(BIN / "airflow"), *args], env=self.env, stdout=out,
                                                   stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self._healthy():
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                unavailable("the Airflow deployment", f"the api-server did not become healthy; logs:\n{self.logs_tail()}")
            time.sleep(0.5)
        self.client.headers["Authorization"] = f"Bearer {self.token()}"
        for dag_id in DAG_IDS:
            self.wait_for(lambda d=dag_id: self.client.get(f"/api/v2/dags/{d}").status_code == 200,
                          f"DAG {dag_id} parsed", timeout=STARTUP_TIMEOUT)

    def _healthy(self) -> bool:
        try:
            health = self.client.get("/api/v2/monitor/health").json()
        except (httpx.HTTPError, ValueError):
            return False
        return all(health.get(part, {}).get("status") == "healthy" for part in ("metadatabase", "scheduler",
                                                                                 "triggerer"))

    def token(self) -> str:
        passwords = json.loads((self.root / "simple_auth_manager_passwords.json.generated").read_text())
        response = httpx.post(f"{self.base_url}/auth/token",
                              json={"username": "admin", "password": passwords["admin"]}, timeout=30)
        response.raise_for_status()
        return response.json()["access_token"]

    def stop(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.client.close()

    def logs_tail(self, lines: int = 40) -> str:
        found = []
        for path in sorted((self.root / "logs").glob("*.log")):
            found.append(f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(found)

    # Using it ---------------------------------------------------------------------------------
    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.request(method, f"/api/v2{path}", **kwargs)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def act(self, method: str, path: str, **kwargs: Any) -> Any:
        """A user's write through the REST API (mark, clear), made once more, as a user would click
        again, when Airflow's SQLite gave up on its own lock: a 500, or no answer within the
        driver's 120 s wait (seen now and then when the triggerer cancels a trigger meanwhile)."""
        for _ in range(2):
            try:
                response = self.client.request(method, f"/api/v2{path}", timeout=150, **kwargs)
            except httpx.TimeoutException:
                response = None
            if response is not None and response.status_code != 500:
                break
        assert response is not None, f"{method} {path}: no answer, twice"
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        """Start a DAG run through the REST API; returns its run id."""
        return self.api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})[
            "dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})[
            "task_instances"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        """The run's final state (success or failed)."""
        self.wait_for(lambda: self.run_state(dag_id, run_id) in ("success", "failed"),
                      f"run {run_id} of {dag_id} ends", timeout)
        return self.run_state(dag_id, run_id)

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting until {what}; logs:\n{self.logs_tail()}")
            time.sleep(0.5)


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The running deployment (started once; stopped at the end of the session)."""
    if shutil.which("airflow", path=str(BIN)) is None:
        unavailable("the Airflow deployment", f"no airflow command in {BIN}")
    root = tmp_path_factory.mktemp("airflow-deployment")
    port = free_port()
    # nothing of the in-process Airflow tests' set-up (tests/provider/airflow/conftest.py) reaches the deployment
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({
        "AIRFLOW_HOME": str(root),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps([
            {"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
             "kwargs": {}},
            {"name": "tibanna-deployment-dags", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
             "kwargs": {"path": str(DEPLOYMENT_DAGS)}}]),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": "tibanna-deployment-test-secret",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "tibanna_deployment_sqlite.CONNECT_ARGS",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC": "tibanna_deployment_sqlite.CONNECT_ARGS",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")])),
        "AIRFLOW__CORE__PARALLELISM": "6",  # task processes at once: 2 cores run the rest of make test too
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "120",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
        "TIBANNA_HOME": str(root / "tibanna-home"),
        "TIBANNA_CONTAINER_RUNTIME": "none",
        "TIBANNA_SUPERVISOR_IDLE_SECONDS": "30",
    })
    env.pop("TIBANNA_BACKEND", None)
    deployment = Deployment(root, port, env)
    try:
        deployment.start()
        yield deployment
    finally:
        deployment.stop()
        from tibanna.core import API

        API.from_settings("local", home=str(deployment.tibanna_home)).kill_all()  # jobs a failed test left held
        kill_supervisor(deployment.tibanna_home)


@pytest.fixture(scope="session")
def tibanna(deployment: Deployment):
    """The Tibanna API on the deployment's TIBANNA_HOME."""
    from tibanna.core import API

    return API.from_settings("local", home=str(deployment.tibanna_home))
