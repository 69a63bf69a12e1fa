"""File requests: the creator's form, the outsider's page, and the upload endpoints of a visit."""

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from sharing import permissions, s3
from sharing.audit import Actor
from sharing.forms import FileRequestForm
from sharing.models import FileRequestVisit, Role
from sharing.services import file_requests as service
from sharing.services import upload_checks
from sharing.services import uploads as upload_service
from sharing.services.uploads import UploadError
from sharing.views.uploads import (
    answer_xml,
    json_body,
    json_view,
    parts_xml,
    proxied_part,
    request_origin,
    started_answer,
)

VISITS = "file_request_visits"  # session: request id -> visit id
UNLOCKED = "file_request_unlocked"  # session: ids of requests whose password was given


@login_required
@require_http_methods(["GET", "POST"])
def file_request_create(request: HttpRequest, bucket: str) -> HttpResponse:
    actor = Actor.from_request(request)
    prefix = request.GET.get("prefix", "")
    permissions.require(actor=actor, bucket=bucket, role=Role.WRITE, action="file_request.create")
    form = FileRequestForm(request.POST or None, prefix="request")
    context = {"bucket": bucket, "prefix": prefix, "form": form}
    if request.method == "GET" or not form.is_valid():
        status = 400 if request.method == "POST" else 200
        return render(request, "sharing/file_request_new.html", context, status=status)
    try:
        new = service.file_request_create(
            actor=actor, bucket=bucket, prefix=prefix, **form.request_options()
        )
    except service.FileRequestError as error:
        context["error"] = error.message
        return render(request, "sharing/file_request_new.html", context, status=error.status)
    response = render(request, "sharing/file_request_created.html", {"new": new, **context})
    response["Cache-Control"] = "no-store"  # the raw token is on this page, once
    response["Referrer-Policy"] = "no-referrer"
    return response


@login_required
@require_POST
def file_request_revoke(request: HttpRequest, request_id: str) -> HttpResponse:
    actor = Actor.from_request(request)
    file_request = service.file_request_of(actor=actor, request_id=request_id)
    if service.file_request_revoke(actor=actor, request=file_request):
        messages.success(request, f"The file request “{file_request.title}” takes no more files.")
    return redirect("link_list")


def _outsider(response: HttpResponse) -> HttpResponse:
    # The token is in this page's URL: it must not leave in a Referer, nor stay in a cache.
    response["Referrer-Policy"] = "same-origin"
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _visit_for(request: HttpRequest, file_request: Any) -> FileRequestVisit:
    visits = request.session.get(VISITS, {})
    visit = service.visit_continue(
        actor=Actor.from_request(request),
        request=file_request,
        visit_id=visits.get(str(file_request.pk)),
    )
    request.session[VISITS] = {**visits, str(file_request.pk): str(visit.pk)}
    return visit


@require_http_methods(["GET", "POST"])
def file_request_public(request: HttpRequest, token: str) -> HttpResponse:
    actor = Actor.from_request(request)
    try:
        file_request = service.file_request_find(actor=actor, token=token)
        unlocked = str(file_request.pk) in request.session.get(UNLOCKED, [])
        if file_request.password_hash and not unlocked:
            if request.method == "GET":
                return _password_page(request, file_request)
            service.file_request_unlock(
                actor=actor, request=file_request, password=request.POST.get("password", "")
            )
            request.session[UNLOCKED] = [*request.session.get(UNLOCKED, []), str(file_request.pk)]
            return _outsider(HttpResponseRedirect(request.path))
    except service.FileRequestPasswordError as error:
        return _password_page(request, file_request, error=error.message, status=error.status)
    except service.FileRequestError as error:
        return _closed(request, error)
    visit = _visit_for(request, file_request)
    return _outsider(render(request, "sharing/file_request_public.html", _page(request, visit)))


def _closed(request: HttpRequest, error: service.FileRequestError) -> HttpResponse:
    closed = getattr(error, "request", None)
    visit_id = request.session.get(VISITS, {}).get(str(getattr(closed, "pk", "")))
    if closed is not None and visit_id:
        # This browser's visit sees what it sent and may still say it is done, no more.
        visit = service.visit_of(visit_id=visit_id, allowed=[visit_id])
        visit.request = closed
        context = {**_page(request, visit), "upload_panel": {}, "closed": error.message}
        return _outsider(render(request, "sharing/file_request_public.html", context))
    context = {"error": error, "status": error.status}
    return _outsider(render(request, "sharing/link_gone.html", context, status=error.status))


def _password_page(
    request: HttpRequest, file_request: Any, *, error: str = "", status: int = 200
) -> HttpResponse:
    context = {"file_request": file_request, "needs_password": True, "error": error}
    return _outsider(render(request, "sharing/file_request_public.html", context, status=status))


def _page(request: HttpRequest, visit: FileRequestVisit) -> dict:
    file_request = visit.request
    room = service.room_left(file_request)
    urls = {
        name: reverse(f"file_request_upload_{name}", args=[visit.pk])
        for name in ("prepare", "create", "sign", "parts", "complete", "abort")
    }
    config = {
        "bucket": file_request.bucket,
        "prefix": file_request.prefix,
        "storeId": f"s3portal-request-{visit.pk}",
        "csrfToken": get_token(request),
        "maxBytes": min(settings.UPLOAD_MAX_BYTES, room.bytes),
        "maxFiles": min(settings.UPLOAD_MAX_FILES, room.files),
        "partBytes": max(settings.UPLOAD_PART_BYTES, s3.MIN_PART_BYTES),
        "maxParts": s3.MAX_PARTS,
        "urls": urls,
    }
    files = service.visit_files(visit=visit)
    return {
        "file_request": file_request,
        "visit": visit,
        "room": room,
        "files": [(f, f.key[len(file_request.prefix) :]) for f in files],
        "upload_panel": config if room.files and room.bytes else {},
        "public_files": False,
        "prefix": "",
        "upload_title": "Send files",
        "owner": service.sender_name(file_request.creator),
    }


