"""Response headers, the storage-error page and the page of a refusal no view answered."""

import functools
import logging
import zoneinfo
from collections.abc import Callable
from http import HTTPStatus

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from sharing import s3
from sharing.s3 import S3Error
from sharing.services.errors import DATABASE_UNAVAILABLE, ServiceError

logger = logging.getLogger(__name__)

# Set by static/sharing/js/timezone.js from the browser's Intl.DateTimeFormat().
TIME_ZONE_COOKIE = "tz"


def allow_source(response: HttpResponse, *, directive: str, origin: str) -> HttpResponse:
    """Name `origin` in one CSP directive of this response only (a preview's S3 origin)."""
    sources = getattr(response, "csp_extra_sources", {})
    sources.setdefault(directive, []).append(origin)
    response.csp_extra_sources = sources
    return response


def with_sources(policy: str, sources: dict[str, list[str]]) -> str:
    """Return the policy with sources added to directives; a missing one starts from 'self'."""
    directives = [part.strip() for part in policy.split(";") if part.strip()]
    names = [part.split()[0] for part in directives]
    for directive, origins in sources.items():
        if directive not in names:
            # An absent fetch directive falls back to default-src, which is 'self' here.
            directives.append(f"{directive} 'self'")
            names.append(directive)
        index = names.index(directive)
        directives[index] = " ".join([directives[index], *origins])
    return "; ".join(directives)


class ContentSecurityPolicyMiddleware:
    """Add the Content-Security-Policy header (Django 5.2 has none built in), with the sources a
    view named for its own response (`allow_source`)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # Built per response (cheap) so that a changed S3 endpoint setting applies at once.
        s3_origin = settings.S3_PUBLIC_ENDPOINT_URL or settings.S3_ENDPOINT_URL or "https:"
        policy = settings.CONTENT_SECURITY_POLICY.format(s3=s3_origin)
        policy = response.headers.get("Content-Security-Policy", policy)
        extra = getattr(response, "csp_extra_sources", None)
        response.headers["Content-Security-Policy"] = (
            with_sources(policy, extra) if extra else policy
        )
        return response


@functools.cache
def _time_zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


class ViewerTimeZoneMiddleware:
    """Show times in the viewer's time zone, as their browser names it; other values are ignored."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        name = request.COOKIES.get(TIME_ZONE_COOKIE, "")
        if name in _time_zone_names():
            timezone.activate(zoneinfo.ZoneInfo(name))
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


class StorageErrorMiddleware:
    """Give the view's S3 calls one time budget; answer a storage failure or a service's refusal
    that the view did not handle, with its status."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with s3.request_budget():
            return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, (OperationalError, InterfaceError)):
            # The database is down or stays locked: say so, rather than the generic 500.
            logger.exception("Database unavailable during %s", request.path)
            context = {"code": 503, "title": "Database unavailable", "detail": DATABASE_UNAVAILABLE}
            return render(request, "error.html", context, status=503)
        if isinstance(exception, ServiceError):
            status = exception.status
            title = HTTPStatus(status).phrase.capitalize()
            context = {"code": status, "title": title, "detail": exception.message}
            return render(request, "error.html", context, status=status)
        if not isinstance(exception, S3Error):
            return None
        status = 503 if exception.status >= 500 else exception.status
        return render(request, "storage_error.html", {"error": exception}, status=status)
