"""Starting the supervisor on demand: one per home, guarded by a lock file, fully detached."""
from __future__ import annotations

import errno
import fcntl
import subprocess
import sys

from tibanna.backends.local.home import Home


def try_lock(handle) -> bool:
    """Take the home's lock on this open lock file without waiting; False if a supervisor has it."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def ensure_running(home: Home) -> None:
    """Start a detached supervisor for this home unless one runs.

    The lock is taken here and handed to the new process, so from this moment on the home has a
    supervisor: callers that ask while it is still starting do not start another one."""
    home.root.mkdir(parents=True, exist_ok=True)
    with open(home.lock, "a") as handle:
        if not try_lock(handle):
            return
        with open(home.log, "ab") as out:
            subprocess.Popen([sys.executable, "-m", "tibanna.backends.local.supervisor", str(home.root),
                              str(handle.fileno())], stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.STDOUT, pass_fds=(handle.fileno(),), start_new_session=True,
                             cwd=str(home.root))
    # Closing our descriptor leaves the lock with the supervisor, which shares its open file.
