"""Multipart uploads: create, sign parts, list, complete, abort; bucket CORS; streamed part PUTs."""

import datetime
import http.client
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from botocore.exceptions import ClientError
from django.conf import settings

from sharing.s3.core import (
    MESSAGES,
    STATUS_BY_CODE,
    UNAVAILABLE,
    S3Error,
    client,
    long_client,
    presign_client,
    translated,
)
from sharing.s3.health import long_call

__all__ = [
    "MAX_PARTS",
    "MAX_SINGLE_PUT_BYTES",
    "MIN_PART_BYTES",
    "MultipartUpload",
    "Part",
    "abort_multipart",
    "complete_multipart",
    "cors_rules",
    "create_multipart",
    "list_multipart_uploads",
    "list_parts",
    "part_count",
    "part_length",
    "part_size",
    "presign_part",
    "presign_put",
    "set_cors_rules",
    "stream_put",
]

MIN_PART_BYTES = 5 * 1024**2  # S3's smallest part (all but the last)
MAX_PARTS = 10_000  # S3's most parts per upload
MAX_SINGLE_PUT_BYTES = 5 * 1024**3  # PutObject's limit
STREAM_CHUNK_BYTES = 256 * 1024  # what a proxied part holds in memory at once
ERROR_BODY_BYTES = 64 * 1024
_XML_FIELD = re.compile(r"<(Code|Message|RequestId)>([^<]*)</\1>")
INTERRUPTED = "The upload stopped before this part was complete; it can be retried."
OVERWRITTEN_MEANWHILE = (
    "A file with this name was stored while you were uploading; nothing was overwritten. "
    "Upload again and choose to replace it."
)


@dataclass(frozen=True)
class Part:
    number: int
    size: int
    etag: str


@dataclass(frozen=True)
class MultipartUpload:
    key: str
    upload_id: str
    initiated: datetime.datetime


def part_size(size: int) -> int:
    """Return the part size used for a file of `size` bytes (the browser computes the same)."""
    return max(settings.UPLOAD_PART_BYTES, MIN_PART_BYTES, math.ceil(size / MAX_PARTS))


def part_count(size: int) -> int:
    """Return how many parts a multipart upload of `size` bytes has (at least one)."""
    return max(1, math.ceil(size / part_size(size)))


def part_length(size: int, number: int) -> int:
    """Return the exact length of part `number` (1-based) of a file of `size` bytes."""
    chunk = part_size(size)
    return max(0, min(chunk, size - (number - 1) * chunk))


def _signer(for_browser: bool) -> Any:
    # The portal itself streams proxied parts, so it signs for the address it reaches S3 by.
    return presign_client() if for_browser else client()


@translated
def create_multipart(bucket: str, key: str, *, content_type: str) -> str:
    """Start a multipart upload and return its upload id."""
    response = client().create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)
    return response["UploadId"]


@translated
def presign_part(
    bucket: str,
    key: str,
    *,
    upload_id: str,
    number: int,
    length: int,
    seconds: int,
    for_browser: bool = True,
) -> str:
    """Return a PUT URL for one part, signed with its exact Content-Length."""
    # Content-Length is a signed header: S3 refuses a body of any other length.
    return _signer(for_browser).generate_presigned_url(
        "upload_part",
        Params={
            "Bucket": bucket,
            "Key": key,
            "UploadId": upload_id,
            "PartNumber": number,
            "ContentLength": length,
        },
        ExpiresIn=seconds,
    )


@translated
def presign_put(
    bucket: str,
    key: str,
    *,
    length: int,
    content_type: str,
    seconds: int,
    for_browser: bool = True,
    if_none_match: bool = False,
) -> str:
    """Return a PUT URL for a whole small file, signed with its length and content type."""
    params: dict[str, Any] = {
        "Bucket": bucket,
        "Key": key,
        "ContentLength": length,
        "ContentType": content_type,
    }
    if if_none_match:
        # Only the portal's own streaming PUT can send this header; a browser's XHR cannot.
        params["IfNoneMatch"] = "*"
    return _signer(for_browser).generate_presigned_url(
        "put_object", Params=params, ExpiresIn=seconds
    )


def _all_parts(bucket: str, key: str, upload_id: str) -> Iterator[dict[str, Any]]:
    paginator = client().get_paginator("list_parts")
    for page in paginator.paginate(Bucket=bucket, Key=key, UploadId=upload_id):
        yield from page.get("Parts", [])


