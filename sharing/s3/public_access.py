"""Public access: ownership controls, Block Public Access, object ACLs, per-key policy statements,
the public URL of an object and the anonymous probe that measures what a stranger really gets."""

import functools
import hashlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.cache import cache

from sharing.s3.core import S3Error, client, presign_client, translated

__all__ = [
    "PUBLIC_READ_SID_PREFIX",
    "BucketPublicSettings",
    "Probe",
    "bucket_public_settings",
    "download_origin",
    "grant_public_read",
    "has_public_read_statement",
    "object_acl_is_public",
    "policy_can_name",
    "probe_anonymous",
    "public_read_sid",
    "public_url",
    "revoke_public_reads",
    "put_object_acl",
    "revoke_public_read",
]

PUBLIC_READ_SID_PREFIX = "S3PortalPublicRead"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
POLICY_VERSION = "2012-10-17"
POLICY_MAX_BYTES = 20 * 1024  # AWS's limit for a bucket policy document
# In a policy Resource `*` and `?` are wildcards and `${` starts a variable. SeaweedFS honours the
# wildcards but not the `${*}` escapes, so such keys cannot be named exactly in a portable way.
POLICY_UNSAFE = ("*", "?", "${")
POLICY_WRITE_ATTEMPTS = 3
UNREACHABLE_MEMORY_SECONDS = 60
NOT_SUPPORTED_CODES = ("NotImplemented", "501", "XNotImplemented")
NO_POLICY_CODES = ("NoSuchBucketPolicy", "NoSuchPolicy")


@dataclass(frozen=True)
class BucketPublicSettings:
    """What a bucket allows: object ACLs (Object Ownership) and Block Public Access."""

    ownership: str  # "BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter" or "" (unknown)
    block_public_acls: bool = False
    ignore_public_acls: bool = False
    block_public_policy: bool = False
    restrict_public_buckets: bool = False
    block_supported: bool = True

    @property
    def acls_enabled(self) -> bool:
        return self.ownership != "BucketOwnerEnforced"

    @property
    def acls_blocked(self) -> bool:
        return self.block_public_acls or self.ignore_public_acls

    @property
    def policy_blocked(self) -> bool:
        return self.block_public_policy or self.restrict_public_buckets


@dataclass(frozen=True)
class Probe:
    """The answer to an anonymous request for a public URL."""

    status: int | None  # HTTP status, None when the URL could not be reached
    detail: str = ""

    @property
    def public(self) -> bool | None:
        """Return True when anyone may read, False when refused, None when it is unknown."""
        if self.status is None:
            return None
        if 200 <= self.status < 300:
            return True
        if self.status in (401, 403, 404):
            return False
        return None


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@translated
def bucket_public_settings(bucket: str) -> BucketPublicSettings:
    """Return the bucket's Object Ownership and Block Public Access settings."""
    s3 = client()
    try:
        rules = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
        ownership = rules[0]["ObjectOwnership"] if rules else ""
    except ClientError as error:
        code = _code(error)
        if code == "OwnershipControlsNotFoundError":
            ownership = "ObjectWriter"  # no controls: the pre-2023 default, ACLs in force
        elif code in NOT_SUPPORTED_CODES:
            ownership = ""
        else:
            raise
    try:
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except ClientError as error:
        code = _code(error)
        if code == "NoSuchPublicAccessBlockConfiguration":
            return BucketPublicSettings(ownership=ownership)
        if code in NOT_SUPPORTED_CODES:
            return BucketPublicSettings(ownership=ownership, block_supported=False)
        raise
    return BucketPublicSettings(
        ownership=ownership,
        block_public_acls=bool(block.get("BlockPublicAcls")),
        ignore_public_acls=bool(block.get("IgnorePublicAcls")),
        block_public_policy=bool(block.get("BlockPublicPolicy")),
        restrict_public_buckets=bool(block.get("RestrictPublicBuckets")),
    )


