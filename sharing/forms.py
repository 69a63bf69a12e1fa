"""Forms validate and normalise input; they never call S3.

Buckets, folders, copy and move, then the sharing panel and the links page.
"""

import datetime
import ipaddress
import re

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from sharing import keys
from sharing.services.links import MAX_LINK_SECONDS

BUCKET_CHARS = re.compile(r"^[a-z0-9.-]+$")
RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
PRESETS = [("1h", "1 hour"), ("1d", "1 day"), ("7d", "7 days"), ("custom", "Custom")]
PRESET_SECONDS = {"1h": 3600, "1d": 24 * 3600, "7d": MAX_LINK_SECONDS}
UNITS = [("minutes", "minutes"), ("hours", "hours"), ("days", "days")]
UNIT_SECONDS = {"minutes": 60, "hours": 3600, "days": 24 * 3600}
RECIPIENT_SEPARATORS = re.compile(r"[,;\s]+")


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


class FolderCreateForm(forms.Form):
    name = forms.CharField(label="New folder", max_length=255, strip=True)

    def __init__(self, *args, folder_prefix: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.folder_prefix = folder_prefix  # not `prefix`: Django forms use that for field names

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip("/")
        keys.clean_key(f"{self.folder_prefix}{name}/", folder=True)
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
            return keys.clean_key(value + "/", folder=True) if value else ""
        return keys.clean_key(value)


class KeyForm(forms.Form):
    key = forms.CharField(widget=forms.HiddenInput, strip=False, max_length=keys.MAX_KEY_BYTES)

    def clean_key(self) -> str:
        return keys.clean_object_key(self.cleaned_data["key"])


class ExpiryForm(forms.Form):
    """An expiry as a preset or a custom amount; cleaned_data gains `seconds` and `expires_at`."""

    expiry = forms.ChoiceField(
        label="Expires after", choices=PRESETS, initial="1d", widget=forms.RadioSelect
    )
    custom_amount = forms.IntegerField(label="Custom duration", required=False)
    custom_unit = forms.ChoiceField(label="Unit", choices=UNITS, initial="hours", required=False)

    def clean(self) -> dict:
        data = super().clean()
        preset = data.get("expiry")
        if not preset:
            return data
        if preset == "custom":
            amount = data.get("custom_amount")
            if amount is None:
                raise ValidationError("Give a number for the custom duration.", code="no_amount")
            seconds = amount * UNIT_SECONDS[data.get("custom_unit") or "hours"]
        else:
            seconds = PRESET_SECONDS[preset]
        if seconds <= 0:
            raise ValidationError("The duration must be more than zero.", code="not_future")
        if seconds > MAX_LINK_SECONDS:
            raise ValidationError(
                "A link can last at most 7 days (the limit of S3's signed URLs).", code="too_long"
            )
        data["seconds"] = seconds
        data["expires_at"] = timezone.now() + datetime.timedelta(seconds=seconds)
        return data


class LinkCreateForm(KeyForm, ExpiryForm):
    password = forms.CharField(
        label="Password (optional)",
        required=False,
        strip=False,
        max_length=200,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    max_downloads = forms.IntegerField(
        label="Download limit (optional)", required=False, min_value=1, max_value=100_000
    )
    notify_on_download = forms.BooleanField(label="Email me on the first download", required=False)

    def link_options(self) -> dict:
        data = self.cleaned_data
        return {
            "expires_at": data["expires_at"],
            "password": data["password"],
            "max_downloads": data["max_downloads"],
            "notify_on_download": data["notify_on_download"],
        }


class LinksEmailForm(LinkCreateForm):
    recipients = forms.CharField(
        label="Recipients",
        help_text="Email addresses, separated by commas or new lines. Each gets a link of their own.",
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    message = forms.CharField(
        label="Message (optional)",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def clean_recipients(self) -> list[str]:
        # Line breaks separate addresses, so "a@b.com\nBcc: x@y" becomes two entries and the
        # second is refused as an address: nothing a recipient writes reaches a mail header.
        parts = [part for part in RECIPIENT_SEPARATORS.split(self.cleaned_data["recipients"])]
        return [part for part in parts if part]


class PresignForm(KeyForm, ExpiryForm):
    pass


class ExtendForm(ExpiryForm):
    pass


class PublicForm(KeyForm):
    public = forms.TypedChoiceField(
        choices=[("1", "public"), ("0", "private")], coerce=lambda value: value == "1"
    )
    confirm = forms.BooleanField(
        label="I understand that anyone with the URL can read this file, without logging in",
        required=False,
    )

    def clean(self) -> dict:
        data = super().clean()
        if data.get("public") and not data.get("confirm"):
            raise ValidationError(
                "Tick the box to confirm that this file may be read by anyone.", code="unconfirmed"
            )
        return data
