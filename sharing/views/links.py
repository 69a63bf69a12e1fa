"""Share links and public access (being built)."""

from django.http import HttpRequest

urlpatterns: list = []


def object_panel_context(request: HttpRequest, *, bucket: str, key: str, role: str) -> dict:
    """Return the context of the sharing panel on an object page ({} hides the panel)."""
    return {}
