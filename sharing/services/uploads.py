"""Uploads: start, sign parts, stream proxied parts, complete and abort.

Bytes go from the browser straight to S3 through part URLs signed with each part's exact length
(or, with UPLOAD_VIA_PORTAL, through the portal in small chunks). The portal starts, completes and
aborts every upload itself, so it can refuse, verify and audit each one. Checking a batch before
it starts is in upload_checks, aborting forgotten uploads in upload_cleanup.
"""

import re
import time
import uuid
from dataclasses import dataclass
from typing import Any, BinaryIO

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db.models import F
from django.http import Http404
from django.urls import reverse

from sharing import audit, permissions, s3, selectors
from sharing.audit import Actor
from sharing.keys import clean_key
from sharing.models import Acl, FileRequest, FileRequestVisit, Outcome, PendingUpload, Role
from sharing.services import public_access, search_index, thumbnails
from sharing.services.errors import ServiceError
from sharing.services.file_request_status import GONE_STATUS, request_refusal

# A file small enough for one PUT has no S3 upload id; its row gets this prefix and a random id.
# S3 upload ids never contain ':'.
SINGLE_PREFIX = "put:"
SINGLE_PART = 0  # the "part number" of a one-request upload in proxied URLs
ABORT_ATTEMPTS = 3  # S3 may keep a part that was in flight during an abort; abort again then
DEFAULT_CONTENT_TYPE = "application/octet-stream"
CONTENT_TYPE = re.compile(r"^[\x20-\x7e]{1,255}$")
PART_SALT = "sharing.uploads.part"
ANSWER_SALT = "sharing.uploads.answer"


class UploadError(ServiceError):
    """A refused upload request; `code` tells the browser's S3 client why (x-amz-error-code)."""

    def __init__(self, message: str, *, status: int = 400, code: str = "") -> None:
        super().__init__(message, status=status)
        self.code = code


@dataclass(frozen=True)
class Started:
    upload: PendingUpload
    url: str = ""  # the PUT URL of a one-request upload
    answer_url: str = ""  # where the browser's S3 client reads the new upload id from


@dataclass(frozen=True)
class Completed:
    key: str
    size: int
    public: bool | None = None
    warning: str = ""
    answer_url: str = ""


def is_single(upload: PendingUpload) -> bool:
    """Return whether an upload is one PUT of the whole file rather than a multipart upload."""
    return upload.upload_id.startswith(SINGLE_PREFIX)


def via_portal() -> bool:
    """Return whether browsers send parts to the portal instead of to S3 (UPLOAD_VIA_PORTAL)."""
    return settings.UPLOAD_VIA_PORTAL