@translated
def list_parts(bucket: str, key: str, *, upload_id: str) -> list[Part]:
    """Return every part stored so far for an upload, by part number."""
    return sorted(
        (
            Part(number=item["PartNumber"], size=item.get("Size", 0), etag=item["ETag"])
            for item in _all_parts(bucket, key, upload_id)
        ),
        key=lambda part: part.number,
    )


@translated
@long_call()
def complete_multipart(
    bucket: str, key: str, *, upload_id: str, parts: list[Part], if_none_match: bool
) -> None:
    """Join the parts into the object; with if_none_match, only if the key is still free."""
    params: dict[str, Any] = {
        "Bucket": bucket,
        "Key": key,
        "UploadId": upload_id,
        "MultipartUpload": {
            "Parts": [{"PartNumber": part.number, "ETag": part.etag} for part in parts]
        },
    }
    if if_none_match:
        params["IfNoneMatch"] = "*"
    try:
        long_client().complete_multipart_upload(**params)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "PreconditionFailed":
            raise S3Error(OVERWRITTEN_MEANWHILE, status=409, code="PreconditionFailed") from error
        raise


@translated
def abort_multipart(bucket: str, key: str, *, upload_id: str) -> None:
    """Abort an upload and drop its parts (an upload already gone counts as aborted)."""
    try:
        client().abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "NoSuchUpload":
            raise


@translated
def list_multipart_uploads(bucket: str) -> list[MultipartUpload]:
    """Return every unfinished multipart upload in a bucket."""
    found = []
    paginator = client().get_paginator("list_multipart_uploads")
    for page in paginator.paginate(Bucket=bucket):
        for item in page.get("Uploads", []):
            found.append(
                MultipartUpload(
                    key=item["Key"], upload_id=item["UploadId"], initiated=item["Initiated"]
                )
            )
    return found


@translated
def cors_rules(bucket: str) -> list[dict[str, Any]]:
    """Return the bucket's CORS rules (none configured is an empty list)."""
    try:
        response = client().get_bucket_cors(Bucket=bucket)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NoSuchCORSConfiguration":
            return []
        raise
    return response.get("CORSRules", [])


@translated
def set_cors_rules(bucket: str, rules: list[dict[str, Any]]) -> None:
    """Replace the bucket's CORS rules."""
    client().put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})


def _stream_error(status: int, body: bytes, request_id: str) -> S3Error:
    fields = dict(_XML_FIELD.findall(body.decode("utf-8", "replace")))
    code = fields.get("Code", str(status))
    if code == "PreconditionFailed":
        return S3Error(OVERWRITTEN_MEANWHILE, status=409, code=code, request_id=request_id)
    mapped = STATUS_BY_CODE.get(code, 503 if status >= 500 else 400)
    message = MESSAGES.get(code) or fields.get("Message") or "The storage service refused this."
    return S3Error(
        message, status=mapped, code=code, request_id=request_id or fields.get("RequestId", "")
    )


def stream_put(url: str, *, length: int, stream: BinaryIO, headers: dict[str, str]) -> str:
    """PUT exactly `length` bytes read from `stream` to a presigned URL; return the ETag.

    The body passes through in small chunks, so memory stays flat whatever the size.
    """
    target = urlsplit(url)
    connection_class = (
        http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(
        target.hostname, target.port, timeout=settings.S3_LONG_READ_TIMEOUT
    )
    try:
        connection.putrequest("PUT", f"{target.path}?{target.query}", skip_accept_encoding=True)
        connection.putheader("Content-Length", str(length))
        for name, value in headers.items():
            connection.putheader(name, value)
        try:
            connection.endheaders()
        except OSError as error:
            raise S3Error(UNAVAILABLE, status=503, code=type(error).__name__) from error
        remaining = length
        while remaining:
            try:
                chunk = stream.read(min(STREAM_CHUNK_BYTES, remaining))
            except OSError as error:
                raise S3Error(INTERRUPTED, status=400, code="IncompleteBody") from error
            if not chunk:
                raise S3Error(INTERRUPTED, status=400, code="IncompleteBody")
            try:
                connection.send(chunk)
            except OSError:
                break  # S3 answered early (a refused signature) and closed: its answer says why
            remaining -= len(chunk)
        try:
            response = connection.getresponse()
            body = response.read(ERROR_BODY_BYTES)
        except (OSError, http.client.HTTPException) as error:
            raise S3Error(UNAVAILABLE, status=503, code=type(error).__name__) from error
        request_id = response.getheader("x-amz-request-id", "")
        if response.status != 200:
            raise _stream_error(response.status, body, request_id)
        return (response.getheader("ETag") or "").strip('"')
    finally:
        connection.close()