@translated
def object_acl_is_public(bucket: str, key: str) -> bool:
    """Return whether the object's stored ACL grants read to everyone (enforced or not)."""
    try:
        grants = client().get_object_acl(Bucket=bucket, Key=key).get("Grants", [])
    except ClientError as error:
        if _code(error) in (*NOT_SUPPORTED_CODES, "AccessControlListNotSupported"):
            return False
        raise
    return any(
        grant.get("Grantee", {}).get("URI") == ALL_USERS
        and grant.get("Permission") in ("READ", "FULL_CONTROL")
        for grant in grants
    )


@translated
def put_object_acl(bucket: str, key: str, *, public: bool) -> None:
    """Set the object's canned ACL to public-read or private."""
    client().put_object_acl(Bucket=bucket, Key=key, ACL="public-read" if public else "private")


def public_read_sid(key: str) -> str:
    """Return the policy statement id the portal uses for one key (alphanumeric, as AWS requires)."""
    return PUBLIC_READ_SID_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]


def policy_can_name(key: str) -> bool:
    """Return whether a policy statement can name this key exactly (no wildcard characters)."""
    return not any(part in key for part in POLICY_UNSAFE)


def _statement(bucket: str, key: str) -> dict[str, Any]:
    return {
        "Sid": public_read_sid(key),
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/{key}",
    }


def _read_policy(bucket: str) -> dict[str, Any] | None:
    try:
        text = client().get_bucket_policy(Bucket=bucket)["Policy"]
    except ClientError as error:
        if _code(error) in NO_POLICY_CODES:
            return None
        raise
    policy = json.loads(text) if text else {}
    statements = policy.get("Statement", [])
    # A single statement may be written as an object; keep it, as a list, untouched.
    policy["Statement"] = [statements] if isinstance(statements, dict) else list(statements)
    return policy


def _write_policy(bucket: str, policy: dict[str, Any]) -> None:
    if not policy["Statement"]:
        # S3 refuses a policy without statements: removing the last one means deleting it.
        client().delete_bucket_policy(Bucket=bucket)
        return
    document = json.dumps(policy, ensure_ascii=False, separators=(",", ":"))
    if len(document.encode("utf-8")) > POLICY_MAX_BYTES:
        raise S3Error(
            "The bucket policy is full (S3 allows 20 KB): make other files private first, "
            "or use a share link.",
            status=409,
            code="PolicyTooLarge",
        )
    try:
        client().put_bucket_policy(Bucket=bucket, Policy=document)
    except ClientError as error:
        if _code(error) == "PolicyTooLarge":
            raise S3Error(
                "The bucket policy is full: make other files private first, or use a share link.",
                status=409,
                code="PolicyTooLarge",
            ) from error
        raise


def _has_statement(policy: dict[str, Any] | None, key: str) -> bool:
    sid = public_read_sid(key)
    return bool(policy) and any(s.get("Sid") == sid for s in policy["Statement"])


@translated
def has_public_read_statement(bucket: str, key: str) -> bool:
    """Return whether the bucket policy holds the portal's public-read statement for this key."""
    return _has_statement(_read_policy(bucket), key)


@translated
def grant_public_read(bucket: str, key: str) -> bool:
    """Add a public-read statement for one key to the bucket policy; return whether it changed."""
    if not policy_can_name(key):
        raise S3Error(
            "A bucket policy cannot name a file whose name contains *, ? or ${ exactly.",
            status=409,
            code="KeyNotNameable",
        )
    changed = False
    # Read-modify-write is not atomic in S3: verify after writing and retry, so a concurrent
    # change by another request does not silently drop our statement.
    for _ in range(POLICY_WRITE_ATTEMPTS):
        policy = _read_policy(bucket) or {"Version": POLICY_VERSION, "Statement": []}
        if _has_statement(policy, key):
            return changed
        policy.setdefault("Version", POLICY_VERSION)
        policy["Statement"].append(_statement(bucket, key))
        _write_policy(bucket, policy)
        changed = True
    if not _has_statement(_read_policy(bucket), key):
        raise _policy_conflict()
    return changed


