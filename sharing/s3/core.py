"""The gateway's core: the client built from settings, error translation, request ids."""

import contextvars
import datetime
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    ParamValidationError,
)
from botocore.utils import parse_timestamp
from django.conf import settings

DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys per request
UNAVAILABLE = "The storage service cannot be reached right now. Try again in a minute."
STATUS_BY_CODE = {
    "NoSuchBucket": 404,
    "NoSuchKey": 404,
    "NotFound": 404,
    "404": 404,
    "NoSuchUpload": 404,
    "BucketNotEmpty": 409,
    "BucketAlreadyExists": 409,
    "BucketAlreadyOwnedByYou": 409,
    "OperationAborted": 409,
    "AccessControlListNotSupported": 409,
    "InvalidBucketName": 400,
    "InvalidArgument": 400,
    "KeyTooLongError": 400,
    "EntityTooLarge": 400,
    "AccessDenied": 403,
    "403": 403,
    "AllAccessDisabled": 403,
    "NotImplemented": 501,
    "InvalidAccessKeyId": 503,
    "SignatureDoesNotMatch": 503,
    "ExpiredToken": 503,
    "SlowDown": 503,
    "ServiceUnavailable": 503,
    "503": 503,
    "InternalError": 503,
    "500": 503,
}
MESSAGES = {
    "NoSuchBucket": "That bucket does not exist (any more).",
    "NoSuchKey": "That file does not exist (any more).",
    "NotFound": "Not found in storage.",
    "404": "Not found in storage.",
    "BucketNotEmpty": "The bucket is not empty: delete its files first, or empty it and delete it.",
    "BucketAlreadyExists": "That bucket name is taken (bucket names are shared by all accounts).",
    "BucketAlreadyOwnedByYou": "A bucket with that name already exists.",
    "OperationAborted": "Another change to this bucket is in progress; try again shortly.",
    "AccessControlListNotSupported": "This bucket refuses ACLs (Object Ownership: bucket owner enforced).",
    "InvalidBucketName": "The storage refused that bucket name.",
    "AccessDenied": "The storage refused the portal's request (access denied).",
    "403": "The storage refused the portal's request (access denied).",
    "NotImplemented": "The storage service does not support this operation.",
    "InvalidAccessKeyId": "The storage refused the portal's credentials; an administrator must fix them.",
    "SignatureDoesNotMatch": "The storage refused the portal's credentials; an administrator must fix them.",
    "ExpiredToken": "The portal's storage credentials have expired; an administrator must renew them.",
    "SlowDown": "The storage service is busy (throttling); try again in a minute.",
}

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("s3_request_id", default="")
P = ParamSpec("P")
R = TypeVar("R")


