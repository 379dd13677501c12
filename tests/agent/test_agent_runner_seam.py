"""The runner seam, with a stand-in engine for the cwl family: prepare, exports/command, output_files."""
from __future__ import annotations

import gzip
import json

import pytest

from agent_helpers import IN_BUCKET, OUT_BUCKET, Runs
from tibanna import protocol
from tibanna.agent import runners
from tibanna.agent.runners import RunContext, Runner
from tibanna.agent.runners.base import double_quoted, literal
from tibanna.exceptions import TibannaError


class FakeEngine(Runner):
    """Writes an inputs file in prepare, 'runs' by copying it, reports argname outputs with a secondary file."""

    def prepare(self, ctx: RunContext) -> None:
        inputs = {name: {"class": "File", "path": ctx.view(path)} for name, path in ctx.inputs.items()}
        ctx.folder.host_path("/data1/cwl/inputs.yml").write_text(json.dumps(inputs))

    def exports(self, ctx: RunContext) -> dict[str, str]:
        return {"MAIN_CWL": literal(self.app["main_cwl"]), "GREETING": double_quoted("it's \\$HOME-free")}

    def command(self, ctx: RunContext) -> str:
        return ctx.view('cp inputs.yml /data1/out/seen.yml && echo "$MAIN_CWL $GREETING" > /data1/out/res.txt '
                        "&& echo idx > /data1/out/res.txt.idx")

    def output_files(self, ctx: RunContext) -> dict[str, dict]:
        return {"result": {"path": "/data1/out/res.txt", "class": "File",
                           "secondaryFiles": [{"path": "/data1/out/res.txt.idx"}]},
                "seen_b": {"path": "/data1/out/seen.yml"}}


@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(runners.RUNNERS, "cwl", FakeEngine)


def cwl_description() -> dict:
    return {"args": {"language": "cwl_v1", "cwl_main_filename": "main.cwl", "cwl_directory_url": "s3://wf/dir",
                     "output_S3_bucket": OUT_BUCKET,
                     "input_files": {"reads": {"bucket_name": IN_BUCKET, "object_key": "r.txt.gz", "unzip": "gz"}},
                     "output_target": {"result": "final/res.txt", "seen": {"object_prefix": "meta"}},
                     "secondary_output_target": {"result": "final/res.txt.idx"},
                     "alt_cond_output_argnames": {"seen": ["seen_a", "seen_b"]}},
            "config": {"log_bucket": "log-bucket", "instance_type": "t3.micro"}}


def test_a_runner_prepares_runs_and_reports_outputs(runs: Runs, fake_engine: None) -> None:
    runs.store.put_bytes(IN_BUCKET, "r.txt.gz", gzip.compress(b"reads"))
    jobid, code = runs.run(cwl_description())
    assert code == 0, runs.log(jobid, protocol.LOG)
    assert json.loads(runs.output("meta/seen.yml"))["reads"]["path"].endswith("/data1/input/r.txt")
    assert runs.output("final/res.txt") == "main.cwl it's $HOME-free\n"
    assert runs.output("final/res.txt.idx") == "idx\n"
    files = runs.postrun(jobid)["Job"]["Output"]["Output files"]
    assert files["result"]["target"] == "final/res.txt" and files["result"]["class"] == "File"
    assert files["result"]["secondaryFiles"][0]["target"] == "final/res.txt.idx"
    assert files["seen"]["target"] == "meta/seen.yml" and files["seen"]["path"] == "/data1/out/seen.yml"


def test_a_language_without_a_runner_fails_the_job(runs: Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(runners.RUNNERS, "cwl")
    jobid, code = runs.run(cwl_description())
    assert code == 1 and runs.markers(jobid) == [protocol.ERROR]
    assert "no runner for language 'cwl_v1'" in runs.log(jobid, protocol.LOG)


def test_runner_for_unknown_family(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(runners.RUNNERS, "wdl")
    with pytest.raises(TibannaError):
        runners.runner_for("wdl_v1")
