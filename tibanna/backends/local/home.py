"""The paths of one TIBANNA_HOME: the index, the buckets, the job folders, the supervisor's files."""
from __future__ import annotations

from pathlib import Path


class Home:
    """The paths of one TIBANNA_HOME."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.buckets = self.root / "buckets"
        self.jobs = self.root / "jobs"
        self.index_path = self.root / "index.sqlite"
        self.lock = self.root / "supervisor.lock"
        self.log = self.root / "supervisor.log"
        self.pid = self.root / "supervisor.pid"

    def workdir(self, jobid: str) -> Path:
        """The job's folder (its data1/ is what the job sees as /data1)."""
        return self.jobs / jobid
