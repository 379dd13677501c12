"""S3 buckets behind the ObjectStore interface, and the one factory for every boto3 client.

The factory lives here, at the lowest layer that talks to AWS, so that the AWS backend, its
Lambdas and the agent on an instance all build clients the same way: region, profile and
`AWS_ENDPOINT_URL` (and botocore's per-service `AWS_ENDPOINT_URL_<SERVICE>`) honoured, and
botocore's `adaptive` retries (exponential back-off plus a client-side token bucket that slows
the caller when AWS throttles), so bursts stay within rate limits without sleeps.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterable, Iterator

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from tibanna import settings
from tibanna.storage.base import ObjectStore

DEFAULT_REGION = "us-east-1"
MAX_ATTEMPTS = 10
MAX_POOL_CONNECTIONS = 32
# Parallel multipart transfers above 16 MiB, 10 parts in flight (boto3's transfer manager).
TRANSFER = TransferConfig(multipart_threshold=16 * 2**20, multipart_chunksize=16 * 2**20, max_concurrency=10)
_MISSING = ("404", "NoSuchKey", "NotFound")


def resolve_region(region: str | None = None, profile: str | None = None) -> str:
    """The argument, else TIBANNA_AWS_REGION, else AWS_REGION, else the session's, else us-east-1."""
    return (region or settings.TIBANNA_AWS_REGION.get() or settings.AWS_REGION.get()
            or boto3.Session(profile_name=profile).region_name or DEFAULT_REGION)


def error_code(err: BaseException) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(err, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class Clients:
    """boto3 clients for one region/profile/endpoint: each service's created once, thread-safe."""

    def __init__(self, region: str | None = None, profile: str | None = None,
                 endpoint_url: str | None = None) -> None:
        self.profile = profile
        self.region = resolve_region(region, profile)
        self.endpoint_url = endpoint_url or settings.AWS_ENDPOINT_URL.get()
        self.session = boto3.Session(profile_name=profile, region_name=self.region)
        self.config = Config(retries={"mode": "adaptive", "max_attempts": MAX_ATTEMPTS},
                             max_pool_connections=MAX_POOL_CONNECTIONS)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._account: str | None = None

    def __call__(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is None:
            with self._lock:
                client = self._clients.get(service)
                if client is None:
                    kwargs: dict[str, Any] = {"config": self.config}
                    if self.endpoint_url:
                        kwargs["endpoint_url"] = self.endpoint_url
                    client = self._clients[service] = self.session.client(service, **kwargs)
        return client

    @property
    def account(self) -> str:
        """AWS_ACCOUNT_NUMBER, else the caller's account (one STS call, remembered)."""
        if self._account is None:
            self._account = settings.AWS_ACCOUNT_NUMBER.get() or self("sts").get_caller_identity()["Account"]
        return self._account


class S3Store(ObjectStore):
    """Objects in S3. A PUT is atomic, so readers see a whole object or none, as the interface asks."""

    def __init__(self, clients: Clients | None = None) -> None:
        self.clients = clients or Clients()

    @property
    def s3(self) -> Any:
        return self.clients("s3")

    def put_bytes(self, bucket: str, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=bucket, Key=key, Body=data)

    def put_file(self, bucket: str, key: str, path: Path) -> None:
        self.s3.upload_file(str(path), bucket, key, Config=TRANSFER)

    def get_bytes(self, bucket: str, key: str) -> bytes | None:
        try:
            return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as err:
            if error_code(err) in _MISSING:
                return None
            raise

    def get_file(self, bucket: str, key: str, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # the transfer manager writes aside and renames, so a reader never sees half a file
            self.s3.download_file(bucket, key, str(path), Config=TRANSFER)
        except ClientError as err:
            if error_code(err) in _MISSING:
                raise FileNotFoundError(f"s3://{bucket}/{key} does not exist") from None
            raise

    def head(self, bucket: str, key: str) -> dict | None:
        """The object's HEAD response (size, LastModified, ...), or None when it does not exist."""
        try:
            return self.s3.head_object(Bucket=bucket, Key=key)
        except ClientError as err:
            if error_code(err) in _MISSING:
                return None
            raise

    def exists(self, bucket: str, key: str) -> bool:
        return self.head(bucket, key) is not None

    def size(self, bucket: str, key: str) -> int | None:
        found = self.head(bucket, key)
        return None if found is None else int(found["ContentLength"])

    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[dict]:
        """ListObjectsV2 entries under a prefix (key, size, LastModified), 1,000 a page."""
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            yield from page.get("Contents", [])

    def list_keys(self, bucket: str, prefix: str = "") -> Iterator[str]:
        return (entry["Key"] for entry in self.list_objects(bucket, prefix))

    def delete(self, bucket: str, key: str) -> None:
        self.s3.delete_object(Bucket=bucket, Key=key)

    def delete_many(self, bucket: str, keys: Iterable[str]) -> int:
        """Delete objects 1,000 per request; returns how many were asked for."""
        keys = list(keys)
        for i in range(0, len(keys), 1000):
            chunk = [{"Key": k} for k in keys[i:i + 1000]]
            self.s3.delete_objects(Bucket=bucket, Delete={"Objects": chunk, "Quiet": True})
        return len(keys)
