"""Results in an S3-compatible bucket (AWS S3, MinIO, Cloudflare R2, Ceph RGW), through boto3.

``SOUNDGEN_STORAGE_URL=s3://bucket/prefix``. Endpoint, region and credentials come from boto3's usual sources:
``AWS_ENDPOINT_URL`` (for anything that is not AWS), ``AWS_DEFAULT_REGION``, ``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE`` and the files under ``~/.aws``, or an instance role. Nothing here
knows which server answers: it speaks plain S3 (put, get, head, list, delete, presigned GET).

Every object key is ``<prefix>/<key>`` where ``key`` is one the server made (``storage.check_key``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from soundgen.errors import ConfigError
from soundgen.service.storage import CHUNK_BYTES, Blob, check_key

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX_PART = re.compile(r"^[A-Za-z0-9_.-]+$")
_MISSING = {"404", "NoSuchKey", "NotFound"}


def parse_s3_url(url: str) -> tuple[str, str]:
    """The bucket and key prefix (no leading or trailing slash; may be empty) of ``s3://bucket/prefix``.

    Raises:
        ConfigError: no bucket, a bucket name S3 would refuse, or a prefix with empty, ``.`` or ``..`` parts.
    """
    rest = url[len("s3://"):] if url.startswith("s3://") else ""
    bucket, _, prefix = rest.partition("/")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise ConfigError(f"storage URL {url!r}: {bucket!r} is not an S3 bucket name (3-63 characters: a-z, 0-9, "
                          "'.', '-'); write it as s3://bucket/optional/prefix")
    prefix = prefix.strip("/")
    parts = prefix.split("/") if prefix else []
    if any(not _PREFIX_PART.match(p) or p in (".", "..") for p in parts):
        raise ConfigError(f"storage URL {url!r}: the prefix {prefix!r} may only have parts of A-Z, a-z, 0-9, "
                          "'_', '.', '-' (no empty, '.' or '..' parts)")
    return bucket, prefix


def s3_client(*, timeout: float | None = None, attempts: int = 5) -> Any:
    """A boto3 S3 client configured the usual AWS way (environment, profile files, instance role).

    SigV4 everywhere (R2 and newer regions need it for presigned URLs); standard retries for the odd 5xx.

    Args:
        timeout: connect and read timeout in seconds (None: botocore's 60 s).
        attempts: tries per request, the first included (``serve --check`` makes one).
    """
    try:
        import boto3
        from botocore.config import Config
    except ImportError as e:
        raise ConfigError("S3 storage needs boto3: pip install 'soundgen[service]'") from e
    timeouts = {} if timeout is None else {"connect_timeout": timeout, "read_timeout": timeout}
    return boto3.session.Session().client("s3", config=Config(
        signature_version="s3v4", retries={"max_attempts": attempts, "mode": "standard"}, max_pool_connections=32,
        **timeouts))


def _error_code(e: Exception) -> str:
    return str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))


class S3Storage:
    """Storage in an S3 bucket under a key prefix; see the module docstring.

    Args:
        bucket: the bucket (it must exist; the server never creates one).
        prefix: a key prefix without slashes at either end, or "".
        client: a boto3 S3 client (default: :func:`s3_client`).
        presign_seconds: when above 0, downloads are redirected to presigned URLs valid this long; at 0 the
            server streams them (the bucket then needs no route from the client).
    """

    def __init__(self, bucket: str, prefix: str = "", client: Any = None, presign_seconds: int = 0) -> None:
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.client = client if client is not None else s3_client()
        self.presign_seconds = presign_seconds

    def _key(self, key: str) -> str:
        key = check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes) -> None:
        """One PUT: S3 makes an object visible whole or not at all."""
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def _get_object(self, key: str) -> Any:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as e:
            if _error_code(e) in _MISSING:
                raise FileNotFoundError(f"s3://{self.bucket}/{self._key(key)}") from e
            raise

    def get(self, key: str) -> bytes:
        """The bytes of ``key``; FileNotFoundError when absent."""
        body = self._get_object(key)["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    def exists(self, key: str) -> bool:
        """Whether ``key`` holds an object (a HEAD request)."""
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as e:
            if _error_code(e) in _MISSING:
                return False
            raise
        return True

    def delete_prefix(self, prefix: str) -> None:
        """Delete the object ``prefix`` and every object under ``prefix/`` (pages of up to 1000 keys)."""
        base = self._key(prefix)
        self.client.delete_object(Bucket=self.bucket, Key=base)  # S3 answers 204 for an absent key too
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base + "/")
        for page in pages:
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})

    def local_path(self, key: str) -> Path | None:
        """None: objects have no filesystem path."""
        return None

    def stream(self, key: str) -> Blob:
        """The object's bytes in chunks as they arrive (the whole object never sits in memory)."""
        obj = self._get_object(key)
        body = obj["Body"]

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(CHUNK_BYTES)
            finally:
                body.close()

        return Blob(chunks(), int(obj["ContentLength"]))

    def presigned_url(self, key: str, *, media_type: str, disposition: str) -> str | None:
        """A presigned GET of ``key`` that answers with ``media_type`` and ``disposition``, when redirects are on."""
        if self.presign_seconds <= 0:
            return None
        params = {"Bucket": self.bucket, "Key": self._key(key), "ResponseContentType": media_type,
                  "ResponseContentDisposition": disposition}
        return str(self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=self.presign_seconds))
