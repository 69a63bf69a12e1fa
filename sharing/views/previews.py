"""Previews on pages: a page that shows a media preview names its S3 origin in its own CSP."""

from django.http import HttpResponse

from sharing.middleware import allow_source
from sharing.services.previews import Preview


def with_preview(response: HttpResponse, preview: Preview | None) -> HttpResponse:
    """Return the response, its CSP naming the preview's S3 origin where the preview needs it."""
    if preview is not None and preview.directive:
        allow_source(response, directive=preview.directive, origin=preview.origin)
    return response
