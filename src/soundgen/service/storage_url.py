"""The storage a URL names: ``file:///a/directory`` (the default, under the data directory) or
``s3://bucket/prefix`` (any S3-compatible server; see ``s3storage``)."""

from __future__ import annotations

from urllib.parse import urlparse

from soundgen.errors import ConfigError
from soundgen.service.storage import LocalStorage, Storage


def open_storage(url: str, presign_seconds: int = 0) -> Storage:
    """The storage behind ``url``.

    Args:
        url: ``file:///path``, a plain path, or ``s3://bucket/prefix``.
        presign_seconds: S3 only: above 0, downloads redirect to presigned URLs valid this long.

    Raises:
        ConfigError: an unsupported scheme, or a malformed S3 URL.
    """
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return LocalStorage(parsed.path if parsed.scheme else url)
    if parsed.scheme == "s3":
        from soundgen.service.s3storage import S3Storage, parse_s3_url

        bucket, prefix = parse_s3_url(url)
        return S3Storage(bucket, prefix, presign_seconds=presign_seconds)
    raise ConfigError(f"storage URL scheme {parsed.scheme!r} is not supported; use file:///a/directory or "
                      "s3://bucket/prefix")
