"""Starting the supervisor on demand: one per home, guarded by a lock file, fully detached."""
from __future__ import annotations

import errno
import fcntl
import subprocess
import sys

from tibanna.backends.local.home import Home


def is_running(home: Home) -> bool:
    """Whether a supervisor holds this home's lock."""
    home.root.mkdir(parents=True, exist_ok=True)
    with open(home.lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno in (errno.EAGAIN, errno.EACCES):
                return True
            raise
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def ensure_running(home: Home) -> None:
    """Start a detached supervisor for this home unless one runs (a second one exits at once)."""
    if is_running(home):
        return
    with open(home.log, "ab") as out:
        subprocess.Popen([sys.executable, "-m", "tibanna.backends.local.supervisor", str(home.root)],
                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, close_fds=True,
                         start_new_session=True, cwd=str(home.root))
