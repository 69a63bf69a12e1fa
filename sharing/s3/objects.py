"""Object operations: listing, metadata, download links, copy and delete."""

import contextlib
import datetime
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from sharing.s3.core import (
    STATUS_BY_CODE,
    ObjectSummary,
    Page,
    S3Error,
    _batches,
    client,
    long_client,
    page_from,
    presign_client,
    translated,
)
from sharing.s3.health import long_call

MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4's limit; botocore signs longer ones without complaint
# Above 64 MiB, copy by UploadPartCopy in 64 MiB parts (objects over CopyObject's 5 GiB limit
# need it anyway): servers such as SeaweedFS answer a CopyObject only when it is done, so one
# CopyObject of a few GiB outlasts S3_READ_TIMEOUT and is retried from scratch. Measured on
# SeaweedFS: as fast as boto3's managed copy (0.90-0.94x), longest request ~7 s for 1 GiB.
MULTIPART_COPY_THRESHOLD = 64 * 1024**2
COPY_CHUNK = 64 * 1024**2
READ_CHUNK = 1024**2  # what one read of an object's body holds in memory


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str
    etag: str
    last_modified: datetime.datetime
    storage_class: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeleteResult:
    deleted: list[str]
    failed: dict[str, str]  # key -> S3 error code


@translated
def list_page(bucket: str, *, prefix: str = "", token: str = "", size: int = 200) -> Page:
    """Return one page of a folder: its sub-folders and files, and the token of the next page."""
    params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "Delimiter": "/", "MaxKeys": size}
    if token:
        params["ContinuationToken"] = token
    response = client().list_objects_v2(**params)
    return page_from(response)


@translated
def list_keys(bucket: str, *, prefix: str) -> list[ObjectSummary]:
    """Return every object under a prefix, all pages, without folder grouping."""
    found = []
    for page in client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found.append(
                ObjectSummary(
                    key=item["Key"],
                    size=item.get("Size", 0),
                    last_modified=item["LastModified"],
                    etag=item.get("ETag", "").strip('"'),
                )
            )
    return found


@translated
def list_after(
    bucket: str, *, prefix: str, after: str = "", size: int = 1000
) -> list[ObjectSummary]:
    """Return up to `size` objects under a prefix whose keys sort after `after`, in S3's order."""
    params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": size}
    if after:
        params["StartAfter"] = after
    return page_from(client().list_objects_v2(**params)).objects


@translated
def head(bucket: str, key: str) -> ObjectInfo | None:
    """Return an object's metadata, or None when it does not exist."""
    try:
        response = client().head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if str(error.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return ObjectInfo(
        key=key,
        size=response.get("ContentLength", 0),
        content_type=response.get("ContentType", ""),
        etag=response.get("ETag", "").strip('"'),
        last_modified=response["LastModified"],
        storage_class=response.get("StorageClass", "STANDARD"),
        metadata=response.get("Metadata", {}),
    )


def content_disposition(filename: str) -> str:
    """Return an RFC 6266 attachment header: an ASCII fallback plus the UTF-8 name."""
    fallback = "".join(
        char if 32 <= ord(char) < 127 and char not in '"\\' else "_" for char in filename
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@translated
def presigned_get(bucket: str, key: str, *, filename: str, seconds: int) -> str:
    """Return a SigV4 GET URL valid for `seconds` (capped at 7 days) that downloads as a file."""
    return _presigned(
        bucket, key, seconds=seconds, ResponseContentDisposition=content_disposition(filename)
    )


def _presigned(bucket: str, key: str, *, seconds: int, **response: str) -> str:
    if not 1 <= seconds <= MAX_PRESIGN_SECONDS:
        raise S3Error("A link must last between 1 second and 7 days.", status=400, code="BadExpiry")
    return presign_client().generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key, **response}, ExpiresIn=seconds
    )


def inline_disposition(filename: str) -> str:
    """Return an RFC 6266 inline header (shown by the browser, not saved), with the UTF-8 name."""
    return "inline" + content_disposition(filename).removeprefix("attachment")


