"""Error pages in the portal's look."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from sharing import audit


def _error_page(request: HttpRequest, status: int, title: str, detail: str) -> HttpResponse:
    context = {"code": status, "title": title, "detail": detail}
    return render(request, "error.html", context, status=status)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _error_page(request, 400, "Bad request", "The request was not understood.")


def forbidden(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _error_page(request, 403, "Not allowed", str(exception) or "You may not do this.")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    audit.csrf_failure(request=request, reason=reason)
    detail = "The form had expired or came from elsewhere. Go back, reload the page and try again."
    return _error_page(request, 403, "Form expired", detail)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    detail = "There is nothing here, or you have no access to it."
    return _error_page(request, 404, "Not found", detail)


def server_error(request: HttpRequest) -> HttpResponse:
    detail = "Something went wrong on our side. The problem was logged; try again shortly."
    return _error_page(request, 500, "Server error", detail)
