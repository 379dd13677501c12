"""Object stores behind one interface: local bucket folders and S3.

A location is `s3://<bucket>/<key>` on both backends; on the local backend the bucket is the
folder `TIBANNA_HOME/buckets/<bucket>/`.
"""
from __future__ import annotations

from tibanna.storage.base import ObjectStore, parse_s3_url
from tibanna.storage.local import LocalStore

__all__ = ["ObjectStore", "LocalStore", "parse_s3_url"]