@require_POST
def file_request_done(request: HttpRequest, visit_id: str) -> HttpResponse:
    visit = _visit(request, visit_id)
    service.visit_report(visit=visit)
    visit.refresh_from_db()
    return _outsider(render(request, "sharing/file_request_done.html", {"visit": visit}))


def _visit(request: HttpRequest, visit_id: Any) -> FileRequestVisit:
    allowed = list(request.session.get(VISITS, {}).values())
    return service.visit_of(visit_id=visit_id, allowed=allowed)


# --- The upload endpoints of a visit (the same upload.js talks to them) --------------------


@json_view("POST", login=False)
def upload_prepare(request: HttpRequest, visit_id: str) -> dict:
    visit = _visit(request, visit_id)
    files = json_body(request).get("files")
    if not isinstance(files, list) or not all(isinstance(item, dict) for item in files):
        raise UploadError("Send the files to check as a list.")
    actor = Actor.from_request(request)
    checks = service.file_request_prepare(actor=actor, visit=visit, files=files)
    origins = upload_checks.trusted_origins(request_origin=request_origin(request))
    warnings = upload_checks.cors_ensure(actor=actor, bucket=visit.request.bucket, origins=origins)
    return {"files": checks, "warnings": warnings}


@json_view("POST", login=False)
def upload_create(request: HttpRequest, visit_id: str) -> dict:
    visit = _visit(request, visit_id)
    data = json_body(request)
    started = service.file_request_upload_start(
        actor=Actor.from_request(request),
        visit=visit,
        path=data.get("key"),
        size=data.get("size"),
        content_type=str(data.get("type") or ""),
        multipart=data.get("multipart") is True,
    )
    return started_answer(started)


@json_view("POST", login=False)
def upload_sign(request: HttpRequest, visit_id: str) -> dict:
    visit = _visit(request, visit_id)
    data = json_body(request)
    url = upload_service.upload_part_url(
        actor=Actor.from_request(request),
        upload_id=data.get("uploadId"),
        number=data.get("part"),
        visit=visit,
    )
    return {"url": url}


@json_view("POST", login=False)
def upload_complete(request: HttpRequest, visit_id: str) -> dict:
    visit = _visit(request, visit_id)
    done = service.file_request_upload_complete(
        actor=Actor.from_request(request), visit=visit, upload_id=json_body(request).get("uploadId")
    )
    return {
        "key": done.key,
        "size": done.size,
        "public": None,
        "warning": "",
        "answerUrl": done.answer_url,
    }


@json_view("POST", login=False)
def upload_abort(request: HttpRequest, visit_id: str) -> dict:
    visit = _visit(request, visit_id)
    service.file_request_upload_abort(
        actor=Actor.from_request(request), visit=visit, upload_id=json_body(request).get("uploadId")
    )
    return {"aborted": True}


@never_cache
@json_view("GET", login=False)
def upload_parts(request: HttpRequest, visit_id: str) -> HttpResponse:
    visit = _visit(request, visit_id)
    parts = upload_service.upload_parts_list(
        actor=Actor.from_request(request), upload_id=request.GET.get("uploadId", ""), visit=visit
    )
    return parts_xml(parts)


# Sent by the browser's S3 client without a CSRF header; it changes nothing (see upload_answer).
@csrf_exempt
@never_cache
@json_view("POST", login=False)
def upload_answer(request: HttpRequest, visit_id: str, token: str) -> HttpResponse:
    visit = _visit(request, visit_id)
    answer = upload_service.upload_answer(
        actor=Actor.from_request(request), token=token, visit=visit
    )
    return answer_xml(request, answer)


@csrf_exempt
@json_view("PUT", login=False)
def upload_proxy(request: HttpRequest, visit_id: str, token: str) -> HttpResponse:
    """Stream one part on to S3 (UPLOAD_VIA_PORTAL); its signed token is the request's secret."""
    return proxied_part(request, token, _visit(request, visit_id))


urlpatterns = [
    path("r/<str:token>", file_request_public, name="file_request_public"),
    path("b/<bucket:bucket>/request-files/", file_request_create, name="file_request_create"),
    path(
        "file-requests/<uuid:request_id>/revoke/",
        file_request_revoke,
        name="file_request_revoke",
    ),
    path("file-requests/visits/<uuid:visit_id>/done/", file_request_done, name="file_request_done"),
    *[
        path(
            f"file-requests/visits/<uuid:visit_id>/uploads/{name}/",
            view,
            name=f"file_request_upload_{name}",
        )
        for name, view in [
            ("prepare", upload_prepare),
            ("create", upload_create),
            ("sign", upload_sign),
            ("parts", upload_parts),
            ("complete", upload_complete),
            ("abort", upload_abort),
        ]
    ],
    path(
        "file-requests/visits/<uuid:visit_id>/uploads/answer/<str:token>/",
        upload_answer,
        name="file_request_upload_answer",
    ),
    path(
        "file-requests/visits/<uuid:visit_id>/uploads/proxy/<str:token>/",
        upload_proxy,
        name="file_request_upload_proxy",
    ),
]
