"""Language cwl_v1: cwltool runs the workflow on the host, its steps in docker/podman when usable.

As upstream's run.sh: `cwltool ... $RUN_ARGS --outdir /data1/out ... $PRESERVED_ENV_OPTION
$MAIN_CWL inputs.yml`, its output object going to /data1/out/<jobid>.log.json. With no usable
runtime cwltool gets --no-container, which it refuses while a DockerRequirement sits under
`requirements`: the job then runs a copy of the workflow with those moved to `hints`.
"""
from __future__ import annotations

import shutil
from typing import Any

from tibanna.agent.folder import DATA1
from tibanna.agent.runners.base import RunContext, literal
from tibanna.agent.runners.workflow_files import EngineRunner, job_path, missing_extra

NO_CONTAINER_DIR = "no-container"  # under /data1/cwl: the copy of the workflow run with --no-container
DOCKER = "DockerRequirement"
_RUNTIME_OPTIONS = {None: "--no-container", "docker": "--custom-net host", "podman": "--podman"}


class CwlRunner(EngineRunner):
    family, engine, extra = "cwl", "cwltool", "cwl"

    def __init__(self, run_json: dict) -> None:
        super().__init__(run_json)
        self.main: str = self.app["main_cwl"]  # relative to /data1/cwl; the copy's when it runs one

    def prepare(self, ctx: RunContext) -> None:
        super().prepare(ctx)
        if ctx.container_runtime is None:
            self.main = self._without_containers(ctx)
        else:
            ctx.log.info(f"cwltool runs the workflow's containers with {ctx.container_runtime}")

    def input_value(self, ctx: RunContext, path: str) -> dict:
        kind = "Directory" if ctx.folder.host_path(path).is_dir() else "File"
        return {"class": kind, "path": path}

    def exports(self, ctx: RunContext) -> dict[str, str]:
        env = ctx.run_json["Job"]["Input"].get("Env") or {}
        return {"CWL_URL": literal(self.app["cwl_url"]), "MAIN_CWL": literal(self.main),
                "CWL_FILES": literal(self.app["other_cwl_files"]),
                "RUN_ARGS": literal(ctx.view(self.app.get("run_args") or "")),
                "PRESERVED_ENV_OPTION": literal(" ".join(f"--preserve-environment {name}" for name in env))}

    def command(self, ctx: RunContext) -> str:
        return ctx.view(
            f"COLUMNS={reflow_columns(self.main)} cwltool --enable-dev --non-strict --no-read-only --no-match-user "
            f"--disable-color {_RUNTIME_OPTIONS[ctx.container_runtime]} $RUN_ARGS --outdir {DATA1}/out "
            f"--tmp-outdir-prefix {DATA1}/tmp/ --tmpdir-prefix {DATA1}/tmp/ $PRESERVED_ENV_OPTION "
            f'"$MAIN_CWL" inputs.yml > {self.output_object_path(ctx)}')

    def outputs_from(self, ctx: RunContext, document: Any) -> dict[str, dict]:
        """cwltool's output object, File and Directory outputs only, with paths as the job sees them."""
        return {name: _job_view(ctx, value) for name, value in document.items()
                if isinstance(value, dict) and value.get("class") in ("File", "Directory")}

    def _without_containers(self, ctx: RunContext) -> str:
        """The main file to run with --no-container: a copy with DockerRequirement moved to hints, if needed."""
        try:
            from ruamel.yaml import YAML
            from ruamel.yaml.error import YAMLError
        except ImportError:
            raise missing_extra(ctx, "cwltool (and its ruamel.yaml)", self.extra) from None
        yaml = YAML(typ="rt")
        yaml.width = 4096
        documents: dict[str, Any] = {}
        for name in self.files:
            try:
                documents[name] = yaml.load(ctx.folder.host_path(f"{DATA1}/cwl/{name}"))
            except (YAMLError, ValueError):  # not a CWL document (e.g. an $include'd script): copied as it is
                documents[name] = None
        images = sorted({image for doc in documents.values() for image in docker_images(doc)})
        unused = f"; the containers it names were not used ({', '.join(images)})" if images else ""
        ctx.log.info(f"no container runtime is usable: cwltool runs with --no-container{unused}")
        moved = [name for name, doc in documents.items() if move_docker_requirements(doc)]
        if not moved:
            return self.main
        for name, doc in documents.items():
            source = ctx.folder.host_path(f"{DATA1}/cwl/{name}")
            dest = ctx.folder.host_path(f"{DATA1}/cwl/{NO_CONTAINER_DIR}/{name}")
            dest.parent.mkdir(parents=True, exist_ok=True)
            if name in moved:
                yaml.dump(doc, dest)
            else:
                shutil.copyfile(source, dest)
        ctx.log.info(f"DockerRequirement moved from requirements to hints in {', '.join(moved)}: the job runs "
                     f"the copy in {DATA1}/cwl/{NO_CONTAINER_DIR}/")
        return f"{NO_CONTAINER_DIR}/{self.main}"


