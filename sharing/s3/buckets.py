"""Bucket operations."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from django.conf import settings
from django.utils.translation import ngettext

from sharing.s3.core import (
    STATUS_BY_CODE,
    Bucket,
    S3Error,
    _batches,
    client,
    long_client,
    translated,
)
from sharing.s3.health import long_call


@translated
def list_buckets() -> list[Bucket]:
    """Return every bucket the portal's credentials can see, by name."""
    response = client().list_buckets()
    return sorted(
        (
            Bucket(name=b["Name"], created=b.get("CreationDate"))
            for b in response.get("Buckets", [])
        ),
        key=lambda bucket: bucket.name,
    )


@dataclass(frozen=True)
class BucketUsage:
    files: int
    bytes: int
    complete: bool  # False: the bucket holds more files than these


@translated
def bucket_usage(name: str, *, limit: int = 1000) -> BucketUsage:
    """Return the count and total size of a bucket's first `limit` files, and whether that is all."""
    # One ListObjectsV2 page: S3 has no call that tells a bucket's size (CloudWatch aside).
    response = client().list_objects_v2(Bucket=name, MaxKeys=limit)
    contents = response.get("Contents", [])
    return BucketUsage(
        files=len(contents),
        bytes=sum(item.get("Size", 0) for item in contents),
        complete=not response.get("IsTruncated"),
    )


@translated
def bucket_exists(name: str) -> bool:
    """Return whether a bucket of that name exists (one owned by someone else counts)."""
    try:
        client().head_bucket(Bucket=name)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchBucket", "NotFound"):
            return False
        if code in ("403", "AccessDenied"):
            return True
        raise
    return True


@translated
def create_bucket(name: str, *, allow_acls: bool = False) -> None:
    """Create a bucket in the configured region."""
    params: dict[str, Any] = {"Bucket": name}
    if settings.S3_REGION != "us-east-1":
        params["CreateBucketConfiguration"] = {"LocationConstraint": settings.S3_REGION}
    if allow_acls:
        params["ObjectOwnership"] = "BucketOwnerPreferred"
    client().create_bucket(**params)


@translated
def delete_bucket(name: str) -> None:
    """Delete an empty bucket."""
    client().delete_bucket(Bucket=name)


@translated
def bucket_is_empty(name: str) -> bool:
    """Return whether the bucket holds no objects."""
    response = client().list_objects_v2(Bucket=name, MaxKeys=1)
    return response.get("KeyCount", 0) == 0


def _all_object_identifiers(name: str) -> Iterator[dict[str, str]]:
    paginator = client().get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=name):
        for item in page.get("Contents", []):
            yield {"Key": item["Key"]}


@translated
@long_call()
def empty_bucket(name: str) -> int:
    """Delete every object and abort every unfinished upload in a bucket; return objects deleted."""
    s3 = long_client()
    deleted = 0
    for batch in _batches(_all_object_identifiers(name)):
        response = s3.delete_objects(Bucket=name, Delete={"Objects": batch, "Quiet": True})
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            count = ngettext("%d file", "%d files", len(errors)) % len(errors)
            raise S3Error(
                f"{count} could not be deleted ({first.get('Code')}: {first.get('Key')}).",
                status=STATUS_BY_CODE.get(first.get("Code", ""), 409),
                code=first.get("Code", ""),
            )
        deleted += len(batch)
    uploads = s3.get_paginator("list_multipart_uploads")
    for page in uploads.paginate(Bucket=name):
        for upload in page.get("Uploads", []):
            s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    return deleted


@translated
def allow_public_access(name: str) -> None:
    """Remove the bucket's Block Public Access settings so files may be made public."""
    client().delete_public_access_block(Bucket=name)


@translated
def abort_incomplete_uploads_after(name: str, *, days: int) -> None:
    """Set a lifecycle rule that aborts multipart uploads left unfinished for that many days."""
    client().put_bucket_lifecycle_configuration(
        Bucket=name,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "s3portal-abort-incomplete-uploads",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": days},
                }
            ]
        },
    )
