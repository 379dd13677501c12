"""Stage a job's inputs into `/data1` as upstream's decode_run_json + download list do.

A key lands at `/data1/input/<object_key>` (the key's path kept), or `/data1/input/<rename>`, or
at its `file://` target; a key that is a prefix is copied as a folder; `unzip` gz/bz2 leaves the
file without its suffix; `mount: true` shows the bucket at `/data1/input-mounted-<bucket>/`.
"""
from __future__ import annotations

import bz2
import gzip
import os
import posixpath
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tibanna.agent.folder import DATA1, JobFolder
from tibanna.agent.joblog import JobLog
from tibanna.exceptions import TibannaError
from tibanna.storage import LocalStore, ObjectStore

INPUT_DIR = f"{DATA1}/input"
MOUNT_DIR_PREFIX = f"{DATA1}/input-mounted-"
_OPENERS: dict[str, Callable[..., Any]] = {"gz": gzip.open, "bz2": bz2.open}


class StagingError(TibannaError):
    """An input could not be staged; the message is the log line users search for."""


@dataclass
class StagedInputs:
    """Where the inputs are, as the job sees them, nested like their object keys."""

    files: dict[str, Any] = field(default_factory=dict)
    secondary: dict[str, Any] = field(default_factory=dict)
    mounted: dict[str, Path] = field(default_factory=dict)  # bucket -> the host folder shown to the job


def stage_inputs(store: ObjectStore, job_input: dict, folder: JobFolder, log: JobLog) -> StagedInputs:
    """Download (or mount) Input_files_data and Secondary_files_data of run.json's Job.Input."""
    staged = StagedInputs()
    for section, result in (("Input_files_data", staged.files), ("Secondary_files_data", staged.secondary)):
        for argname, spec in (job_input.get(section) or {}).items():
            result[argname] = _stage_spec(store, argname, spec, folder, log, staged.mounted)
    return staged


def _stage_spec(store: ObjectStore, argname: str, spec: dict, folder: JobFolder, log: JobLog,
                mounted: dict[str, Path]) -> Any:
    bucket, unzip = spec["dir"], spec.get("unzip") or ""
    if spec.get("mount"):
        mount_dir = _mount_bucket(store, bucket, folder, log, mounted)

        def locate(key: str, _rename: str | None) -> str:
            if not (store.exists(bucket, key) or store.is_prefix(bucket, key)):
                raise StagingError(_missing(bucket, key))
            return f"{mount_dir}/{key}"
        return _nested(spec["path"], None, locate)
    if argname.startswith("file://"):
        target = posixpath.normpath(argname[len("file://"):])
        return _nested(spec["path"], None,
                       lambda key, _rename: _download(store, bucket, key, target, unzip, folder, log))
    return _nested(spec["path"], spec.get("rename") or None,
                   lambda key, rename: _download(store, bucket, key, f"{INPUT_DIR}/{rename or key}",
                                                 unzip, folder, log))


def _nested(keys: Any, renames: Any, stage: Callable[[str, str | None], str]) -> Any:
    """Apply `stage(key, rename)` over a key or a nested list of keys (renames nested alike)."""
    if isinstance(keys, list):
        renames = renames if isinstance(renames, list) else [None] * len(keys)
        return [_nested(key, rename, stage) for key, rename in zip(keys, renames, strict=True)]
    return stage(keys, renames or None)


def _missing(bucket: str, key: str) -> str:
    return "Cannot download file s3://%s/%s - file does not exist." % (bucket, key)


def _download(store: ObjectStore, bucket: str, key: str, job_target: str, unzip: str, folder: JobFolder,
              log: JobLog) -> str:
    """Copy one key (a file, or every object under it as a folder) to `job_target`; its final job path."""
    dest = folder.host_path(job_target)
    prefix = key.rstrip("/") + "/"
    members = list(store.list_keys(bucket, prefix))
    if members:  # upstream checks for a folder first, as `aws s3 cp --recursive` would copy it
        log.info(f"downloading folder s3://{bucket}/{key} ({len(members)} objects) to {job_target}")
        for member in members:
            store.get_file(bucket, member, dest / member[len(prefix):])
        if unzip:
            for path in sorted(dest.rglob(f"*.{unzip}")):
                _decompress(path, unzip)
        return job_target
    if not store.exists(bucket, key):
        raise StagingError(_missing(bucket, key))
    log.info(f"downloading s3://{bucket}/{key} to {job_target}")
    store.get_file(bucket, key, dest)
    if not unzip:
        return job_target
    return posixpath.join(posixpath.dirname(job_target), _decompress(dest, unzip).name)


def _decompress(path: Path, kind: str) -> Path:
    """gunzip / bzip2 -d in place: the result drops the .gz/.bz2 suffix (kept name if it has none)."""
    suffix = f".{kind}"
    out = path.with_name(path.name[:-len(suffix)]) if path.name.endswith(suffix) and path.name != suffix else path
    tmp = path.with_name(f".{path.name}.unzipping")
    try:
        with _OPENERS[kind](path, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except (OSError, EOFError) as err:
        tmp.unlink(missing_ok=True)
        raise StagingError(f"cannot unzip ({kind}) {path.name}: {err}") from err
    path.unlink()
    os.replace(tmp, out)
    return out


def _mount_bucket(store: ObjectStore, bucket: str, folder: JobFolder, log: JobLog,
                  mounted: dict[str, Path]) -> str:
    """Show a whole bucket at /data1/input-mounted-<bucket> (upstream mounts it with mount-s3).

    A local bucket is already a folder, so a symlink to it gives the same read-through view
    without copying; the container gets that folder at the same path, read-only, so the link
    resolves there too. Other stores need a mount tool that this agent does not drive yet.
    """
    mount_dir = f"{MOUNT_DIR_PREFIX}{bucket}"
    if bucket in mounted:
        return mount_dir
    if not isinstance(store, LocalStore):
        raise StagingError(f"mount: true is not available for bucket {bucket} on this store")
    source = store.path(bucket, "").resolve()
    link = folder.host_path(mount_dir)
    if not link.is_symlink():
        link.symlink_to(source, target_is_directory=True)
    log.info(f"bucket {bucket} is available at {mount_dir} (linked to {source})")
    mounted[bucket] = source
    return mount_dir
