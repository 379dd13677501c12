"""The job log: one file that the agent and the job's command both append to."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import BinaryIO

logger = logging.getLogger("tibanna.agent")


def milestone(part: str) -> None:
    """Log `tibanna-boot <part> <epoch>`: on EC2 it lands in the bootstrap log beside the user data's
    own stamps, from which the boot-to-command time and its parts are read."""
    logger.info("tibanna-boot %s %.6f", part, time.time())


class JobLog:
    """`<jobid>.log` on the worker. Agent lines are stamped; the command writes through `sink()`.

    Both sides open the file with O_APPEND, so their writes interleave whole and in order.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(path, "a", encoding="utf-8", buffering=1)

    def info(self, message: str) -> None:
        """Append a line from the agent (also sent to the `tibanna.agent` logger)."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        self._handle.write(f"## [{stamp}] {message}\n")
        logger.debug("%s", message)

    def sink(self) -> BinaryIO:
        """A fresh append handle for a child's stdout and stderr; the caller closes it."""
        return open(self.path, "ab", buffering=0)

    def text(self) -> str:
        """The whole log so far."""
        return self.path.read_text(encoding="utf-8", errors="backslashreplace")

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> "JobLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
