"""The private docker daemon fixture: it answers on its own socket and runs the locally built image."""
from __future__ import annotations

import os


def test_private_daemon_runs_the_busybox_image(docker_daemon):
    assert os.environ["DOCKER_HOST"] == docker_daemon.host != "unix:///var/run/docker.sock"
    out = docker_daemon.docker("run", "--rm", "--network", "none", docker_daemon.image,
                               "bash", "-c", 'echo "$0 in $(pwd)"', "hello").stdout
    assert out.strip() == "hello in /"
    info = docker_daemon.docker("info", "--format", "{{.Swarm.LocalNodeState}} {{.CgroupDriver}}").stdout
    assert info.split() == ["inactive", "cgroupfs"]
