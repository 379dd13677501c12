"""The CWL, WDL and Snakemake runners piece by piece: workflow files, inputs file, output objects, commands,
and the clear failure when an engine's extra is missing."""
from __future__ import annotations

import functools
import http.server
import importlib.util
import json
import threading
from pathlib import Path
from typing import Callable, Iterator

import pytest

from agent_helpers import LOG_BUCKET, OUT_BUCKET, Runs
from tibanna import jobspec, protocol
from tibanna.agent.folder import REWRITE, JobFolder
from tibanna.agent.joblog import JobLog
from tibanna.agent.runners import RunContext, workflow_files
from tibanna.agent.runners.cwl import CwlRunner
from tibanna.agent.runners.snakemake import SnakemakeRunner
from tibanna.agent.runners.wdl import WdlRunner
from tibanna.agent.runners.workflow_files import WorkflowError, fetch_workflow, job_path
from tibanna.storage import LocalStore

CWL_ARGS = {"cwl_main_filename": "md5.cwl", "cwl_directory_url": "s3://wf/cwl"}
WDL_ARGS = {"language": "wdl", "wdl_main_filename": "md5.wdl", "wdl_directory_url": "s3://wf/wdl"}
SNAKEMAKE_ARGS = {"language": "snakemake", "snakemake_main_filename": "Snakefile",
                  "snakemake_directory_url": "s3://wf/sm", "container_image": "snakemake/snakemake:v9",
                  "command": "snakemake --cores 1"}

MakeContext = Callable[..., RunContext]


@pytest.fixture
def make_context(store: LocalStore, tmp_path: Path) -> Iterator[MakeContext]:
    """RunContexts for descriptions made of `args`, their folders in rewrite mode (what the job sees differs)."""
    logs: list[JobLog] = []

    def make(args: dict, runtime: str | None = None, inputs: dict | None = None) -> RunContext:
        description = {"args": {"output_S3_bucket": OUT_BUCKET, **args},
                       "config": {"log_bucket": LOG_BUCKET, "instance_type": "t3.micro"}}
        run_json = protocol.build_run_json(jobspec.parse(description, jobid="unit1"))
        folder = JobFolder(tmp_path / "work", protocol.language_family(run_json["Job"]["App"]["language"]))
        folder.create()
        folder.choose_mode(REWRITE, in_container=False)
        logs.append(JobLog(tmp_path / f"unit{len(logs)}.log"))
        return RunContext(jobid="unit1", run_json=run_json, store=store, folder=folder, log=logs[-1],
                          container_runtime=runtime, inputs=inputs or {})
    yield make
    for log in logs:
        log.close()


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local http server over a folder: (its url, the folder)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/flows", root
    server.shutdown()
    server.server_close()


# -- workflow files ----------------------------------------------------------------------------------

def test_workflow_files_from_a_bucket_keep_their_folders(make_context: MakeContext, store: LocalStore) -> None:
    store.put_text("wf", "cwl/md5.cwl", "main")
    store.put_text("wf", "cwl/tools/cut.cwl", "child")
    ctx = make_context({**CWL_ARGS, "cwl_child_filenames": ["tools/cut.cwl"]})
    assert fetch_workflow(ctx, "cwl") == ["md5.cwl", "tools/cut.cwl"]
    assert ctx.folder.host_path("/data1/cwl/tools/cut.cwl").read_text() == "child"
    assert "workflow file s3://wf/cwl/tools/cut.cwl -> /data1/cwl/tools/cut.cwl" in ctx.log.text()


def test_workflow_files_over_http(make_context: MakeContext, http_root: tuple[str, Path]) -> None:
    url, root = http_root
    (root / "flows" / "rules").mkdir(parents=True)
    (root / "flows" / "Snakefile").write_text("rule a:\n")
    (root / "flows" / "rules" / "b.smk").write_text("rule b:\n")
    ctx = make_context({**SNAKEMAKE_ARGS, "snakemake_directory_url": url + "/",
                        "snakemake_child_filenames": ["rules/b.smk"]})
    fetch_workflow(ctx, "snakemake")
    assert ctx.folder.host_path("/data1/snakemake/rules/b.smk").read_text() == "rule b:\n"
    ctx = make_context({**SNAKEMAKE_ARGS, "snakemake_directory_url": url, "snakemake_main_filename": "Nope"})
    with pytest.raises(WorkflowError, match=f"cannot download workflow file {url}/Nope: HTTP Error 404"):
        fetch_workflow(ctx, "snakemake")