def reflow_columns(main: str) -> int:
    """The COLUMNS cwltool gets, so that a missing input carries upstream's `CWL missing input` label.

    cwltool reflows `<main>:<line>:<col>: Missing required input parameter '<name>'` to $COLUMNS;
    upstream's pattern wants the break right after 'parameter', which this width gives for any
    line below 1000, column below 100 and input name of two characters or more.
    """
    return len(main) + 42


def move_docker_requirements(node: Any) -> bool:
    """Move each DockerRequirement under `requirements` to `hints`, anywhere in a CWL document; any moved?"""
    moved = False
    if isinstance(node, dict):
        body = _pop_docker(node.get("requirements"))
        if body is not None:
            _set_docker_hint(node, body)
            moved = True
        for value in node.values():
            moved |= move_docker_requirements(value)
    elif isinstance(node, list):
        for item in node:
            moved |= move_docker_requirements(item)
    return moved


def _pop_docker(requirements: Any) -> dict | None:
    """Remove a DockerRequirement from a requirements list or map; its fields (without `class`)."""
    if isinstance(requirements, dict):
        body = requirements.pop(DOCKER, None)
        return None if body is None else dict(body)
    if isinstance(requirements, list):
        for i, item in enumerate(requirements):
            if isinstance(item, dict) and item.get("class") == DOCKER:
                del requirements[i]
                return {k: v for k, v in item.items() if k != "class"}
    return None


def _set_docker_hint(node: dict, body: dict) -> None:
    """Put a DockerRequirement into `hints` (list or map form), replacing one already there."""
    hints = node.get("hints")
    if isinstance(hints, dict):
        hints[DOCKER] = body
        return
    if not isinstance(hints, list):
        hints = node["hints"] = []
    for i in reversed(range(len(hints))):
        if isinstance(hints[i], dict) and hints[i].get("class") == DOCKER:
            del hints[i]
    hints.append({"class": DOCKER, **body})


def docker_images(node: Any) -> set[str]:
    """Images named by DockerRequirements (requirements or hints) anywhere in a CWL document."""
    if isinstance(node, list):
        return {image for item in node for image in docker_images(item)}
    if not isinstance(node, dict):
        return set()
    images = {str(node[k]) for k in ("dockerPull", "dockerImageId") if node.get(k)}
    return images.union(*(docker_images(value) for value in node.values()))


def _job_view(ctx: RunContext, node: Any) -> Any:
    """A cwltool output value with each `path` and file:// `location` as the job sees it."""
    if isinstance(node, list):
        return [_job_view(ctx, item) for item in node]
    if not isinstance(node, dict):
        return node
    viewed = {key: _job_view(ctx, value) for key, value in node.items()}
    if isinstance(viewed.get("path"), str):
        viewed["path"] = job_path(ctx, viewed["path"])
    location = viewed.get("location")
    if isinstance(location, str) and location.startswith("file://"):
        viewed["location"] = "file://" + job_path(ctx, location[len("file://"):])
    return viewed
