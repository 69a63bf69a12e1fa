"""Forms validate and normalise input; they never call S3.

Buckets, folders, copy and move, then the sharing panel and the links page.
"""

import datetime
import ipaddress
import re

from django import forms
from django.contrib.auth.base_user import BaseUserManager
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils import timezone

from sharing import keys
from sharing.models import FileKind, Outcome
from sharing.services.links import MAX_LINK_SECONDS

# Days a filter may name: the end of 31 December 9999, or midnight of 1 January 1 in a zone ahead
# of UTC, is a moment Python's datetime cannot hold.
FIRST_DAY = datetime.date(1970, 1, 1)
LAST_DAY = datetime.date(9998, 12, 31)
DAY_INPUT = forms.DateInput(attrs={"type": "date"})

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

    def __init__(
        self, *args, buckets: list[str], folder: bool, can_move: bool = True, **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        self.folder = folder
        self.fields["dst_bucket"].choices = [(name, name) for name in buckets]
        if not can_move:  # a reader of the source bucket may copy out of it, nothing more
            self.fields["mode"].choices = self.MODES[:1]
        if folder:
            self.fields["dst_key"].label = "Destination folder (empty: the top of the bucket)"
            self.fields["dst_key"].required = False

    def clean_dst_key(self) -> str:
        value = self.cleaned_data["dst_key"]
        if self.folder:
            value = value.strip("/")
            return keys.clean_key(value + "/", folder=True) if value else ""
        return keys.clean_key(value)


class KeyListField(forms.Field):
    """Several keys sent as repeated hidden fields (`keys=a&keys=b`), without repeats."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[str]:
        return list(dict.fromkeys(value or []))


class SelectionTransferForm(TransferForm):
    """A copy or move of files and folders selected in one folder, into a destination folder."""

    MAX_KEYS = 10_000

    prefix = forms.CharField(widget=forms.HiddenInput, required=False, strip=False)
    keys = KeyListField(required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, folder=True, **kwargs)

    def clean(self) -> dict:
        # Checked here, not in the fields: errors of hidden fields would not be shown.
        data = super().clean()
        selected = data.get("keys") or []
        if not selected:
            raise ValidationError("Select at least one file or folder.", code="no_selection")
        if len(selected) > self.MAX_KEYS:
            raise ValidationError(
                f"Select at most {self.MAX_KEYS:,} files and folders at once.", code="too_many"
            )
        for key in selected:
            keys.clean_object_key(key)  # existing names, as they are
        return data


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


def optional_password() -> forms.CharField:
    """Return the optional password field of a link or a file request (kept as typed)."""
    return forms.CharField(
        label="Password (optional)",
        required=False,
        strip=False,
        max_length=200,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )


class LinkCreateForm(KeyForm, ExpiryForm):
    password = optional_password()
    max_downloads = forms.IntegerField(
        label="Download limit (optional)", required=False, min_value=1, max_value=100_000
    )
    notify_on_download = forms.BooleanField(label="Email me on the first download", required=False)
    remind_before_expiry = forms.BooleanField(
        label="Remind me a day before it expires if not downloaded", required=False
    )

    def link_options(self) -> dict:
        data = self.cleaned_data
        return {
            "expires_at": data["expires_at"],
            "password": data["password"],
            "max_downloads": data["max_downloads"],
            "notify_on_download": data["notify_on_download"],
            "remind_before_expiry": data["remind_before_expiry"],
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


class ProfileForm(forms.Form):
    """One's own name and email address (where password resets and download notices go)."""

    first_name = forms.CharField(label="First name", max_length=150, required=False)
    last_name = forms.CharField(label="Last name", max_length=150, required=False)
    email = forms.EmailField(
        label="Email address",
        max_length=254,
        required=False,
        help_text="Password resets and “email me on the first download” notices are sent here.",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )

    current_password = forms.CharField(
        label="Current password",
        required=False,
        strip=False,
        help_text="Needed only to change the email address.",
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_email(self) -> str:
        return BaseUserManager.normalize_email(self.cleaned_data["email"])

    def clean(self) -> dict:
        data = super().clean()
        # Whoever controls the address can reset the password: changing it asks for the password,
        # as changing the password does, so a borrowed session cannot take the account over.
        if "email" in data and data["email"] != self.user.email:
            if not self.user.check_password(data.get("current_password", "")):
                self.add_error(
                    "current_password",
                    ValidationError(
                        "To change the email address, enter your current password.",
                        code="password_needed",
                    ),
                )
        return data


class ActivityFilterForm(forms.Form):
    """My activity's filters, from the query string; every field may be left empty."""

    action = forms.CharField(required=False, max_length=40)
    outcome = forms.ChoiceField(required=False, choices=[("", "any"), *Outcome.choices])
    bucket = forms.CharField(required=False, max_length=63)
    who = forms.CharField(required=False, max_length=150)
    since = forms.DateField(
        required=False,
        widget=DAY_INPUT,
        validators=[MinValueValidator(FIRST_DAY), MaxValueValidator(LAST_DAY)],
    )
    until = forms.DateField(
        required=False,
        widget=DAY_INPUT,
        validators=[MinValueValidator(FIRST_DAY), MaxValueValidator(LAST_DAY)],
    )
    key = forms.CharField(required=False, max_length=200, label="Name contains")
    before = forms.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, widget=forms.HiddenInput
    )

    def clean(self) -> dict:
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise forms.ValidationError("The first day comes after the last day.")
        return data


class FileRequestForm(ExpiryForm):
    """A request for files into a folder: what the outsider reads, its caps and its password."""

    title = forms.CharField(label="Title", max_length=200)
    message = forms.CharField(
        label="Message (optional)",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    max_mib = forms.IntegerField(
        label="Total size cap (MiB)", initial=1024, min_value=1, max_value=5 * 1024 * 1024
    )
    max_files = forms.IntegerField(label="File cap", initial=20, min_value=1, max_value=10_000)
    password = optional_password()

    def request_options(self) -> dict:
        data = self.cleaned_data
        return {
            "title": data["title"],
            "message": data["message"],
            "expires_at": data["expires_at"],
            "max_bytes": data["max_mib"] * 1024 * 1024,
            "max_files": data["max_files"],
            "password": data["password"],
        }


class ManyLinkForm(LinkCreateForm):
    """A link to a folder (`key` its prefix, "" the whole bucket) or to files chosen in it."""

    KINDS = [("folder", "folder"), ("selection", "selection")]

    key = forms.CharField(
        widget=forms.HiddenInput, required=False, strip=False, max_length=keys.MAX_KEY_BYTES
    )
    kind = forms.ChoiceField(choices=KINDS, widget=forms.HiddenInput)
    keys = KeyListField(required=False)

    def clean_key(self) -> str:
        value = self.cleaned_data["key"]
        return keys.clean_object_key(value) if value else ""

    def link_options(self) -> dict:
        data = self.cleaned_data
        return {**super().link_options(), "kind": data["kind"], "keys": data["keys"]}


class ManyLinksEmailForm(ManyLinkForm, LinksEmailForm):
    """Links to a folder or selection, one emailed to each recipient."""


SIZE_TEXT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
MAX_SIZE = 2**63 - 1  # what the index's size column holds


class SizeField(forms.CharField):
    """A size in bytes, written as people write it: 2048, 10 KB, 1.5 MB, 2GiB (units of 1024)."""

    def to_python(self, value: str) -> int | None:
        text = super().to_python(value)
        if not text:
            return None
        match = SIZE_TEXT.match(text)
        if not match:
            raise ValidationError("Write a size such as 500 KB, 10 MB or 2 GB.", code="size")
        size = int(float(match[1]) * SIZE_UNITS[match[2].lower()])
        if size > MAX_SIZE:
            raise ValidationError("That size is larger than any file can be.", code="size")
        return size


class SearchForm(forms.Form):
    """A bucket search, from the query string: a part of the name, and optional filters."""

    q = forms.CharField(required=False, max_length=1024, label="Name contains")
    type = forms.ChoiceField(required=False, choices=[("", "Any type"), *FileKind.choices])
    min_size = SizeField(required=False, label="At least")
    max_size = SizeField(required=False, label="At most")
    after = forms.DateField(
        required=False, widget=DAY_INPUT, label="Modified from",
        validators=[MinValueValidator(FIRST_DAY), MaxValueValidator(LAST_DAY)],
    )  # fmt: skip
    before = forms.DateField(
        required=False, widget=DAY_INPUT, label="Modified until",
        validators=[MinValueValidator(FIRST_DAY), MaxValueValidator(LAST_DAY)],
    )  # fmt: skip
    cursor = forms.CharField(required=False, max_length=1024, widget=forms.HiddenInput)

    def clean(self) -> dict:
        data = super().clean()
        low, high = data.get("min_size"), data.get("max_size")
        if low is not None and high is not None and low > high:
            raise forms.ValidationError("The smallest size is larger than the largest.")
        if data.get("after") and data.get("before") and data["after"] > data["before"]:
            raise forms.ValidationError("The first day comes after the last day.")
        return data
