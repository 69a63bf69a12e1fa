"""Uploads (being built)."""

from django.http import HttpRequest

urlpatterns: list = []


def panel_context(request: HttpRequest, *, bucket: str, prefix: str, role: str) -> dict:
    """Return the context of the upload panel on a folder page ({} hides the panel)."""
    return {}
