"""S3Store: the ObjectStore contract on S3 (moto), multipart transfers included."""
from __future__ import annotations

import os

import boto3
import pytest

from tibanna.storage import s3 as s3_module
from tibanna.storage.s3 import Clients, S3Store, resolve_region

pytestmark = pytest.mark.usefixtures("aws_checks_requests")


@pytest.fixture
def store(moto_endpoint: str) -> S3Store:
    boto3.client("s3").create_bucket(Bucket="store-bucket")
    return S3Store(Clients())


def test_objects_round_trip(store, tmp_path):
    store.put_text("store-bucket", "a/b.txt", "héllo")
    assert store.get_text("store-bucket", "a/b.txt") == "héllo"
    assert store.get_bytes("store-bucket", "missing") is None
    assert store.exists("store-bucket", "a/b.txt") and not store.exists("store-bucket", "a")
    assert store.size("store-bucket", "a/b.txt") == len("héllo".encode()) and store.size("store-bucket", "x") is None
    assert store.is_prefix("store-bucket", "a") and not store.is_prefix("store-bucket", "a/b.txt")
    with pytest.raises(FileNotFoundError):
        store.get_file("store-bucket", "missing", tmp_path / "m")
    store.delete("store-bucket", "missing")  # not an error


def test_listing_pages_and_bulk_delete(store):
    for i in range(1005):
        store.put_bytes("store-bucket", f"many/{i:04d}", b"")
    keys = list(store.list_keys("store-bucket", "many/"))
    assert len(keys) == 1005 and keys == sorted(keys)
    assert store.delete_many("store-bucket", keys) == 1005
    assert list(store.list_keys("store-bucket", "many/")) == []


def test_large_files_go_multipart_both_ways(store, tmp_path, monkeypatch):
    monkeypatch.setattr(s3_module, "TRANSFER", s3_module.TransferConfig(
        multipart_threshold=5 * 2**20, multipart_chunksize=5 * 2**20, max_concurrency=4))
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(11 * 2**20))
    store.put_file("store-bucket", "big.bin", source)
    head = store.head("store-bucket", "big.bin")
    assert head["ContentLength"] == 11 * 2**20 and head["ETag"].strip('"').endswith("-3")  # three parts
    store.get_file("store-bucket", "big.bin", tmp_path / "down" / "big.bin")
    assert (tmp_path / "down" / "big.bin").read_bytes() == source.read_bytes()


def test_region_resolution(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.delenv("TIBANNA_AWS_REGION", raising=False)
    assert resolve_region() == "eu-west-1"
    monkeypatch.setenv("TIBANNA_AWS_REGION", "ap-south-1")
    assert resolve_region() == "ap-south-1" and resolve_region("us-west-2") == "us-west-2"
    clients = Clients(endpoint_url="http://127.0.0.1:1")
    assert clients("s3").meta.endpoint_url == "http://127.0.0.1:1" and clients("s3") is clients("s3")
    assert clients("s3").meta.config.retries["mode"] == "adaptive"


def test_agent_takes_store_s3(moto_endpoint):
    from tibanna.agent.__main__ import parse_store

    assert isinstance(parse_store("s3"), S3Store)
    assert parse_store("s3:eu-west-1").clients.region == "eu-west-1"
