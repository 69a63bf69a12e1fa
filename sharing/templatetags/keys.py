"""Object keys in pages: they may wrap after each "/", never in the middle of a name."""

from django import template
from django.utils.html import format_html_join
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.filter
def breakable(key: str) -> SafeString:
    """Return the key escaped, each "name/" in a span (.key-part) and a <wbr> after each "/"."""
    parts = str(key).split("/")
    pieces = [(part + "/",) for part in parts[:-1]] + ([(parts[-1],)] if parts[-1] else [])
    return format_html_join(mark_safe("<wbr>"), '<span class="key-part">{}</span>', pieces)
