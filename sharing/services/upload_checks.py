"""Before an upload: check names and sizes, find names already taken, let browsers PUT by CORS."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http.request import split_domain_port, validate_host
from django.utils.translation import ngettext

from sharing import audit, permissions, s3
from sharing.audit import Actor
from sharing.keys import EMPTY_KEY, clean_key
from sharing.models import Role
from sharing.services.uploads import UploadError, size_problem, via_portal

CORS_RULE_ID = "s3portal-uploads"
CORS_CHECK_SECONDS = 600  # how long a verified CORS rule is trusted before it is read again
HEAD_THREADS = 16  # existence checks of a batch run side by side: 1000 HEADs one by one are slow


@dataclass(frozen=True)
class FileCheck:
    """What the portal thinks of one file of a batch before it is uploaded."""

    id: str
    key: str
    exists: bool = False
    problem: str = ""


@dataclass(frozen=True)
class Prepared:
    files: list[FileCheck]
    warnings: list[str] = field(default_factory=list)


def _clean_prefix(prefix: str) -> str:
    if not prefix:
        return ""
    try:
        return clean_key(prefix, folder=True) if prefix.endswith("/") else clean_key(prefix + "/")
    except ValidationError as error:
        raise UploadError(f"The folder is not valid: {error.messages[0]}") from error


def _key_for(prefix: str, path: Any) -> tuple[str, str]:
    """Return (key, problem) for a file's path relative to the folder it is uploaded into."""
    if not isinstance(path, str) or not path:
        return "", EMPTY_KEY
    key = f"{prefix}{path}"
    try:
        return clean_key(key), ""
    except ValidationError as error:
        return key, error.messages[0]


def upload_prepare(
    *, actor: Actor, bucket: str, prefix: str, files: list[dict[str, Any]], origins: list[str]
) -> Prepared:
    """Check a batch before upload: each name and size, which keys exist; allow the browser by CORS."""
    permissions.require(actor=actor, bucket=bucket, role=Role.WRITE, action="upload.prepare")
    refusal = {"actor": actor, "action": "upload.prepare", "bucket": bucket, "key": prefix}
    with audit.refusals(**refusal, errors=UploadError):
        if len(files) > settings.UPLOAD_MAX_FILES:
            raise UploadError(
                f"At most {settings.UPLOAD_MAX_FILES} files can be uploaded at once; "
                f"this batch has {len(files)}.",
                status=413,
            )
        prefix = _clean_prefix(prefix)
    checks: list[FileCheck] = []
    for item in files:
        key, problem = _key_for(prefix, item.get("path"))
        problem = problem or size_problem(item.get("size"))[0]
        checks.append(FileCheck(id=str(item.get("id", ""))[:500], key=key, problem=problem))
    valid = [check.key for check in checks if not check.problem]
    existing: set[str] = set()
    if valid:
        with audit.s3_call(actor=actor, action="upload.check", bucket=bucket, key=prefix) as call:
            with ThreadPoolExecutor(max_workers=min(HEAD_THREADS, len(valid))) as pool:
                found = pool.map(lambda key: s3.head(bucket, key), valid)
                existing = {info.key for info in found if info is not None}
            checked = ngettext("%d name checked", "%d names checked", len(valid)) % len(valid)
            exist = ngettext("%d already exists", "%d already exist", len(existing)) % len(existing)
            call.message = f"{checked}, {exist}."
    checks = [
        FileCheck(id=c.id, key=c.key, exists=c.key in existing, problem=c.problem) for c in checks
    ]
    warnings = [] if via_portal() else cors_ensure(actor=actor, bucket=bucket, origins=origins)
    return Prepared(files=checks, warnings=warnings)


def trusted_origins(*, request_origin: str) -> list[str]:
    """Return SITE_URL's origin, plus the request's when this site is configured to answer there."""
    origins = [_origin(settings.SITE_URL)]
    candidate = _origin(request_origin)
    if not candidate or candidate in origins:
        return origins
    domain, _port = split_domain_port(urlsplit(candidate).netloc)
    # A wildcard ALLOWED_HOSTS trusts any Host header, so it never vouches for an origin.
    explicit_hosts = [host for host in settings.ALLOWED_HOSTS if host != "*"]
    if candidate in {_origin(o) for o in settings.CSRF_TRUSTED_ORIGINS} or validate_host(
        domain, explicit_hosts
    ):
        origins.append(candidate)
    return origins


def _origin(url: str) -> str:
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}".lower()


def _rule_covers(rule: dict[str, Any], origins: list[str]) -> bool:
    headers = {h.lower() for h in rule.get("AllowedHeaders", [])}
    return (
        set(origins) <= set(rule.get("AllowedOrigins", []))
        and "PUT" in rule.get("AllowedMethods", [])
        and ("*" in headers or "content-type" in headers)
        and "etag" in {h.lower() for h in rule.get("ExposeHeaders", [])}
    )


def cors_ensure(*, actor: Actor, bucket: str, origins: list[str]) -> list[str]:
    """Make sure the bucket's CORS rules let the portal's pages PUT parts; return warnings."""
    cache_key = f"upload-cors:{bucket}:{','.join(origins)}"
    if cache.get(cache_key):
        return []
    try:
        with audit.s3_call(actor=actor, action="bucket.get_cors", bucket=bucket):
            rules = s3.cors_rules(bucket)
        if not any(_rule_covers(rule, origins) for rule in rules):
            ours = {
                "ID": CORS_RULE_ID,
                "AllowedOrigins": origins,
                "AllowedMethods": ["PUT"],
                "AllowedHeaders": ["content-type"],
                "ExposeHeaders": ["ETag"],
                "MaxAgeSeconds": 3600,
            }
            others = [rule for rule in rules if rule.get("ID") != CORS_RULE_ID]
            with audit.s3_call(actor=actor, action="bucket.set_cors", bucket=bucket) as call:
                s3.set_cors_rules(bucket, [*others, ours])
                call.message = f"Browsers at {', '.join(origins)} may upload parts."
    except s3.S3Error as error:
        if error.status >= 500:
            raise
        return [
            f"The bucket's CORS rules could not be set ({error.message}); browsers may be unable "
            "to upload. An administrator can set UPLOAD_VIA_PORTAL=true to send files through "
            "the portal instead."
        ]
    cache.set(cache_key, True, CORS_CHECK_SECONDS)
    return []