def size_problem(size: Any) -> tuple[str, int]:
    """Return why a declared size is refused and the status to answer with, or ("", 200)."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return "The file's size is missing or not a whole number of bytes.", 400
    if size > settings.UPLOAD_MAX_BYTES:
        limit = settings.UPLOAD_MAX_BYTES
        return f"This file is {size:,} bytes; files may be at most {limit:,} bytes here.", 413
    return "", 200


def _refuse(*, actor: Actor, action: str, bucket: str, key: str, message: str, status: int) -> None:
    # Refused input, as prepare records it: nothing was asked of S3.
    audit.record(
        actor=actor, action=action, outcome=Outcome.REFUSED, bucket=bucket, key=key, message=message
    )
    raise UploadError(message, status=status)


def upload_create(
    *,
    actor: Actor,
    bucket: str,
    key: str,
    size: Any,
    content_type: str,
    acl: str,
    overwrite: bool,
    multipart: bool,
    visit: FileRequestVisit | None = None,
) -> Started:
    """Start an upload after checking name, size and existence; return what the browser needs.

    With `visit`, an outsider uploads through a file request: the visit owns the upload instead
    of a user, and the request's status (not a grant) allows it; nothing is replaced, nor public.
    """
    _allow(actor=actor, bucket=bucket, visit=visit, action="upload.start")
    if visit is not None:
        overwrite, acl = False, Acl.PRIVATE
    refuse = {"actor": actor, "action": "upload.start", "bucket": bucket, "key": str(key)[:1024]}
    try:
        key = clean_key(key if isinstance(key, str) else "")
    except ValidationError as error:
        _refuse(**refuse, message=error.messages[0], status=400)
    problem, status = size_problem(size)
    if problem:
        _refuse(**refuse, message=problem, status=status)
    if not multipart and size > s3.MAX_SINGLE_PUT_BYTES:
        _refuse(**refuse, message="Files over 5 GiB must be sent in parts.", status=400)
    content_type = content_type or DEFAULT_CONTENT_TYPE
    if not CONTENT_TYPE.match(content_type):
        _refuse(**refuse, message="The file's type is not a valid media type.", status=400)
    if acl not in Acl.values:
        _refuse(**refuse, message="Choose private or public for the uploaded files.", status=400)
    if acl == Acl.PUBLIC_READ and not public_access.public_files_allowed(bucket=bucket):
        _refuse(**refuse, message=public_access.NOT_ALLOWED, status=403)
    with audit.s3_call(actor=actor, action="upload.start", bucket=bucket, key=key) as call:
        # Checked before anything is stored; completion re-checks with a conditional write.
        if not overwrite and s3.head(bucket, key) is not None:
            raise UploadError(
                "A file with this name already exists here. Choose to replace it, or rename "
                "your file.",
                status=409,
                code="ObjectExists",
            )
        if multipart:
            upload_id = s3.create_multipart(bucket, key, content_type=content_type)
        else:
            upload_id = f"{SINGLE_PREFIX}{uuid.uuid4().hex}"
        how = f"{s3.part_count(size)} parts" if multipart else "one request"
        call.message = f"{size} bytes in {how}, {acl}{', may replace' if overwrite else ''}."
    upload = PendingUpload.objects.create(
        upload_id=upload_id,
        bucket=bucket,
        key=key,
        user=actor.user if visit is None else None,
        visit=visit,
        size=size,
        content_type=content_type,
        acl=acl,
    )
    if multipart:
        return Started(upload=upload, answer_url=_answer_url(actor, upload, kind="created"))
    return Started(upload=upload, url=_part_url(upload, SINGLE_PART, replace=overwrite))


def _allow(
    *, actor: Actor, bucket: str, visit: FileRequestVisit | None, action: str, key: str = ""
) -> None:
    """Raise unless the actor's write grant (or the visit's file request) allows uploading now."""
    if visit is None:
        permissions.require(actor=actor, bucket=bucket, role=Role.WRITE, action=action)
        return
    # Asked again at every step, so that revoking or expiry stops uploads already in flight.
    refusal = request_refusal(request_id=visit.request_id)
    if refusal:
        audit.record(
            actor=actor,
            action=action,
            outcome=Outcome.DENIED,
            bucket=bucket,
            key=key,
            message=refusal,
        )
        raise UploadError(refusal, status=GONE_STATUS, code="RequestClosed")


def _owns(actor: Actor, upload: PendingUpload, visit: FileRequestVisit | None) -> bool:
    if visit is not None:
        return upload.visit_id == visit.pk
    return actor.user is not None and upload.user_id == actor.user.pk


def _own(
    *, actor: Actor, upload_id: Any, action: str, visit: FileRequestVisit | None = None
) -> PendingUpload:
    """Return the actor's (or visit's) own upload, still allowed; else 404 (or 403, 410)."""
    upload = None
    if isinstance(upload_id, str) and upload_id:
        upload = PendingUpload.objects.filter(upload_id=upload_id).first()
    if upload is None or not _owns(actor, upload, visit):
        if upload is not None:
            audit.record(
                actor=actor,
                action=action,
                outcome=Outcome.DENIED,
                bucket=upload.bucket,
                key=upload.key,
                message="Only the person who started an upload may continue it.",
            )
        raise Http404("No such upload: it finished, was cancelled, or is someone else's.")
    _allow(actor=actor, bucket=upload.bucket, visit=visit, action=action, key=upload.key)
    return upload


def _part_url(upload: PendingUpload, number: int, *, replace: bool = False) -> str:
    length = upload.size if number == SINGLE_PART else s3.part_length(upload.size, number)
    # An outsider's one-request file goes through the portal, whose PUT sends If-None-Match:
    # Uppy's S3 client sends no header of ours, and a file request never overwrites.
    if via_portal() or (upload.visit_id and number == SINGLE_PART):
        grant = {"u": upload.user_id, "p": str(upload.pk), "n": number, "l": length, "r": replace}
        token = signing.dumps(grant, salt=PART_SALT)
        if upload.visit_id:
            return reverse("file_request_upload_proxy", args=[upload.visit_id, token])
        return reverse("upload_proxy", args=[token])
    seconds = settings.UPLOAD_URL_SECONDS
    if number == SINGLE_PART:
        return s3.presign_put(
            upload.bucket,
            upload.key,
            length=length,
            content_type=upload.content_type,
            seconds=seconds,
        )
    return s3.presign_part(
        upload.bucket,
        upload.key,
        upload_id=upload.upload_id,
        number=number,
        length=length,
        seconds=seconds,
    )


def upload_part_url(
    *, actor: Actor, upload_id: str, number: Any, visit: FileRequestVisit | None = None
) -> str:
    """Return the URL one part is PUT to, signed for its exact length; only for its owner."""
    upload = _own(actor=actor, upload_id=upload_id, action="upload.sign", visit=visit)
    if is_single(upload):
        raise UploadError("A one-request upload is signed when it starts; start it again.")
    count = s3.part_count(upload.size)
    if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= count:
        raise UploadError(f"This upload has parts 1 to {count}.")
    return _part_url(upload, number)


def upload_parts_list(
    *, actor: Actor, upload_id: str, visit: FileRequestVisit | None = None
) -> list[s3.Part]:
    """Return the parts S3 holds for the actor's upload (to resume it after a reload)."""
    upload = _own(actor=actor, upload_id=upload_id, action="upload.list_parts", visit=visit)
    if is_single(upload):
        return []
    with audit.s3_call(
        actor=actor, action="upload.list_parts", bucket=upload.bucket, key=upload.key
    ) as call:
        parts = s3.list_parts(upload.bucket, upload.key, upload_id=upload.upload_id)
        call.message = f"{len(parts)} of {s3.part_count(upload.size)} parts stored."
    return parts