def _policy_conflict() -> S3Error:
    # Another writer changed the policy between our read and write, every time we tried.
    return S3Error(
        "The bucket policy kept changing under the portal; try again.",
        status=409,
        code="PolicyConflict",
    )


@translated
def revoke_public_read(bucket: str, key: str) -> bool:
    """Remove the portal's public-read statement for one key; other statements stay as they are."""
    sid = public_read_sid(key)
    changed = False
    for _ in range(POLICY_WRITE_ATTEMPTS):
        policy = _read_policy(bucket)
        if not _has_statement(policy, key):
            return changed
        policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != sid]
        _write_policy(bucket, policy)
        changed = True
    if has_public_read_statement(bucket, key):
        raise _policy_conflict()
    return changed


@translated
def revoke_public_reads(bucket: str, keys: list[str]) -> list[str]:
    """Remove the portal's public-read statements of these keys in one write; return their keys."""
    sids = {public_read_sid(key): key for key in keys}
    policy = _read_policy(bucket)
    if not policy:
        return []
    found = [sids[s["Sid"]] for s in policy["Statement"] if s.get("Sid") in sids]
    if found:
        policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") not in sids]
        _write_policy(bucket, policy)
    return found


@functools.lru_cache(maxsize=8)
def _unsigned_client(endpoint: str | None, region: str, style: str, timeout: float | None) -> Any:
    config = Config(signature_version=UNSIGNED, region_name=region, s3={"addressing_style": style})
    if timeout is not None:
        # A probe answers a page view: one short attempt, the page says "unknown" otherwise.
        config = config.merge(
            Config(
                connect_timeout=timeout,
                read_timeout=timeout,
                retries={"total_max_attempts": 1},
            )
        )
    return boto3.session.Session().client("s3", endpoint_url=endpoint, config=config)


def _stranger(*, timeout: float | None = None) -> Any:
    """Return a client without credentials for the browser-facing endpoint."""
    endpoint = settings.S3_PUBLIC_ENDPOINT_URL or settings.S3_ENDPOINT_URL or None
    return _unsigned_client(endpoint, settings.S3_REGION, settings.S3_ADDRESSING_STYLE, timeout)


def public_url(bucket: str, key: str) -> str:
    """Return the plain URL anyone would use to read a public object (browser-facing endpoint)."""
    # botocore builds the URL exactly as it builds signed ones: same encoding, same host rules.
    return _stranger().generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key})


def download_origin(bucket: str, key: str) -> str:
    """Return the origin (scheme://host[:port]) that presigned downloads of this object go to."""
    url = presign_client().generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=60
    )
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _anonymous_status(bucket: str, key: str, *, timeout: float) -> int:
    try:
        response = _stranger(timeout=timeout).head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    return int(response["ResponseMetadata"]["HTTPStatusCode"])


def probe_anonymous(bucket: str, key: str) -> Probe:
    """Ask for the object as a stranger would (no credentials, short timeout); return the answer."""
    # A browser-only endpoint may be out of the server's reach: after one failure, pages stop
    # waiting for the timeout on every view for a minute.
    unreachable_key = f"s3-probe-unreachable:{urlsplit(public_url(bucket, key)).netloc}"
    remembered = cache.get(unreachable_key)
    if remembered:
        return Probe(status=None, detail=remembered)
    try:
        status = _anonymous_status(bucket, key, timeout=settings.S3_PUBLIC_PROBE_TIMEOUT)
    except BotoCoreError as error:  # EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError
        detail = f"the public address did not answer: {type(error).__name__}"
        cache.set(unreachable_key, detail, timeout=UNREACHABLE_MEMORY_SECONDS)
        return Probe(status=None, detail=detail)
    return Probe(status=status, detail=f"an anonymous request got HTTP {status}")
