"""Uploads: the panel on a folder page and the JSON endpoints its script (Uppy) talks to."""

import functools
import json
import logging
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.urls import path, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from sharing import permissions, s3
from sharing.audit import Actor
from sharing.models import FileRequestVisit
from sharing.services import upload_checks
from sharing.services import uploads as service
from sharing.services.errors import DATABASE_UNAVAILABLE
from sharing.services.uploads import UploadError

S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
SESSION_ENDED = "Your session has ended: log in again, then retry the upload."
INTERNAL_ERROR = "Something went wrong on the portal's side; it was logged. Try again shortly."
logger = logging.getLogger(__name__)


def panel_context(request: HttpRequest, *, bucket: str, prefix: str, role: str) -> dict:
    """Return the context of the upload panel on a folder page ({} hides the panel)."""
    if not permissions.allows(role, permissions.WRITE_ROLE):
        return {}
    config = {
        "bucket": bucket,
        "prefix": prefix,
        "storeId": f"s3portal-upload-{request.user.pk}-{bucket}",
        "csrfToken": get_token(request),
        "maxBytes": settings.UPLOAD_MAX_BYTES,
        "maxFiles": settings.UPLOAD_MAX_FILES,
        "partBytes": max(settings.UPLOAD_PART_BYTES, s3.MIN_PART_BYTES),
        "maxParts": s3.MAX_PARTS,
        "urls": {
            "prepare": reverse("upload_prepare", args=[bucket]),
            "create": reverse("upload_create", args=[bucket]),
            "sign": reverse("upload_sign"),
            "parts": reverse("upload_parts"),
            "complete": reverse("upload_complete"),
            "abort": reverse("upload_abort"),
        },
    }
    return {"upload_panel": config}


def _error_response(error: Exception) -> JsonResponse:
    """Return {"error": message} with the status a refused or failed upload request deserves."""
    if isinstance(error, UploadError):
        status, message, code = error.status, error.message, error.code
    elif isinstance(error, s3.S3Error):
        status, message, code = min(error.status, 503), error.message, error.code
    elif isinstance(error, Http404):
        status, message, code = 404, str(error) or "Not found.", ""
    else:
        status, message, code = 403, str(error) or "You may not do this.", ""
    response = JsonResponse({"error": message}, status=status)
    # Uppy's S3 client reads this header to say why a request failed.
    response.headers["x-amz-error-code"] = code or str(status)
    return response


REFUSALS = (UploadError, s3.S3Error, Http404, PermissionDenied)


def _json_error(status: int, message: str, code: str) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    response.headers["x-amz-error-code"] = code
    return response