class S3Error(Exception):
    """A storage failure with a message fit for people and the HTTP status to answer with."""

    def __init__(self, message: str, *, status: int, code: str = "", request_id: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id


@dataclass(frozen=True)
class Bucket:
    name: str
    created: datetime.datetime | None


@dataclass(frozen=True)
class ObjectSummary:
    key: str
    size: int
    last_modified: datetime.datetime
    etag: str


@dataclass(frozen=True)
class Page:
    folders: list[str]
    objects: list[ObjectSummary]
    next_token: str


def last_request_id() -> str:
    """Return the request id of the latest S3 response in this context."""
    return _request_id.get()


def reset_request_id() -> None:
    """Forget the latest request id (called before a new audited call)."""
    _request_id.set("")


def _remember_request_id(parsed: dict[str, Any] | None = None, **_: Any) -> None:
    metadata = (parsed or {}).get("ResponseMetadata", {})
    _request_id.set(metadata.get("RequestId") or metadata.get("HostId") or "")


def _settings_key(*, read_timeout: int | None = None) -> tuple:
    return (
        settings.S3_ENDPOINT_URL or None,
        settings.S3_REGION,
        settings.S3_ACCESS_KEY_ID or None,
        settings.S3_SECRET_ACCESS_KEY or None,
        settings.S3_SESSION_TOKEN or None,
        settings.S3_ADDRESSING_STYLE,
        settings.S3_CONNECT_TIMEOUT,
        read_timeout or settings.S3_READ_TIMEOUT,
        settings.S3_MAX_ATTEMPTS,
    )


def _parse_timestamp(value: Any) -> datetime.datetime:
    # botocore reads every timestamp with dateutil, ~30 µs each: most of the time spent parsing a
    # 200-key listing. S3's XML timestamps are ISO 8601 in UTC ("2024-05-01T12:03:04.000Z"), which
    # fromisoformat reads in 0.1 µs; anything else (HTTP dates in headers, epochs) goes to botocore.
    if isinstance(value, str) and value.endswith("Z"):
        try:
            return datetime.datetime.fromisoformat(value)
        except ValueError:
            pass
    return parse_timestamp(value)


@functools.lru_cache(maxsize=8)
def _session(access: str | None, secret: str | None, token: str | None) -> Any:
    core_session = botocore.session.get_session()
    parsers = core_session.get_component("response_parser_factory")
    parsers.set_parser_defaults(timestamp_parser=_parse_timestamp)
    # Keys left out fall through to boto3's default chain (environment, IAM role).
    return boto3.session.Session(
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        aws_session_token=token,
        botocore_session=core_session,
    )


@functools.lru_cache(maxsize=8)
def _build_client(key: tuple) -> Any:
    endpoint, region, access, secret, token, style, connect, read, attempts = key
    config = Config(
        signature_version="s3v4",
        region_name=region,
        connect_timeout=connect,
        read_timeout=read,
        retries={"mode": "standard", "total_max_attempts": attempts},
        s3={"addressing_style": style},
    )
    client = _session(access, secret, token).client("s3", endpoint_url=endpoint, config=config)
    client.meta.events.register("after-call.s3", _remember_request_id)
    from sharing.s3 import health  # imports this module: the breaker's errors are S3Errors

    health.register(client)
    return client


def client() -> Any:
    """Return the boto3 client for the configured endpoint (built once per configuration)."""
    return _build_client(_settings_key())


def long_client() -> Any:
    """Return the client for long operations (copies, multipart completion): a longer read timeout."""
    return _build_client(_settings_key(read_timeout=settings.S3_LONG_READ_TIMEOUT))


def presign_client() -> Any:
    """Return the client that signs URLs for browsers (S3_PUBLIC_ENDPOINT_URL when set)."""
    key = _settings_key()
    if settings.S3_PUBLIC_ENDPOINT_URL:
        key = (settings.S3_PUBLIC_ENDPOINT_URL, *key[1:])
    return _build_client(key)


def uses_temporary_credentials() -> bool:
    """Return whether the signing credentials carry a session token (links may die early)."""
    _, _, access, secret, token, *_ = _settings_key()
    credentials = _session(access, secret, token).get_credentials()
    return bool(credentials and credentials.get_frozen_credentials().token)


def _error_from_client_error(error: ClientError) -> S3Error:
    details = error.response.get("Error", {})
    code = str(details.get("Code", ""))
    status = STATUS_BY_CODE.get(code)
    if status is None:
        http_status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
        status = 503 if http_status >= 500 else 400
    message = MESSAGES.get(code) or details.get("Message") or "The storage service refused this."
    request_id = error.response.get("ResponseMetadata", {}).get("RequestId", "")
    return S3Error(message, status=status, code=code, request_id=request_id)


def translated(function: Callable[P, R]) -> Callable[P, R]:
    """Turn botocore's exceptions into S3Error for the wrapped gateway function."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except ClientError as error:
            raise _error_from_client_error(error) from error
        except ParamValidationError as error:
            # botocore refused the call before sending it (a bucket name it does not accept).
            raise S3Error(
                "The storage does not accept that name.", status=400, code="ParamValidation"
            ) from error
        except NoCredentialsError as error:
            raise S3Error(
                "The portal has no storage credentials; an administrator must configure them.",
                status=503,
                code="NoCredentials",
            ) from error
        except BotoCoreError as error:
            # Connection refused, timeouts, DNS: all mean the endpoint is out of reach.
            raise S3Error(UNAVAILABLE, status=503, code=type(error).__name__) from error

    return wrapper


def _batches(keys: Iterator[dict[str, str]]) -> Iterator[list[dict[str, str]]]:
    batch: list[dict[str, str]] = []
    for key in keys:
        batch.append(key)
        if len(batch) == DELETE_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def page_from(response: dict[str, Any]) -> Page:
    """Return the Page of a ListObjectsV2 answer: its common prefixes, objects and next token."""
    return Page(
        folders=[item["Prefix"] for item in response.get("CommonPrefixes", [])],
        objects=[
            ObjectSummary(
                key=item["Key"],
                size=item.get("Size", 0),
                last_modified=item["LastModified"],
                etag=item.get("ETag", "").strip('"'),
            )
            for item in response.get("Contents", [])
        ],
        next_token=response.get("NextContinuationToken", "") if response.get("IsTruncated") else "",
    )
