"""Thumbnails of a folder's images and PDFs, served by the portal from their own storage."""

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.utils.cache import get_conditional_response, patch_cache_control
from django.views.decorators.http import require_GET

from sharing.audit import Actor
from sharing.selectors import thumbnails as thumbnail_selectors
from sharing.services import thumbnails

# Each URL names the file's version (?v=), so a browser may keep what it got for a while.
MAX_AGE = 24 * 3600
VIEWS = ("list", "grid")
VIEW_COOKIE = "folder_view"
VIEW_COOKIE_AGE = 365 * 24 * 3600


@require_GET
@login_required
def thumbnail(request: HttpRequest, bucket: str) -> HttpResponse:
    actor = Actor.from_request(request)
    key = request.GET.get("key", "")  # a name with no ready thumbnail, any name, is a 404
    found = thumbnail_selectors.thumbnail_ready(actor=actor, bucket=bucket, key=key)
    etag = f'"{thumbnails.etag_of(found)}"'
    response = get_conditional_response(request, etag=etag)
    if response is None:
        content = thumbnail_selectors.thumbnail_content(actor=actor, thumbnail=found)
        response = HttpResponse(content, content_type=thumbnails.CONTENT_TYPE)
    response["ETag"] = etag
    patch_cache_control(response, private=True, max_age=MAX_AGE)
    return response


def chosen_view(request: HttpRequest) -> str:
    """Return how the folder page lists files: "grid" or "list" (?view=, else the cookie)."""
    view = request.GET.get("view") or request.COOKIES.get(VIEW_COOKIE, "")
    return view if view in VIEWS else "list"


def view_switch(request: HttpRequest, *, query: dict[str, str]) -> dict[str, str]:
    """Return the folder page's List | Grid switch: the view shown and the links to each."""
    kept = {name: value for name, value in query.items() if value or name == "prefix"}
    return {
        "view": chosen_view(request),
        **{f"{view}_view_url": "?" + urlencode({**kept, "view": view}) for view in VIEWS},
    }


def remember_view(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """Keep a view chosen by ?view= in a cookie, so sorting and paging stay in it."""
    view = request.GET.get("view")
    if view in VIEWS and view != request.COOKIES.get(VIEW_COOKIE):
        response.set_cookie(
            VIEW_COOKIE, view, max_age=VIEW_COOKIE_AGE, samesite="Lax", httponly=True,
            secure=request.is_secure(),
        )  # fmt: skip
    return response


urlpatterns = [
    path("b/<bucket:bucket>/thumbnail/", thumbnail, name="thumbnail"),
]
