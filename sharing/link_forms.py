"""Forms of the sharing panel and the links page: they validate and normalise, never call S3."""

import datetime
import re

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from sharing.forms import MAX_KEY_BYTES

MAX_SECONDS = 7 * 24 * 3600  # SigV4's limit for presigned URLs, kept for share links too
PRESETS = [("1h", "1 hour"), ("1d", "1 day"), ("7d", "7 days"), ("custom", "Custom")]
PRESET_SECONDS = {"1h": 3600, "1d": 24 * 3600, "7d": MAX_SECONDS}
UNITS = [("minutes", "minutes"), ("hours", "hours"), ("days", "days")]
UNIT_SECONDS = {"minutes": 60, "hours": 3600, "days": 24 * 3600}
RECIPIENT_SEPARATORS = re.compile(r"[,;\s]+")


def clean_object_key(value: str) -> str:
    """Return a key as given (it names an existing object, so it is not normalised), or refuse."""
    if not value or len(value.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise ValidationError("No valid file was given.", code="invalid_key")
    return value


class KeyForm(forms.Form):
    key = forms.CharField(widget=forms.HiddenInput, strip=False, max_length=MAX_KEY_BYTES)

    def clean_key(self) -> str:
        return clean_object_key(self.cleaned_data["key"])


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
        if seconds > MAX_SECONDS:
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
