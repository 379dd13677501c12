"""The object-store interface shared by local folders and S3."""
from __future__ import annotations

import abc
from pathlib import Path
from typing import Iterator


def parse_s3_url(url: str) -> tuple[str, str]:
    """Split `s3://bucket/key` into (bucket, key); the key may be empty."""
    if not isinstance(url, str) or not url.startswith("s3://"):
        raise ValueError(f"S3 url must begin with 's3://': {url!r}")
    bucket, _, key = url[len("s3://"):].partition("/")
    if not bucket:
        raise ValueError(f"S3 url has no bucket: {url!r}")
    return bucket, key


class ObjectStore(abc.ABC):
    """Buckets of objects. Writes are atomic: a reader sees a whole object or none."""

    @abc.abstractmethod
    def put_bytes(self, bucket: str, key: str, data: bytes) -> None:
        """Write an object."""

    @abc.abstractmethod
    def put_file(self, bucket: str, key: str, path: Path) -> None:
        """Upload a local file as an object."""

    @abc.abstractmethod
    def get_bytes(self, bucket: str, key: str) -> bytes | None:
        """An object's content, or None when it does not exist."""

    @abc.abstractmethod
    def get_file(self, bucket: str, key: str, path: Path) -> None:
        """Download an object to a local file (parents created); FileNotFoundError if absent."""

    @abc.abstractmethod
    def exists(self, bucket: str, key: str) -> bool:
        """Whether the object exists."""

    @abc.abstractmethod
    def size(self, bucket: str, key: str) -> int | None:
        """The object's size in bytes, or None when it does not exist."""

    @abc.abstractmethod
    def list_keys(self, bucket: str, prefix: str = "") -> Iterator[str]:
        """Keys under a prefix, in lexical order."""

    @abc.abstractmethod
    def delete(self, bucket: str, key: str) -> None:
        """Delete an object; deleting a missing object is not an error."""

    def put_text(self, bucket: str, key: str, text: str) -> None:
        """Write a UTF-8 text object."""
        self.put_bytes(bucket, key, text.encode())

    def get_text(self, bucket: str, key: str) -> str | None:
        """A text object decoded as UTF-8 (undecodable bytes escaped), or None when absent."""
        data = self.get_bytes(bucket, key)
        return None if data is None else data.decode("utf-8", "backslashreplace")

    def is_prefix(self, bucket: str, key: str) -> bool:
        """Whether `key` names a folder: objects exist under `key/` (and no object `key`)."""
        prefix = key.rstrip("/") + "/"
        return next(iter(self.list_keys(bucket, prefix)), None) is not None
