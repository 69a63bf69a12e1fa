"""Forms validate and normalise input; they never call S3."""

import ipaddress
import re

from django import forms
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