def upload_part_proxy(
    *,
    actor: Actor,
    token: str,
    length: int | None,
    stream: BinaryIO,
    visit: FileRequestVisit | None = None,
) -> str:
    """Stream one part from the request body to S3 in small chunks; return its ETag."""
    try:
        grant = signing.loads(token, salt=PART_SALT, max_age=settings.UPLOAD_URL_SECONDS)
    except signing.BadSignature as error:
        raise UploadError("This upload link is invalid or has expired.", status=403) from error
    upload = PendingUpload.objects.filter(pk=grant["p"]).first()
    owner = getattr(actor.user, "pk", None) if visit is None else None
    if upload is None or grant["u"] != owner:
        raise Http404("No such upload: it finished, was cancelled, or is someone else's.")
    upload = _own(actor=actor, upload_id=upload.upload_id, action="upload.part", visit=visit)
    number, expected = grant["n"], grant["l"]
    if length != expected:
        raise UploadError(f"This part must be exactly {expected} bytes; {length} were announced.")
    with audit.s3_call(
        actor=actor, action="upload.part", bucket=upload.bucket, key=upload.key
    ) as call:
        if number == SINGLE_PART:
            replace = bool(grant.get("r"))
            url = s3.presign_put(
                upload.bucket,
                upload.key,
                length=expected,
                content_type=upload.content_type,
                seconds=60,
                for_browser=False,
                if_none_match=not replace,
            )
            headers = {"Content-Type": upload.content_type}
            if not replace:
                headers["If-None-Match"] = "*"
        else:
            url = s3.presign_part(
                upload.bucket,
                upload.key,
                upload_id=upload.upload_id,
                number=number,
                length=expected,
                seconds=60,
                for_browser=False,
            )
            headers = {}
        etag = s3.stream_put(url, length=expected, stream=stream, headers=headers)
        call.message = f"Part {number or 1}: {expected} bytes passed through the portal."
    return etag


def _parts_problem(upload: PendingUpload, parts: list[s3.Part]) -> str:
    count = s3.part_count(upload.size)
    if [part.number for part in parts] != list(range(1, count + 1)):
        return f"Only {len(parts)} of {count} parts arrived; the upload can be resumed."
    for part in parts:
        if part.size != s3.part_length(upload.size, part.number):
            return f"Part {part.number} has {part.size} bytes instead of the expected length."
    return ""


def upload_complete(
    *,
    actor: Actor,
    upload_id: str,
    overwrite: bool = False,
    visit: FileRequestVisit | None = None,
) -> Completed:
    """Join the parts, check the stored size, apply the chosen visibility; audited.

    Without `overwrite` the parts are joined only if the name is still free (a conditional write).
    """
    upload = _own(actor=actor, upload_id=upload_id, action="upload.complete", visit=visit)
    overwrite = overwrite and visit is None
    bucket, key = upload.bucket, upload.key
    with audit.s3_call(actor=actor, action="upload.complete", bucket=bucket, key=key) as call:
        if not is_single(upload):
            _join_parts(upload, overwrite=overwrite)
        info = s3.head(bucket, key)
        if info is None:
            if not is_single(upload):
                forget(upload)
            # A one-request upload stays open: its PUT may still be on its way.
            raise UploadError("The file did not arrive in storage.", status=409, code="NotStored")
        forget(upload)
        if info.size != upload.size:
            # Never keep a file whose size differs from what was announced and checked.
            s3.delete(bucket, key)
            raise UploadError(
                f"The stored file has {info.size} bytes instead of {upload.size}; it was deleted.",
                status=409,
                code="SizeMismatch",
            )
        call.message = f"{upload.size} bytes stored."
    search_index.index_put(
        bucket=bucket, key=key, size=info.size, last_modified=info.last_modified,
        content_type=info.content_type, etag=info.etag,
    )  # fmt: skip
    selectors.bucket_usage_forget(bucket=bucket)
    thumbnails.thumbnails_request(bucket=bucket, keys_with_versions=[thumbnails.source_of(info)])
    public, warning = None, ""
    if upload.acl == Acl.PUBLIC_READ:
        public, warning = _make_public(actor=actor, bucket=bucket, key=key)
    answer_url = "" if is_single(upload) else _answer_url(actor, upload, kind="completed")
    return Completed(
        key=key, size=upload.size, public=public, warning=warning, answer_url=answer_url
    )