def test_a_missing_workflow_file_in_a_bucket(make_context: MakeContext) -> None:
    with pytest.raises(WorkflowError, match="workflow file s3://wf/wdl/md5.wdl does not exist"):
        fetch_workflow(make_context(WDL_ARGS), "wdl")


# -- inputs file -------------------------------------------------------------------------------------

def test_cwl_inputs_file_nests_files_and_directories_and_adds_parameters(make_context: MakeContext) -> None:
    inputs = {"pairs": [["/data1/input/a", "/data1/input/b"], ["/data1/input/c", "/data1/input/d"]],
              "index": "/data1/input/ref/"}
    ctx = make_context({**CWL_ARGS, "input_parameters": {"threads": 2, "label": "x"}}, inputs=inputs)
    ctx.folder.host_path("/data1/input/ref").mkdir()
    CwlRunner(ctx.run_json).write_inputs(ctx)
    data1 = str(ctx.folder.data1)  # rewrite mode: the inputs file names the real folder
    written = json.loads(ctx.folder.host_path("/data1/cwl/inputs.yml").read_text())
    assert written["pairs"][1][0] == {"class": "File", "path": f"{data1}/input/c"}
    assert written["index"] == {"class": "Directory", "path": f"{data1}/input/ref/"}
    assert (written["threads"], written["label"]) == (2, "x")


def test_wdl_inputs_file_has_plain_paths(make_context: MakeContext) -> None:
    ctx = make_context(WDL_ARGS, inputs={"md5.files": [["/data1/input/a"], ["/data1/input/b"]]})
    WdlRunner(ctx.run_json).write_inputs(ctx)
    written = json.loads(ctx.folder.host_path("/data1/wdl/inputs.yml").read_text())
    assert written == {"md5.files": [[f"{ctx.folder.data1}/input/a"], [f"{ctx.folder.data1}/input/b"]]}


# -- output objects ----------------------------------------------------------------------------------

def test_cwltool_output_object_as_the_job_sees_it(make_context: MakeContext) -> None:
    ctx = make_context(CWL_ARGS)
    data1 = ctx.folder.data1
    document = {"report": {"class": "File", "path": f"{data1}/out/report", "location": f"file://{data1}/out/report",
                           "secondaryFiles": [{"class": "File", "path": f"{data1}/out/report.idx"}]},
                "count": 3, "nothing": None,
                "dir": {"class": "Directory", "path": f"{data1}/out/d", "listing": [{"path": f"{data1}/out/d/x"}]}}
    ctx.folder.host_path(f"/data1/out/{ctx.jobid}.log.json").write_text(json.dumps(document))
    files = CwlRunner(ctx.run_json).output_files(ctx)
    assert set(files) == {"report", "dir"}
    assert files["report"]["location"] == "file:///data1/out/report"
    assert files["report"]["secondaryFiles"][0]["path"] == "/data1/out/report.idx"
    assert files["dir"]["listing"][0]["path"] == "/data1/out/d/x"


def test_miniwdl_outputs_keep_files_only(make_context: MakeContext) -> None:
    ctx = make_context(WDL_ARGS)
    outputs = {"w.paste.pasted": None, "w.cat.out": f"{ctx.folder.data1}/wdl/run/out/x", "w.n": 3, "w.s": "text"}
    ctx.folder.host_path(f"/data1/out/{ctx.jobid}.log.json").write_text(json.dumps({"dir": "/x", "outputs": outputs}))
    assert WdlRunner(ctx.run_json).output_files(ctx) == {"w.cat.out": {"path": "/data1/wdl/run/out/x"}}


def test_a_missing_output_object_is_an_error(make_context: MakeContext) -> None:
    ctx = make_context(WDL_ARGS)
    with pytest.raises(WorkflowError, match="miniwdl's output object /data1/out/unit1.log.json cannot be read"):
        WdlRunner(ctx.run_json).output_files(ctx)


