"""What a share link shares, for lists: its kind ("File", "Folder", "3 files") and its page."""

from urllib.parse import urlencode

from django import template
from django.urls import reverse

from sharing.models import LinkKind, ShareLink
from sharing.services import link_scopes

register = template.Library()


@register.filter
def link_label(link: ShareLink) -> str:
    """Return "File", "Folder" or "N files"."""
    return link_scopes.link_label(link)


@register.filter
def link_target_url(link: ShareLink) -> str:
    """Return the page of what the link shares: the file's, or the folder's."""
    if link.kind == LinkKind.FILE:
        return f"{reverse('object_detail', args=[link.bucket])}?{urlencode({'key': link.key})}"
    query = f"?{urlencode({'prefix': link.key})}" if link.key else ""
    return reverse("bucket_detail", args=[link.bucket]) + query
