"""Local buckets: `<root>/<bucket>/<key>` files, written aside then renamed into place."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from tibanna.storage.base import ObjectStore


class LocalStore(ObjectStore):
    """Buckets as folders under `root`; a bucket folder is created on first write."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path(self, bucket: str, key: str) -> Path:
        """The file behind an object; refuses keys that would leave the bucket folder."""
        if not bucket or "/" in bucket or bucket in (".", ".."):
            raise ValueError(f"invalid bucket name {bucket!r}")
        base = self.root / bucket
        target = (base / key).resolve() if key else base.resolve()
        if target != base.resolve() and base.resolve() not in target.parents:
            raise ValueError(f"key {key!r} escapes bucket {bucket!r}")
        return base / key

    def _write_atomically(self, dest: Path, fill) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                fill(handle)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_bytes(self, bucket: str, key: str, data: bytes) -> None:
        self._write_atomically(self.path(bucket, key), lambda h: h.write(data))

    def put_file(self, bucket: str, key: str, path: Path) -> None:
        with open(path, "rb") as src:
            self._write_atomically(self.path(bucket, key), lambda h: shutil.copyfileobj(src, h, 1 << 20))

    def get_bytes(self, bucket: str, key: str) -> bytes | None:
        try:
            return self.path(bucket, key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def get_file(self, bucket: str, key: str, path: Path) -> None:
        src = self.path(bucket, key)
        if not src.is_file():
            raise FileNotFoundError(f"s3://{bucket}/{key} does not exist")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, path)

    def exists(self, bucket: str, key: str) -> bool:
        return self.path(bucket, key).is_file()

    def size(self, bucket: str, key: str) -> int | None:
        try:
            return self.path(bucket, key).stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            return None

    def list_keys(self, bucket: str, prefix: str = "") -> Iterator[str]:
        base = self.root / bucket
        if not base.is_dir():
            return iter(())
        # Walk only the folder the prefix points into, not the whole bucket.
        start = base / prefix.rpartition("/")[0] if "/" in prefix else base
        keys = []
        for dirpath, dirnames, filenames in os.walk(start):
            rel_dir = os.path.relpath(dirpath, base)
            for name in filenames:
                if name.startswith(".tmp-"):
                    continue
                k = name if rel_dir == "." else f"{rel_dir}/{name}"
                if k.startswith(prefix):
                    keys.append(k)
        return iter(sorted(keys))

    def delete(self, bucket: str, key: str) -> None:
        """Delete the file, then the folders it leaves empty (a bucket has no empty 'folders')."""
        path = self.path(bucket, key)
        path.unlink(missing_ok=True)
        base = self.root / bucket
        for parent in path.parents:
            if parent == base or base not in parent.parents:
                break
            try:
                parent.rmdir()
            except OSError:
                break