def test_job_path_undoes_the_rewrite(make_context: MakeContext) -> None:
    ctx = make_context(CWL_ARGS)
    assert job_path(ctx, ctx.view("/data1/out/a b")) == "/data1/out/a b"
    assert job_path(ctx, str(ctx.folder.data1)) == "/data1"
    assert job_path(ctx, "/elsewhere/x") == "/elsewhere/x"


# -- commands ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("runtime, option", [(None, "--no-container"), ("docker", "--custom-net host"),
                                             ("podman", "--podman")])
def test_cwltool_command_per_runtime(make_context: MakeContext, runtime: str | None, option: str) -> None:
    ctx = make_context({**CWL_ARGS, "input_env": {"A": "1", "B": "2"}, "run_args": "--cachedir /data1/tmp/c"},
                       runtime=runtime)
    runner = CwlRunner(ctx.run_json)
    command, exports = runner.command(ctx), runner.exports(ctx)
    assert f"--disable-color {option} $RUN_ARGS" in command and " /data1/" not in command
    assert command.endswith(f'"$MAIN_CWL" inputs.yml > {ctx.folder.data1}/out/unit1.log.json')
    assert exports["PRESERVED_ENV_OPTION"] == "'--preserve-environment A --preserve-environment B'"
    assert exports["RUN_ARGS"] == f"'--cachedir {ctx.folder.data1}/tmp/c'"


@pytest.mark.parametrize("runtime, backend", [(None, "bare"), ("docker", "podman"), ("podman", "podman")])
def test_miniwdl_backend_per_runtime(make_context: MakeContext, runtime: str | None, backend: str | None) -> None:
    ctx = make_context(WDL_ARGS, runtime=runtime)
    runner = WdlRunner(ctx.run_json)
    assert runner.exports(ctx).get("MINIWDL__SCHEDULER__CONTAINER_BACKEND") == backend
    assert runner.command(ctx).startswith(f'miniwdl run "$MAIN_WDL" -i inputs.yml --dir {ctx.folder.data1}/wdl/run/. ')


def test_snakemake_exports_its_workflow_and_the_shell_command(make_context: MakeContext) -> None:
    ctx = make_context(SNAKEMAKE_ARGS)
    exports = SnakemakeRunner(ctx.run_json).exports(ctx)
    assert exports["MAIN_SNAKEMAKE"] == "Snakefile" and exports["COMMAND"] == '"snakemake --cores 1"'


# -- missing engines ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (CWL_ARGS, "language cwl_v1 needs cwltool: pip install 'tibanna[cwl]'"),
    (WDL_ARGS, "language wdl needs miniwdl: pip install 'tibanna[wdl]'"),
    (SNAKEMAKE_ARGS, "language snakemake needs snakemake: pip install 'tibanna[snakemake]'"),
])
def test_a_missing_engine_fails_the_job_naming_its_extra(runs: Runs, monkeypatch: pytest.MonkeyPatch,
                                                         args: dict, message: str) -> None:
    monkeypatch.setattr(workflow_files.shutil, "which", lambda name, path=None: None)
    jobid, code = runs.run({"args": {"output_S3_bucket": OUT_BUCKET, **args},
                            "config": {"log_bucket": LOG_BUCKET, "instance_type": "t3.micro"}})
    assert code == 1 and runs.markers(jobid) == [protocol.ERROR]
    assert f"ERROR: {message}" in runs.log(jobid, protocol.LOG)
    assert runs.postrun(jobid)["Job"]["error_message"] == message


def test_wdl_without_a_runtime_needs_the_bare_backend(runs: Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "miniwdl_backend_bare" else find_spec(name, *rest))
    jobid, code = runs.run({"args": {"output_S3_bucket": OUT_BUCKET, **WDL_ARGS, "workflow_engine": "caper"},
                            "config": {"log_bucket": LOG_BUCKET, "instance_type": "t3.micro"}})
    log = runs.log(jobid, protocol.LOG)
    assert code == 1
    assert "workflow_engine caper is not available to this agent, which runs WDL with miniwdl" in log
    assert ("language wdl needs miniwdl-backend-bare when no container runtime is usable: "
            "pip install 'tibanna[wdl]'") in log
