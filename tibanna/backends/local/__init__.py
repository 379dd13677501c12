"""The local backend: jobs run on this machine, tracked in SQLite, with folders as buckets.

A user's guide in brief: nothing to set up. `API()` uses it by default; TIBANNA_HOME (default
~/.tibanna) holds the index, the buckets (`buckets/<name>/<key>`) and the job folders; a
supervisor starts with the first job and exits when idle; `TIBANNA_CONTAINER_RUNTIME` says
whether jobs run in their images (docker, podman) or on the host.
"""
from tibanna.backends.local.backend import LocalBackend

__all__ = ["LocalBackend"]
