"""A Django storage on the portal's own S3 endpoint (django-storages' S3Storage), for thumbnails.

Its endpoint, keys, region, addressing style and timeouts are the gateway's S3_* settings, read
when the storage is built (Django builds it on first use, and again after STORAGES changes), so
that it always follows the configured endpoint. botocore's errors become S3Error, as in the rest
of the gateway.
"""

import threading
import weakref
from typing import Any

from botocore.config import Config
from django.conf import settings
from storages.backends.s3 import S3Storage

from sharing.s3 import health
from sharing.s3.buckets import bucket_exists, create_bucket
from sharing.s3.core import _remember_request_id, translated

__all__ = ["PortalS3Storage", "read_stored"]


class PortalS3Storage(S3Storage):
    """An S3Storage on the gateway's endpoint and keys; give it `bucket_name` in OPTIONS."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.bucket_known = False  # ensure_bucket has found or made the bucket in this process
        self._watched: weakref.WeakSet = weakref.WeakSet()
        self._watching = threading.Lock()

    @property
    def connection(self) -> Any:
        # Each thread gets its own client from S3Storage: each is hooked, once, to the gateway's
        # circuit breaker, time budget and request ids, so that a stalled storage answers 503 at
        # once here too instead of holding a thread per thumbnail.
        connection = super().connection
        client = connection.meta.client
        with self._watching:
            if client not in self._watched:
                client.meta.events.register("after-call.s3", _remember_request_id)
                health.register(client)
                self._watched.add(client)
        return connection

    def get_default_settings(self) -> dict[str, Any]:
        defaults = super().get_default_settings()
        defaults.update(
            endpoint_url=settings.S3_ENDPOINT_URL or None,
            access_key=settings.S3_ACCESS_KEY_ID or None,
            secret_key=settings.S3_SECRET_ACCESS_KEY or None,
            security_token=settings.S3_SESSION_TOKEN or None,
            region_name=settings.S3_REGION,
            addressing_style=settings.S3_ADDRESSING_STYLE,
            signature_version="s3v4",
            client_config=Config(
                signature_version="s3v4",
                region_name=settings.S3_REGION,
                connect_timeout=settings.S3_CONNECT_TIMEOUT,
                read_timeout=settings.S3_READ_TIMEOUT,
                retries={"mode": "standard", "total_max_attempts": settings.S3_MAX_ATTEMPTS},
                s3={"addressing_style": settings.S3_ADDRESSING_STYLE},
            ),
            # Thumbnails are served by the portal itself, never by URL, and never made public.
            querystring_auth=False,
            default_acl=None,
            file_overwrite=True,
        )
        return defaults

    def ensure_bucket(self) -> bool:
        """Create the storage's bucket when it does not exist; return whether it was created."""
        created = False
        if not bucket_exists(self.bucket_name):
            create_bucket(self.bucket_name)
            created = True
        self.bucket_known = True
        return created

    @translated
    def save(self, name: str | None, content: Any, max_length: int | None = None) -> str:
        return super().save(name, content, max_length=max_length)

    @translated
    def delete(self, name: str) -> None:
        super().delete(name)


@translated
def read_stored(storage: Any, name: str) -> bytes:
    """Return a small stored file's bytes from any Django storage (FileNotFoundError: none)."""
    with storage.open(name, "rb") as stored:
        return stored.read()
