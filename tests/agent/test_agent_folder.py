"""The job folder: '/data1' paths onto the real folder, and the rewrite of what the job sees."""
from __future__ import annotations

from pathlib import Path

import pytest

from tibanna.agent.folder import CONTAINER, REWRITE, JobFolder
from tibanna.exceptions import TibannaError


def test_host_path_stays_in_the_folder(tmp_path: Path) -> None:
    folder = JobFolder(tmp_path, "shell")
    assert folder.host_path("/data1/out/x") == tmp_path / "data1" / "out" / "x"
    for outside in ("/etc/passwd", "/data1/../etc", "/data10/x", "relative"):
        with pytest.raises(TibannaError):
            folder.host_path(outside)


def test_view_rewrites_only_data1_itself(tmp_path: Path) -> None:
    folder = JobFolder(tmp_path, "shell")
    assert folder.choose_mode("rewrite", in_container=False) == REWRITE
    text = 'cat /data1/in "/data1" /data1 /mnt/data1/x /data10 file:///data1/out'
    real = f"{tmp_path}/data1"
    assert folder.view(text) == f'cat {real}/in "{real}" {real} /mnt/data1/x /data10 file://{real}/out'


def test_no_rewrite_in_a_container(tmp_path: Path) -> None:
    folder = JobFolder(tmp_path, "shell")
    assert folder.choose_mode("rewrite", in_container=True) == CONTAINER
    assert folder.view("/data1/out") == "/data1/out"


def test_a_folder_path_that_cannot_go_into_a_command_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TibannaError, match="shell-special"):
        JobFolder(tmp_path / "my jobs", "shell").choose_mode("rewrite", in_container=False)
