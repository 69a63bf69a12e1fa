"""Forms validate and normalise input; they never call S3."""

import ipaddress
import re
import unicodedata

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

BUCKET_CHARS = re.compile(r"^[a-z0-9.-]+$")
RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def bucket_name_problem(name: str) -> str | None:
    """Return why a name breaks S3's bucket naming rules, or None when it is valid."""
    if not 3 <= len(name) <= 63:
        return "A bucket name must be 3 to 63 characters long."
    if not BUCKET_CHARS.match(name):
        return (
            "A bucket name may only contain lowercase letters (a-z), digits, dots and hyphens; "
            "no capitals, spaces, underscores or accents."
        )
    if not (name[0].isalnum() and name[-1].isalnum()):
        return "A bucket name must begin and end with a letter or a digit."
    if ".." in name:
        return "A bucket name must not contain two dots in a row."
    if ".-" in name or "-." in name:
        return "A bucket name must not have a dot next to a hyphen."
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        pass
    else:
        return "A bucket name must not look like an IP address."
    for prefix in RESERVED_PREFIXES:
        if name.startswith(prefix):
            return f"Bucket names starting with “{prefix}” are reserved by S3."
    for suffix in RESERVED_SUFFIXES:
        if name.endswith(suffix):
            return f"Bucket names ending with “{suffix}” are reserved by S3."
    return None


def validate_bucket_name(name: str) -> None:
    problem = bucket_name_problem(name)
    if problem:
        raise ValidationError(problem, code="invalid_bucket_name")


class BucketCreateForm(forms.Form):
    name = forms.CharField(
        label="Bucket name",
        max_length=200,
        strip=True,
        help_text="3–63 characters: lowercase letters, digits, dots and hyphens.",
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "spellcheck": "false", "autofocus": True}
        ),
    )
    allow_public = forms.BooleanField(
        label="Allow public files",
        required=False,
        help_text="Lets owners of this bucket make single files public later. Leave off to keep "
        "everything private.",
    )
    abort_incomplete_days = forms.IntegerField(
        label="Abort unfinished uploads after (days)",
        required=False,
        min_value=1,
        max_value=365,
        initial=7,
        help_text="Cleans up the parts of uploads that were never finished. Empty: no rule.",
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        validate_bucket_name(name)
        return name


class BucketDeleteForm(forms.Form):
    empty_first = forms.BooleanField(required=False, widget=forms.HiddenInput)
    confirm_name = forms.CharField(
        label="Type the bucket's name to confirm",
        required=False,
        strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def __init__(self, *args, bucket: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.bucket = bucket

    def clean(self) -> dict:
        data = super().clean()
        if data.get("empty_first") and data.get("confirm_name") != self.bucket:
            raise ValidationError(
                f"To empty and delete, type the bucket's name exactly: {self.bucket}",
                code="confirmation_mismatch",
            )
        return data


MAX_KEY_BYTES = 1024
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
        return "A file name must not be empty."
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        return "A file's full path must be at most 1024 bytes (UTF-8)."
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
    """Return the normalised key, or raise ValidationError saying what is wrong."""
    key = normalize_key(key)
    problem = key_problem(key, folder=folder)
    if problem:
        raise ValidationError(problem, code="invalid_key")
    return key


class FolderCreateForm(forms.Form):
    name = forms.CharField(label="New folder", max_length=255, strip=True)

    def __init__(self, *args, folder_prefix: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.folder_prefix = folder_prefix  # not `prefix`: Django forms use that for field names

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip("/")
        clean_key(f"{self.folder_prefix}{name}/", folder=True)
        return name


class TransferForm(forms.Form):
    MODES = [("copy", "Copy"), ("move", "Move (copy, then delete the original)")]

    dst_bucket = forms.ChoiceField(label="Destination bucket")
    dst_key = forms.CharField(label="Destination path", max_length=2048, strip=False)
    mode = forms.ChoiceField(choices=MODES, initial="copy", widget=forms.RadioSelect)
    overwrite = forms.BooleanField(label="Replace files that already exist there", required=False)

    def __init__(self, *args, buckets: list[str], folder: bool, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.folder = folder
        self.fields["dst_bucket"].choices = [(name, name) for name in buckets]
        if folder:
            self.fields["dst_key"].label = "Destination folder (empty: the top of the bucket)"
            self.fields["dst_key"].required = False

    def clean_dst_key(self) -> str:
        value = self.cleaned_data["dst_key"]
        if self.folder:
            value = value.strip("/")
            return clean_key(value + "/", folder=True) if value else ""
        return clean_key(value)
