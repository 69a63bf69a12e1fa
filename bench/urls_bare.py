"""Bench-only URLconf: the portal's URLs plus a bare view that only redirects (never in the product).

Served by bench/link_resolution.py through gunicorn with DJANGO_SETTINGS_MODULE=bench.settings_bare.
"""

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import include, path


def bare_redirect(request: HttpRequest) -> HttpResponse:
    """Answer like a link download does (a 302 to S3), with none of its work."""
    return HttpResponseRedirect("http://127.0.0.1:9/bucket/key?X-Amz-Signature=0")


urlpatterns = [
    path("bench/bare/", bare_redirect),
    path("", include("s3portal.urls")),
]
