"""Upload a job's outputs to their targets (upstream's awsf3 Target / SecondaryTargetList).

A file goes to its key (or prefix + its name); a folder's files go under key-or-prefix + their
relative path; a zip with `unzip` goes member by member under its prefix. Returns the postrun
JSON's `Output files`.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, Iterator

from tibanna.agent.joblog import JobLog
from tibanna.exceptions import TibannaError
from tibanna.jobspec import OutputTarget
from tibanna.storage import ObjectStore, parse_s3_url

_SOURCE_NAME_RE = re.compile(r"^/data1/((shell|out)/)*")


class OutputError(TibannaError):
    """An output is missing or could not be uploaded."""


def source_name(job_path: str) -> str:
    """The key an output keeps when its target names none (upstream: strip /data1/, shell/, out/)."""
    return _SOURCE_NAME_RE.sub("", job_path)


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Uploader:
    """Uploads targets through `store.put_file` (atomic); `resolve` maps a job path to the real file
    (following links, refusing any that leave the job folder)."""

    def __init__(self, store: ObjectStore, resolve: Callable[[str], Path], log: JobLog, scratch: Path) -> None:
        self.store, self.resolve, self.log, self.scratch = store, resolve, log, scratch

    def upload_all(self, targets: list[OutputTarget], runner_files: dict[str, dict],
                   secondary_targets: dict[str, list[str]], alt_names: dict[str, list[str]]) -> dict[str, dict]:
        """Every output target; path targets are keyed 'file://<path>' as in args.output_target."""
        output_files: dict[str, dict] = {}
        for target in targets:
            entry: dict
            if target.source.startswith("/"):
                entry = {"path": target.source}
                output_files[f"file://{target.source}"] = entry
            else:
                entry = dict(runner_files[_argname(target.source, runner_files, alt_names)])
                output_files[target.source] = entry
            entry.update(self._upload(target, entry["path"]))
            secondary = entry.get("secondaryFiles")
            if secondary:
                self._upload_secondary(target, secondary, secondary_targets.get(target.source, []))
        return output_files

    def _upload(self, target: OutputTarget, job_path: str) -> dict:
        """Upload one source; the postrun fields `target`, `size` and (files) `md5sum`."""
        source = self.resolve(job_path)
        dest = target.key or target.prefix or source_name(job_path)
        if not source.exists():
            raise OutputError(f"failed to upload output file {job_path} to s3://{target.bucket}/{dest}: "
                              "it does not exist")
        if target.tag:
            self.log.info(f"tag {target.tag!r} of {job_path} not applied: this store keeps no object tags")
        if source.is_dir():
            return {"target": dest, "size": self._upload_folder(target.bucket, job_path, source, dest, target.unzip)}
        if target.unzip:
            self._upload_zip_members(target.bucket, source, dest)
        else:
            if dest.endswith("/"):
                dest += source_name(job_path)
            self._put(target.bucket, dest, source)
        return {"target": dest, "md5sum": file_md5(source), "size": source.stat().st_size}

    def _put(self, bucket: str, key: str, source: Path) -> None:
        self.log.info(f"uploading {source} to s3://{bucket}/{key}")
        try:
            self.store.put_file(bucket, key, source)
        except (OSError, ValueError) as err:
            raise OutputError(f"failed to upload output file {source} to {bucket}/{key}. {err}") from err

    def _upload_folder(self, bucket: str, job_path: str, source: Path, dest: str, unzip: bool) -> int:
        if unzip:
            self.log.info(f"Warning: unzip option is ignored because the source {source} is a directory.")
        total = 0
        for name, path in list(self._folder_files(job_path, source, set())):  # all checked before any upload
            self._put(bucket, f"{dest.rstrip('/')}/{name}", path)
            total += path.stat().st_size
        return total

    def _folder_files(self, job_path: str, folder: Path, seen: set[Path]) -> Iterator[tuple[str, Path]]:
        """(name relative to the output folder, real file) for every file in it, in name order; links
        are followed through `resolve`, so they too must stay inside the job folder."""
        if folder in seen:  # links that loop back
            return
        seen.add(folder)
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            entry_job_path = f"{job_path.rstrip('/')}/{entry.name}"
            real = self.resolve(entry_job_path) if entry.is_symlink() else Path(entry.path)
            if real.is_dir():
                for name, path in self._folder_files(entry_job_path, real, seen):
                    yield f"{entry.name}/{name}", path
            elif real.exists():
                yield entry.name, real
            else:
                raise OutputError(f"failed to upload output folder {job_path}: {entry_job_path} is a broken link")

    def _upload_zip_members(self, bucket: str, source: Path, prefix: str) -> None:
        try:
            archive = zipfile.ZipFile(source)
        except (OSError, zipfile.BadZipFile) as err:
            raise OutputError(f"Unzipping failed: source {source} may not be a zip file ({err})") from err
        with archive, tempfile.TemporaryDirectory(dir=self.scratch) as tmp:
            for member in archive.infolist():
                if member.is_dir():
                    continue
                extracted = Path(tmp, "member")
                with archive.open(member) as src, open(extracted, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                self._put(bucket, prefix + member.filename, extracted)

    def _upload_secondary(self, target: OutputTarget, files: list[dict], dests: list[str]) -> None:
        """Secondary files to the targets whose last 3 characters match, else under their own name."""
        if len(files) < len(dests):
            raise OutputError(f"Not enough source_paths for secondary targets ({len(files)} vs {len(dests)})")
        for secondary in files:
            dest = next((d for d in dests if d[-3:] == secondary["path"][-3:]), None)
            bucket, key = parse_s3_url(dest) if dest and dest.startswith("s3://") else (target.bucket, dest)
            source_target = OutputTarget(source=secondary["path"], bucket=bucket, key=key, prefix=None)
            secondary.update(self._upload(source_target, secondary["path"]))


def _argname(name: str, runner_files: dict[str, dict], alt_names: dict[str, list[str]]) -> str:
    """The output argname behind a target: itself, or the first of its alt_cond_output_argnames present."""
    if name in runner_files:
        return name
    for alternative in alt_names.get(name, []):
        if alternative in runner_files:
            return alternative
    raise OutputError(f"output target key {name} doesn't exist in argname list")
