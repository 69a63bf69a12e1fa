"""Dates as every page shows them: one short form in the viewer's time zone, the full moment on hover.

`{% when value %}` in templates; `when_text` and `when_html` for texts built in Python (flash
messages, the admin).
"""

import datetime

from django import template
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timesince import timesince, timeuntil

# The full moment, shown on hover: "Wednesday 2 December 2026, 14:05:09", then the zone.
FULL_FORMAT = "l j F Y, H:i:s"
JUST_NOW = datetime.timedelta(minutes=1)

register = template.Library()


def when_text(value: datetime.datetime) -> str:
    """Return the short form of a moment in the current time zone ("2 Dec 2026, 14:05")."""
    return formats.date_format(timezone.localtime(value), "DATETIME_FORMAT")


def when_full(value: datetime.datetime) -> str:
    """Return the full moment in the current time zone, with the zone and its offset."""
    local = timezone.localtime(value)
    # "… Europe/Paris (UTC+0100)": the zone's name, as the viewer's browser gave it.
    full = f"{formats.date_format(local, FULL_FORMAT)} {timezone.get_current_timezone_name()}"
    return f"{full} (UTC{formats.date_format(local, 'O')})"


def when_html(value: datetime.datetime | None, *, relative: bool = False) -> SafeString:
    """Return a <time> element: the short form, with the full moment and zone on hover."""
    if not value:  # None, or a missing template variable ("")
        return SafeString("")
    local = timezone.localtime(value)
    html = format_html(
        '<time datetime="{}" title="{}">{}</time>',
        local.isoformat(),
        when_full(value),
        when_text(value),
    )
    if not relative:
        return html
    now = timezone.now()
    if abs(value - now) < JUST_NOW:
        ago = "just now"
    elif value > now:
        ago = f"in {timeuntil(value, now)}"
    else:
        ago = f"{timesince(value, now)} ago"
    return format_html('{} <span class="muted">({})</span>', html, ago)


@register.simple_tag(name="when")
def when_tag(value: datetime.datetime | None, relative: bool = False) -> SafeString:
    """`{% when value %}`, or `{% when value relative=True %}` to add "(in 6 days, 23 hours)"."""
    return when_html(value, relative=relative)