def _join_parts(upload: PendingUpload, *, overwrite: bool) -> None:
    # The part list comes from S3, not from the browser: only what S3 holds is joined.
    parts = s3.list_parts(upload.bucket, upload.key, upload_id=upload.upload_id)
    problem = _parts_problem(upload, parts)
    if problem:
        raise UploadError(problem, status=409, code="PartsMissing")
    try:
        s3.complete_multipart(
            upload.bucket,
            upload.key,
            upload_id=upload.upload_id,
            parts=parts,
            if_none_match=not overwrite,
        )
    except s3.S3Error as error:
        if error.code == "PreconditionFailed":
            # Someone stored the name meanwhile: theirs stays, ours is dropped whole.
            abort_parts(upload)
            forget(upload)
        raise


def forget(upload: PendingUpload) -> None:
    """Drop the portal's record of a finished or aborted upload (and the room it reserved)."""
    deleted, _ = PendingUpload.objects.filter(pk=upload.pk).delete()
    if deleted and upload.visit_id:
        # Released exactly once, with the row: completion then counts what S3 stored.
        FileRequest.objects.filter(visits=upload.visit_id).update(
            bytes_reserved=F("bytes_reserved") - upload.size,
            files_reserved=F("files_reserved") - 1,
        )


def _make_public(*, actor: Actor, bucket: str, key: str) -> tuple[bool | None, str]:
    try:
        state = public_access.object_set_public(actor=actor, bucket=bucket, key=key, public=True)
    except (s3.S3Error, public_access.PublicFilesNotAllowedError) as error:
        return False, f"The file was stored but stays private: {error.message}"
    return state.public, state.explanation


def abort_parts(upload: PendingUpload) -> None:
    """Abort a multipart upload until S3 no longer knows it (a part in flight may outlive one)."""
    for attempt in range(ABORT_ATTEMPTS):
        s3.abort_multipart(upload.bucket, upload.key, upload_id=upload.upload_id)
        try:
            s3.list_parts(upload.bucket, upload.key, upload_id=upload.upload_id)
        except s3.S3Error as error:
            if error.status == 404:
                return
            raise
        time.sleep(0.2 * (attempt + 1))
    raise UploadError(
        "Some parts could not be removed yet; the clean-up command will remove them.",
        status=503,
        code="PartsRemain",
    )


def upload_abort(*, actor: Actor, upload_id: str, visit: FileRequestVisit | None = None) -> None:
    """Abort the actor's upload and remove every part S3 stored for it; audited."""
    upload = _own(actor=actor, upload_id=upload_id, action="upload.abort", visit=visit)
    with audit.s3_call(
        actor=actor, action="upload.abort", bucket=upload.bucket, key=upload.key
    ) as call:
        if is_single(upload):
            call.message = "Cancelled before the file was confirmed; nothing was kept."
        else:
            abort_parts(upload)
            call.message = "Cancelled; its parts were removed."
    forget(upload)


def _answer_url(actor: Actor, upload: PendingUpload, *, kind: str) -> str:
    payload = {
        "u": upload.user_id,
        "v": str(upload.visit_id) if upload.visit_id else "",
        "k": kind,
        "b": upload.bucket,
        "key": upload.key,
        "id": upload.upload_id,
    }
    token = signing.dumps(payload, salt=ANSWER_SALT)
    if upload.visit_id:
        return reverse("file_request_upload_answer", args=[upload.visit_id, token])
    return reverse("upload_answer", args=[token])


def upload_answer(
    *, actor: Actor, token: str, visit: FileRequestVisit | None = None
) -> dict[str, str]:
    """Return what an answer URL says (kind, bucket, key, upload id), for its own user only."""
    try:
        payload = signing.loads(token, salt=ANSWER_SALT, max_age=settings.UPLOAD_URL_SECONDS)
    except signing.BadSignature as error:
        raise UploadError("This answer link is invalid or has expired.", status=403) from error
    owner = payload.get("v") == str(visit.pk) if visit else payload.get("u") == actor.user.pk
    if not owner or (visit is None and payload.get("v")):
        raise Http404("No such upload.")
    return {
        "kind": payload["k"],
        "bucket": payload["b"],
        "key": payload["key"],
        "upload_id": payload["id"],
    }
