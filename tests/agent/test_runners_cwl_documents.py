"""The CWL runner's document rewrites: DockerRequirement to hints, the images it names, the reflow width."""
from __future__ import annotations

import re

import pytest
from ruamel.yaml import YAML
from schema_salad.sourceline import reflow_all

from tibanna.agent.runners.cwl import docker_images, move_docker_requirements, reflow_columns
from tibanna.exceptions import BUILTIN_ERROR_PATTERNS

PACKED = """\
cwlVersion: v1.0
$graph:
  - id: main
    class: Workflow
    requirements:
      SubworkflowFeatureRequirement: {}
    steps:
      inline:
        run:
          class: CommandLineTool
          requirements:
            - class: InlineJavascriptRequirement
            - class: DockerRequirement
              dockerPull: quay.io/inline:1  # the image
          hints:
            - class: ResourceRequirement
              coresMin: 1
  - id: tool
    class: CommandLineTool
    requirements:
      DockerRequirement:
        dockerPull: ubuntu:20.04
    hints:
      DockerRequirement:
        dockerPull: old:0
"""


def test_docker_requirements_move_to_hints_in_every_form() -> None:
    doc = YAML(typ="rt").load(PACKED)
    assert move_docker_requirements(doc)
    inline = doc["$graph"][0]["steps"]["inline"]["run"]
    assert inline["requirements"] == [{"class": "InlineJavascriptRequirement"}]
    assert inline["hints"][-1] == {"class": "DockerRequirement", "dockerPull": "quay.io/inline:1"}
    assert inline["hints"][0]["class"] == "ResourceRequirement"
    tool = doc["$graph"][1]
    assert tool["requirements"] == {} and tool["hints"] == {"DockerRequirement": {"dockerPull": "ubuntu:20.04"}}
    assert doc["$graph"][0]["requirements"] == {"SubworkflowFeatureRequirement": {}}
    assert not move_docker_requirements(doc)  # nothing left to move


def test_a_tool_without_hints_gets_them() -> None:
    tool = {"class": "CommandLineTool", "requirements": [{"class": "DockerRequirement", "dockerImageId": "img"}]}
    assert move_docker_requirements(tool)
    assert tool == {"class": "CommandLineTool", "requirements": [],
                    "hints": [{"class": "DockerRequirement", "dockerImageId": "img"}]}


def test_docker_images_named_anywhere() -> None:
    assert docker_images(YAML(typ="rt").load(PACKED)) == {"quay.io/inline:1", "ubuntu:20.04", "old:0"}
    assert docker_images("a script, not a document") == set()


MISSING_INPUT = next(p for p in BUILTIN_ERROR_PATTERNS if p["error_type"] == "CWL missing input")


@pytest.mark.parametrize("main", ["md5.cwl", "no-container/a_much_longer_workflow_name.cwl"])
@pytest.mark.parametrize("line, column", [(1, 1), (8, 3), (42, 5), (999, 99)])
@pytest.mark.parametrize("name", ["ab", "gzfile", "a_very_long_input_parameter_name"])
def test_reflow_width_gives_upstreams_missing_input_label(main: str, line: int, column: int, name: str) -> None:
    message = f"{main}:{line}:{column}: Missing required input parameter '{name}'"
    reflowed = reflow_all(message, maxline=reflow_columns(main)) + "\n"
    assert re.search(MISSING_INPUT["pattern"], reflowed, re.MULTILINE), reflowed
