"""The readiness probe of a freshly started S3 server, for the embedded launcher.

It runs before Django's settings may exist, so its client is built from its arguments alone.
"""

import functools
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from sharing.s3.core import S3Error

__all__ = ["READY_PROBE_BUCKET", "ready_check"]

READY_PROBE_BUCKET = "portal-ready-probe"


@functools.lru_cache(maxsize=4)
def _probe_client(endpoint_url: str, access_key: str, secret_key: str) -> Any:
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        connect_timeout=1,
        read_timeout=5,
        retries={"total_max_attempts": 1},
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        config=config,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
    )


def ready_check(endpoint_url: str, *, access_key: str, secret_key: str) -> None:
    """Create a bucket, put and delete an object, delete the bucket; raise S3Error if one fails."""
    client = _probe_client(endpoint_url, access_key, secret_key)
    # A listing answers before the filer and volume server accept writes: only writes tell.
    try:
        try:
            client.create_bucket(Bucket=READY_PROBE_BUCKET)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass  # left behind by a run killed mid-probe
        client.put_object(Bucket=READY_PROBE_BUCKET, Key="probe", Body=b"ready")
        client.delete_object(Bucket=READY_PROBE_BUCKET, Key="probe")
        client.delete_bucket(Bucket=READY_PROBE_BUCKET)
    except (BotoCoreError, ClientError) as error:
        # The launcher shows the last of these when the server never gets ready: keep the detail.
        name = type(error).__name__
        raise S3Error(f"{name}: {error}", status=503, code=name) from error