@translated
def presigned_inline(
    bucket: str, key: str, *, filename: str, content_type: str, seconds: int
) -> str:
    """Return a SigV4 GET URL valid for `seconds` that S3 answers inline with `content_type`."""
    # The stored type is whatever the uploader said: S3 answers with the portal's choice.
    return _presigned(
        bucket,
        key,
        seconds=seconds,
        ResponseContentDisposition=inline_disposition(filename),
        ResponseContentType=content_type,
    )


@translated
def read_head(bucket: str, key: str, *, size: int) -> bytes:
    """Return at most the first `size` bytes of an object: one ranged GET, the rest never sent."""
    try:
        response = client().get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{size - 1}")
    except ClientError as error:
        if str(error.response.get("Error", {}).get("Code")) == "InvalidRange":
            return b""  # an empty object has no byte 0
        raise
    with contextlib.closing(response["Body"]) as body:
        # read(size): a server that ignored the Range header still costs no more than `size`.
        return body.read(size)


def read_chunks(bucket: str, key: str, *, chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
    """Yield an object's bytes as S3 sends them, `chunk_size` at a time, never the whole body."""
    body = _open_body(bucket, key)
    with contextlib.closing(body):
        chunks = body.iter_chunks(chunk_size)
        while chunk := _next_chunk(chunks):
            yield chunk


@translated
@long_call()
def _open_body(bucket: str, key: str) -> Any:
    # A body is read for as long as the archive takes to send: outside the page's time budget,
    # with the long client, whose read timeout applies to each socket read, not to the body.
    return long_client().get_object(Bucket=bucket, Key=key)["Body"]


@translated
def _next_chunk(chunks: Iterator[bytes]) -> bytes:
    # Reading the body raises botocore's errors (a timeout, a cut connection): translated here.
    return next(chunks, b"")


@translated
def put_empty(bucket: str, key: str) -> None:
    """Store a 0-byte object (a folder marker when the key ends with '/')."""
    client().put_object(Bucket=bucket, Key=key, Body=b"")


@translated
@long_call()
def copy(
    src_bucket: str, src_key: str, dst_bucket: str, dst_key: str, *, size: int | None = None
) -> None:
    """Copy an object, by multipart copy when it is larger than CopyObject allows."""
    if size is not None and size <= MULTIPART_COPY_THRESHOLD:
        # The size is known (from a listing): one CopyObject, without the managed copy's
        # HeadObject and thread pool, which made a folder of small files 3x slower. botocore
        # raises on a 200 that carries an error body for CopyObject too.
        source = {"Bucket": src_bucket, "Key": src_key}
        long_client().copy_object(CopySource=source, Bucket=dst_bucket, Key=dst_key)
        return
    config = TransferConfig(
        multipart_threshold=MULTIPART_COPY_THRESHOLD, multipart_chunksize=COPY_CHUNK
    )
    # The managed copy checks each part's answer: a 200 carrying an error body still raises.
    long_client().copy({"Bucket": src_bucket, "Key": src_key}, dst_bucket, dst_key, Config=config)


@translated
def delete(bucket: str, key: str) -> None:
    """Delete one object (deleting a missing key succeeds, as in S3)."""
    client().delete_object(Bucket=bucket, Key=key)


@translated
@long_call()
def delete_many(bucket: str, keys: list[str]) -> DeleteResult:
    """Delete keys in batches of 1000; return what was deleted and what failed with which code."""
    deleted: list[str] = []
    failed: dict[str, str] = {}
    for batch in _batches({"Key": key} for key in keys):
        response = long_client().delete_objects(
            Bucket=bucket, Delete={"Objects": batch, "Quiet": True}
        )
        errors = {error["Key"]: error.get("Code", "") for error in response.get("Errors", [])}
        failed.update(errors)
        deleted.extend(item["Key"] for item in batch if item["Key"] not in errors)
    return DeleteResult(deleted=deleted, failed=failed)


def error_status(code: str) -> int:
    """Return the HTTP status the portal answers with for an S3 error code."""
    return STATUS_BY_CODE.get(code, 409)