def json_view(
    *methods: str, login: bool = True
) -> Callable[[Callable[..., Any]], Callable[..., HttpResponse]]:
    """Make a JSON endpoint for logged-in callers: every answer is JSON, every failure included
    ({"error": message} with its status), so that the upload panel can say what happened.
    `login=False` is for outsiders' file request uploads, whose session holds their visit."""

    def decorate(view: Callable[..., Any]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                response = _json_error(405, f"Use {' or '.join(methods)}.", "MethodNotAllowed")
                response.headers["Allow"] = ", ".join(methods)
                return response
            try:
                if login and not request.user.is_authenticated:
                    return _json_error(401, SESSION_ENDED, "NotLoggedIn")
                result = view(request, *args, **kwargs)
            except REFUSALS as error:
                return _error_response(error)
            except (OperationalError, InterfaceError):
                logger.exception("Database unavailable during %s", request.path)
                return _json_error(503, DATABASE_UNAVAILABLE, "DatabaseUnavailable")
            except Exception:
                logger.exception("Upload request failed: %s", request.path)
                return _json_error(500, INTERNAL_ERROR, "InternalError")
            return result if isinstance(result, HttpResponse) else JsonResponse(result)

        return wrapper

    return decorate


def json_body(request: HttpRequest) -> dict[str, Any]:
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise UploadError("The request was not valid JSON.") from None
    if not isinstance(data, dict):
        raise UploadError("The request must be a JSON object.")
    return data


def request_origin(request: HttpRequest) -> str:
    return request.headers.get("Origin") or f"{request.scheme}://{request.get_host()}"


@json_view("POST")
def upload_prepare(request: HttpRequest, bucket: str) -> dict:
    data = json_body(request)
    files = data.get("files")
    if not isinstance(files, list) or not all(isinstance(item, dict) for item in files):
        raise UploadError("Send the files to check as a list.")
    origins = upload_checks.trusted_origins(request_origin=request_origin(request))
    prepared = upload_checks.upload_prepare(
        actor=Actor.from_request(request),
        bucket=bucket,
        prefix=str(data.get("prefix", "")),
        files=files,
        origins=origins,
    )
    checks = [
        {"id": c.id, "key": c.key, "exists": c.exists, "problem": c.problem} for c in prepared.files
    ]
    return {"files": checks, "warnings": prepared.warnings}


@json_view("POST")
def upload_create(request: HttpRequest, bucket: str) -> dict:
    data = json_body(request)
    started = service.upload_create(
        actor=Actor.from_request(request),
        bucket=bucket,
        key=data.get("key"),
        size=data.get("size"),
        content_type=str(data.get("type") or ""),
        acl=str(data.get("acl") or "private"),
        overwrite=data.get("overwrite") is True,
        multipart=data.get("multipart") is True,
    )
    return started_answer(started)


def started_answer(started: service.Started) -> dict:
    """Return what the upload panel needs of an upload just started."""
    upload = started.upload
    return {
        "uploadId": upload.upload_id,
        "key": upload.key,
        "url": started.url,
        "answerUrl": started.answer_url,
    }


@json_view("POST")
def upload_sign(request: HttpRequest) -> dict:
    data = json_body(request)
    actor = Actor.from_request(request)
    url = service.upload_part_url(
        actor=actor, upload_id=data.get("uploadId"), number=data.get("part")
    )
    return {"url": url}


@json_view("POST")
def upload_complete(request: HttpRequest) -> dict:
    data = json_body(request)
    done = service.upload_complete(
        actor=Actor.from_request(request),
        upload_id=data.get("uploadId"),
        overwrite=data.get("overwrite") is True,
    )
    return {
        "key": done.key,
        "size": done.size,
        "public": done.public,
        "warning": done.warning,
        "answerUrl": done.answer_url,
    }


@json_view("POST")
def upload_abort(request: HttpRequest) -> dict:
    service.upload_abort(
        actor=Actor.from_request(request), upload_id=json_body(request).get("uploadId")
    )
    return {"aborted": True}


@never_cache
@json_view("GET")
def upload_parts(request: HttpRequest) -> HttpResponse:
    """Answer S3's ListParts XML, which Uppy's S3 client reads to resume an upload."""
    actor = Actor.from_request(request)
    parts = service.upload_parts_list(actor=actor, upload_id=request.GET.get("uploadId", ""))
    return parts_xml(parts)


def parts_xml(parts: list[s3.Part]) -> HttpResponse:
    """Return S3's ListParts answer for the parts of an upload."""
    items = "".join(
        f"<Part><PartNumber>{p.number}</PartNumber><ETag>{escape(p.etag)}</ETag>"
        f"<Size>{p.size}</Size></Part>"
        for p in parts
    )
    return _xml(f'<ListPartsResult xmlns="{S3_NAMESPACE}">{items}</ListPartsResult>')


def _xml(body: str) -> HttpResponse:
    return HttpResponse(
        f'<?xml version="1.0" encoding="UTF-8"?>\n{body}', content_type="application/xml"
    )


# The browser's S3 client (Uppy) sends the next two requests itself, without a CSRF header.
# An answer changes nothing: the state change already happened in a CSRF-checked JSON request,
# and its signed token names the user. A proxied part's signed token is the per-request secret
# that a forged cross-site request cannot know.
@csrf_exempt
@never_cache
@json_view("POST")
def upload_answer(request: HttpRequest, token: str) -> HttpResponse:
    """Answer in S3's XML what the portal already did: the new upload's id, or its completion."""
    answer = service.upload_answer(actor=Actor.from_request(request), token=token)
    return answer_xml(request, answer)


def answer_xml(request: HttpRequest, answer: dict[str, str]) -> HttpResponse:
    """Return in S3's XML what an answer URL says: a new upload's id, or its completion."""
    bucket, key, upload_id = (escape(answer[name]) for name in ("bucket", "key", "upload_id"))
    if answer["kind"] == "created":
        return _xml(
            f'<InitiateMultipartUploadResult xmlns="{S3_NAMESPACE}"><Bucket>{bucket}</Bucket>'
            f"<Key>{key}</Key><UploadId>{upload_id}</UploadId></InitiateMultipartUploadResult>"
        )
    folder = reverse("bucket_detail", args=[answer["bucket"]])
    return _xml(
        f'<CompleteMultipartUploadResult xmlns="{S3_NAMESPACE}">'
        f"<Location>{escape(request.build_absolute_uri(folder))}</Location>"
        f"<Bucket>{bucket}</Bucket><Key>{key}</Key></CompleteMultipartUploadResult>"
    )


@csrf_exempt
@json_view("PUT")
def upload_proxy(request: HttpRequest, token: str) -> HttpResponse:
    """Stream one part of the body on to S3 (UPLOAD_VIA_PORTAL), never holding it whole."""
    return proxied_part(request, token)


def proxied_part(
    request: HttpRequest, token: str, visit: FileRequestVisit | None = None
) -> HttpResponse:
    """Send the request's body on as the part its signed token names; answer its ETag."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        raise UploadError("A part must be sent with its Content-Length.", status=411) from None
    etag = service.upload_part_proxy(
        actor=Actor.from_request(request), token=token, length=length, stream=request, visit=visit
    )
    response = JsonResponse({"etag": etag})
    response.headers["ETag"] = f'"{etag}"'
    return response


urlpatterns = [
    path("b/<bucket:bucket>/uploads/prepare/", upload_prepare, name="upload_prepare"),
    path("b/<bucket:bucket>/uploads/", upload_create, name="upload_create"),
    path("uploads/sign/", upload_sign, name="upload_sign"),
    path("uploads/parts/", upload_parts, name="upload_parts"),
    path("uploads/complete/", upload_complete, name="upload_complete"),
    path("uploads/abort/", upload_abort, name="upload_abort"),
    path("uploads/answer/<str:token>/", upload_answer, name="upload_answer"),
    path("uploads/proxy/<str:token>/", upload_proxy, name="upload_proxy"),
]
