"""Object keys: what names the portal stores, and how a name is normalised before any S3 call.

Forms and services both check keys here, so a name refused by a form is refused by the service too.
"""

import unicodedata

from django.conf import settings
from django.core.exceptions import ValidationError

MAX_KEY_BYTES = 1024  # S3's limit for a whole key, in UTF-8
EMPTY_KEY = "A file name must not be empty."
# Bidi overrides/isolates and zero-width characters disguise names ("invoice\u202egpj.exe").
INVISIBLE_CHARS = set(
    "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2066\u2067\u2068\u2069\ufeff"
)


def normalize_key(key: str) -> str:
    """Return the key in Unicode NFC, the form S3 keys are stored in by the portal."""
    return unicodedata.normalize("NFC", key)


def key_problem(key: str, *, folder: bool = False) -> str | None:
    """Return why a (normalised) object key is refused, or None; folder keys end with '/'."""
    if not key:
        return EMPTY_KEY
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        return f"A file's full path must be at most {MAX_KEY_BYTES} bytes (UTF-8)."
    if any(unicodedata.category(char) == "Cc" for char in key):
        return "A file name must not contain control characters (such as line breaks or NUL)."
    if any(char in INVISIBLE_CHARS for char in key):
        return "A file name must not contain invisible or text-direction characters."
    if "\\" in key:
        return "A file name must not contain a backslash (\\)."
    if key.startswith("/"):
        return "A file path must not start with “/”."
    body = key[:-1] if folder and key.endswith("/") else key
    if not folder and key.endswith("/"):
        return "A file name must not end with “/”."
    for segment in body.split("/"):
        if segment in ("", ".", ".."):
            return "A path must not contain empty, “.” or “..” parts (such as “//” or “../”)."
        limit = settings.S3_MAX_KEY_SEGMENT_BYTES
        if limit and len(segment.encode("utf-8")) > limit:
            return f"This storage allows at most {limit} bytes between two “/” in a path."
    return None


def clean_key(key: str, *, folder: bool = False) -> str:
    """Return the normalised key of a new name, or raise ValidationError saying what is wrong."""
    key = normalize_key(key)
    problem = key_problem(key, folder=folder)
    if problem:
        raise ValidationError(problem, code="invalid_key")
    return key


def clean_object_key(value: str) -> str:
    """Return a key as given (it names an existing object, so it is not normalised), or refuse."""
    if not value or len(value.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise ValidationError("No valid file was given.", code="invalid_key")
    return value


class BucketNameConverter:
    """A bucket name in a URL (`<bucket:bucket>`): what S3 clients accept (botocore's rule), so
    that any other name is a 404 that never reaches storage. New buckets follow forms.py's rules."""

    regex = r"[A-Za-z0-9._-]{1,255}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value
