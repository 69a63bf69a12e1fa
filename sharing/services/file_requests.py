"""File requests: upload-only links through which outsiders drop files into one folder.

The creator needs write on the folder; whether a request takes files is the one rule
`FileRequest.objects.usable(now)`. Room is reserved when an upload starts (a conditional UPDATE,
so that parallel uploads cannot overshoot the caps) and counted as received when S3 holds the
file. Uploads themselves go through services.uploads, owned by the outsider's visit.
"""

import datetime
import logging
import posixpath
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from sharing import audit, emails, permissions, s3
from sharing.audit import Actor
from sharing.keys import clean_key
from sharing.models import (
    FileRequest,
    FileRequestVisit,
    Outcome,
    PendingUpload,
    ReceivedFile,
    RequestStatus,
    Role,
)
from sharing.services import password_attempts, uploads
from sharing.services.errors import ServiceError
from sharing.services.file_request_status import GONE_STATUS, REFUSALS, request_refusal
from sharing.services.links import (
    MAX_PASSWORD_CHARS,
    TOKEN_BYTES,
    expiry_problem,
    sender_name,
    token_hash,
)
from sharing.services.uploads import UploadError, size_problem

MAX_TITLE_CHARS = 200
MAX_MESSAGE_CHARS = 2000
MAX_FILES_LIMIT = 10_000
MAX_BYTES_LIMIT = 5 * 1024**4  # S3's largest object: a bigger cap would mean nothing
FREE_NAME_TRIES = 50  # "name (2).ext" … "name (50).ext"; then the outsider renames the file
REPORT_IDLE_MINUTES = 15  # a visit quiet this long is over: its owner gets the list of files
logger = logging.getLogger(__name__)


class FileRequestError(ServiceError):
    """A refused file request action (bad options, wrong password, no longer taking files)."""


class FileRequestNotFoundError(FileRequestError):
    def __init__(self) -> None:
        super().__init__("This file request does not exist.", status=404)


class FileRequestPasswordError(FileRequestError):
    pass


@dataclass(frozen=True)
class NewFileRequest:
    request: FileRequest
    token: str

    @property
    def url(self) -> str:
        return request_url(self.token)


def request_url(token: str) -> str:
    """Return a request's address built from SITE_URL (never from a request's Host header)."""
    return settings.SITE_URL + reverse("file_request_public", args=[token])


def _options_problem(
    *,
    title: str,
    message: str,
    expires_at: datetime.datetime | None,
    max_bytes: Any,
    max_files: Any,
    password: str,
) -> str | None:
    if not title.strip():
        return "Give the request a title: the outsider reads it first."
    if len(title) > MAX_TITLE_CHARS:
        return f"The title may have at most {MAX_TITLE_CHARS} characters."
    if len(message) > MAX_MESSAGE_CHARS:
        return f"The message may have at most {MAX_MESSAGE_CHARS} characters."
    problem = expiry_problem(expires_at)
    if problem:
        return problem.replace("A link", "A file request")
    if not _whole(max_bytes) or not 1 <= max_bytes <= MAX_BYTES_LIMIT:
        return "The size cap must be a positive number of bytes, at most 5 TiB."
    if not _whole(max_files) or not 1 <= max_files <= MAX_FILES_LIMIT:
        return f"The file cap must be between 1 and {MAX_FILES_LIMIT}."
    if password and len(password) < settings.LINK_PASSWORD_MIN_LENGTH:
        return f"A password must have at least {settings.LINK_PASSWORD_MIN_LENGTH} characters."
    if len(password) > MAX_PASSWORD_CHARS:
        return f"A password must have at most {MAX_PASSWORD_CHARS} characters."
    return None


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def file_request_create(
    *,
    actor: Actor,
    bucket: str,
    prefix: str,
    title: str,
    message: str,
    expires_at: datetime.datetime | None,
    max_bytes: int,
    max_files: int,
    password: str = "",
) -> NewFileRequest:
    """Create a request for files into a folder the actor may write to; audited."""
    action = "file_request.create"
    permissions.require(actor=actor, bucket=bucket, role=Role.WRITE, action=action)
    with audit.refusals(actor=actor, action=action, errors=FileRequestError, bucket=bucket):
        try:
            prefix = clean_key(prefix, folder=True) if prefix else ""
        except ValidationError as error:
            raise FileRequestError(f"The folder is not valid: {error.messages[0]}") from error
        problem = _options_problem(
            title=title,
            message=message,
            expires_at=expires_at,
            max_bytes=max_bytes,
            max_files=max_files,
            password=password,
        )
        if problem:
            raise FileRequestError(problem)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with transaction.atomic():
        request = FileRequest.objects.create(
            token_hash=token_hash(token),
            bucket=bucket,
            prefix=prefix,
            creator=actor.user,
            title=title.strip(),
            message=message.strip(),
            expires_at=expires_at,
            max_bytes=max_bytes,
            max_files=max_files,
            password_hash=make_password(password) if password else "",
        )
        audit.record(
            actor=actor,
            action=action,
            outcome=Outcome.SUCCESS,
            bucket=bucket,
            key=prefix,
            message=f"Request {request.pk}: up to {max_files} files, {max_bytes} bytes, "
            f"until {expires_at:%Y-%m-%d %H:%M} UTC{', with a password' if password else ''}.",
        )
    return NewFileRequest(request=request, token=token)


def file_request_of(*, actor: Actor, request_id: uuid.UUID | str) -> FileRequest:
    """Return a request its creator (or a superuser) may manage, with its status; else 404."""
    request = FileRequest.objects.with_status(timezone.now()).filter(pk=request_id).first()
    user = actor.user
    if request is None or user is None or (request.creator_id != user.pk and not user.is_superuser):
        raise Http404("No such file request.")
    return request


def file_request_revoke(*, actor: Actor, request: FileRequest) -> bool:
    """Stop a request at once, uploads in flight included; return False if it was already."""
    changed = FileRequest.objects.filter(pk=request.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    audit.record(
        actor=actor,
        action="file_request.revoke",
        outcome=Outcome.SUCCESS,
        bucket=request.bucket,
        key=request.prefix,
        message=f"Request {request.pk}{' revoked' if changed else ' was already revoked'}.",
    )
    if changed:
        _abort_in_flight(actor=actor, request=request)
    return bool(changed)


def _abort_in_flight(*, actor: Actor, request: FileRequest) -> None:
    # The parts already stored go now. The records stay, so that the outsider's next step is
    # told the request was withdrawn; uploads_cleanup forgets them later.
    in_flight = PendingUpload.objects.filter(visit__request=request)
    for upload in in_flight:
        if uploads.is_single(upload):
            continue
        try:
            with audit.s3_call(
                actor=actor, action="upload.abort", bucket=upload.bucket, key=upload.key
            ) as call:
                uploads.abort_parts(upload)
                call.message = f"Request {request.pk} withdrawn: its parts were removed."
        except (s3.S3Error, UploadError):
            logger.warning("parts of a withdrawn request's upload remain for uploads_cleanup")


# --- The outsider -------------------------------------------------------------------------


def _event(actor: Actor, request: FileRequest, action: str, outcome: str, message: str) -> None:
    audit.record(
        actor=actor,
        action=action,
        outcome=outcome,
        bucket=request.bucket,
        key=request.prefix,
        message=f"Request {request.pk}: {message}",
    )


def file_request_find(*, actor: Actor, token: str) -> FileRequest:
    """Return the request a token names if it takes files now; else a refusal (404 or 410)."""
    request = (
        FileRequest.objects.with_status(timezone.now())
        .select_related("creator")
        .filter(token_hash=token_hash(token))
        .first()
    )
    if request is None:
        audit.record(
            actor=actor,
            action="file_request.open",
            outcome=Outcome.DENIED,
            message="Unknown file request token.",
        )
        raise FileRequestNotFoundError()
    if request.status != RequestStatus.ACTIVE:
        _event(actor, request, "file_request.open", Outcome.DENIED, request.status)
        error = FileRequestError(REFUSALS[request.status], status=GONE_STATUS)
        error.request = request  # a visit already under way may still see what it sent
        raise error
    return request


def file_request_unlock(*, actor: Actor, request: FileRequest, password: str) -> None:
    """Raise unless the password is right (wrong ones are counted, throttled and audited)."""
    keys = password_attempts.attempt_keys(
        scope="request", target=f"request:{request.pk}", actor=actor
    )
    if password_attempts.attempts_exhausted(keys):
        _event(actor, request, "file_request.password", Outcome.DENIED, "too many attempts.")
        raise FileRequestPasswordError(
            "Too many wrong passwords. Wait a few minutes and try again.", status=429
        )
    if password and check_password(password, request.password_hash):
        return
    password_attempts.attempt_failed(keys)
    _event(actor, request, "file_request.password", Outcome.FAILURE, "wrong password.")
    raise FileRequestPasswordError("Wrong password.", status=403)


def visit_start(*, actor: Actor, request: FileRequest) -> FileRequestVisit:
    """Start an outsider's visit of a request (its uploads and its one report); audited."""
    with transaction.atomic():
        visit = FileRequestVisit.objects.create(
            request=request, client_ip=actor.ip, user_agent=actor.user_agent[:300]
        )
        _event(actor, request, "file_request.open", Outcome.SUCCESS, f"visit {visit.pk} began.")
    return visit


def visit_continue(*, actor: Actor, request: FileRequest, visit_id: Any) -> FileRequestVisit:
    """Return this browser's visit of the request (`visit_id`, from its session), or start one."""
    visit = (
        FileRequestVisit.objects.filter(pk=visit_id, request=request).first() if visit_id else None
    )
    if visit is None:
        visit = visit_start(actor=actor, request=request)
    visit.request = request
    return visit


def visit_of(*, visit_id: Any, allowed: list[str]) -> FileRequestVisit:
    """Return a visit this browser's session started (`allowed`), else 404."""
    if str(visit_id) not in allowed:
        raise Http404("No such visit.")
    visit = FileRequestVisit.objects.select_related("request").filter(pk=visit_id).first()
    if visit is None:
        raise Http404("No such visit.")
    return visit


@dataclass(frozen=True)
class Room:
    bytes: int
    files: int


def room_left(request: FileRequest) -> Room:
    """Return how many bytes and files a request still takes (uploads in flight counted)."""
    request.refresh_from_db(
        fields=["bytes_received", "bytes_reserved", "files_received", "files_reserved"]
    )
    return Room(
        bytes=max(0, request.max_bytes - request.bytes_received - request.bytes_reserved),
        files=max(0, request.max_files - request.files_received - request.files_reserved),
    )


def visit_files(*, visit: FileRequestVisit) -> list[ReceivedFile]:
    """Return the files stored in this visit, and only those."""
    return list(visit.files.all())


def _free_key(*, actor: Actor, request: FileRequest, path: Any) -> str:
    """Return a key under the request's folder that no file (nor upload in flight) has."""
    if not isinstance(path, str) or not path:
        raise UploadError("The file has no name.")
    relative = path[len(request.prefix) :] if path.startswith(request.prefix) else path
    try:
        key = clean_key(request.prefix + relative)
    except ValidationError as error:
        raise UploadError(error.messages[0]) from error
    stem, ext = posixpath.splitext(key)
    with audit.s3_call(
        actor=actor, action="file_request.name", bucket=request.bucket, key=key
    ) as call:
        for number in range(1, FREE_NAME_TRIES + 1):
            candidate = key if number == 1 else f"{stem} ({number}){ext}"
            if len(candidate.encode()) > 1024:
                break
            taken = PendingUpload.objects.filter(bucket=request.bucket, key=candidate).exists()
            if not taken and s3.head(request.bucket, candidate) is None:
                call.message = f"Free name: {candidate}."
                return candidate
        raise UploadError(
            "Too many files with this name are already here; rename the file.", status=409
        )


def file_request_prepare(
    *, actor: Actor, visit: FileRequestVisit, files: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Check a batch before upload: each name, size and the caps; say the names files get."""
    request = visit.request
    refusal = request_refusal(request_id=request.pk)
    if refusal:
        _event(actor, request, "file_request.upload", Outcome.DENIED, refusal)
        raise UploadError(refusal, status=GONE_STATUS, code="RequestClosed")
    room = room_left(request)
    checks = []
    for item in files:
        check = {"id": str(item.get("id", ""))[:500], "key": "", "exists": False, "problem": ""}
        size = item.get("size")
        problem = size_problem(size)[0]
        if not problem:
            if room.files < 1 or size > room.bytes:
                problem = _over_caps(room)
            else:
                room = Room(bytes=room.bytes - size, files=room.files - 1)
        if not problem:
            try:
                check["key"] = _free_key(actor=actor, request=request, path=item.get("path"))
            except UploadError as error:
                problem = error.message
        check["problem"] = problem
        checks.append(check)
    return checks


def _over_caps(room: Room) -> str:
    if room.files < 1:
        return "This request takes no more files."
    return f"This request takes only {room.bytes:,} more bytes."


def _reserve(request: FileRequest, size: int) -> bool:
    # One conditional UPDATE: the database checks status and room on the row it changes, so
    # parallel starts cannot together pass the caps.
    return bool(
        FileRequest.objects.usable(timezone.now())
        .filter(
            pk=request.pk,
            max_bytes__gte=F("bytes_received") + F("bytes_reserved") + size,
            max_files__gte=F("files_received") + F("files_reserved") + 1,
        )
        .update(bytes_reserved=F("bytes_reserved") + size, files_reserved=F("files_reserved") + 1)
    )


def _release(request_id: Any, size: int) -> None:
    FileRequest.objects.filter(pk=request_id).update(
        bytes_reserved=F("bytes_reserved") - size, files_reserved=F("files_reserved") - 1
    )


def file_request_upload_start(
    *,
    actor: Actor,
    visit: FileRequestVisit,
    path: Any,
    size: Any,
    content_type: str,
    multipart: bool,
) -> uploads.Started:
    """Reserve room for one file, choose a free name under the folder, and start its upload."""
    request = visit.request
    action = "file_request.upload"
    problem, status = size_problem(size)
    if problem:
        _event(actor, request, action, Outcome.REFUSED, problem)
        raise UploadError(problem, status=status)
    if not _reserve(request, size):
        reason = request_refusal(request_id=request.pk) or _over_caps(room_left(request))
        _event(actor, request, action, Outcome.REFUSED, f"{size} bytes refused: {reason}")
        status = GONE_STATUS if request_refusal(request_id=request.pk) else 413
        raise UploadError(reason, status=status, code="RequestFull")
    try:
        key = _free_key(actor=actor, request=request, path=path)
        started = uploads.upload_create(
            actor=actor,
            bucket=request.bucket,
            key=key,
            size=size,
            content_type=content_type,
            acl="private",
            overwrite=False,
            multipart=multipart,
            visit=visit,
        )
    except BaseException as error:
        _release(request.pk, size)
        if isinstance(error, UploadError) and error.code != "RequestClosed":
            _event(actor, request, action, Outcome.REFUSED, f"{str(path)[:200]}: {error.message}")
        raise
    _touch(visit)
    _event(actor, request, action, Outcome.SUCCESS, f"{key}: {size} bytes reserved.")
    return started


def _touch(visit: FileRequestVisit) -> None:
    FileRequestVisit.objects.filter(pk=visit.pk).update(last_activity_at=timezone.now())


def file_request_upload_complete(
    *, actor: Actor, visit: FileRequestVisit, upload_id: Any
) -> uploads.Completed:
    """Complete one upload; count what S3 stored against the caps, or remove it if over."""
    request = visit.request
    try:
        done = uploads.upload_complete(actor=actor, upload_id=upload_id, visit=visit)
    except (UploadError, s3.S3Error) as error:
        # The upload's room was freed with its record (uploads.forget), if it is over.
        if getattr(error, "code", "") == "SizeMismatch":
            _event(actor, request, "file_request.over_cap", Outcome.SUCCESS, error.message)
        raise
    size = done.size
    # Counted on the stored size; the conditional UPDATE re-checks the caps on the row.
    counted = FileRequest.objects.filter(
        pk=request.pk,
        max_bytes__gte=F("bytes_received") + size,
        max_files__gte=F("files_received") + 1,
    ).update(
        bytes_received=F("bytes_received") + size,
        files_received=F("files_received") + 1,
    )
    if not counted:
        with audit.s3_call(
            actor=actor, action="file_request.over_cap", bucket=request.bucket, key=done.key
        ) as call:
            s3.delete(request.bucket, done.key)
            call.message = f"{size} bytes would pass the request's caps; removed."
        raise UploadError(
            "This file would pass the request's size or file cap; it was removed.",
            status=413,
            code="RequestFull",
        )
    ReceivedFile.objects.create(visit=visit, key=done.key, size=size)
    _touch(visit)
    return done


def file_request_upload_abort(*, actor: Actor, visit: FileRequestVisit, upload_id: Any) -> None:
    """Abort one of the visit's uploads and free the room it reserved."""
    uploads.upload_abort(actor=actor, upload_id=upload_id, visit=visit)


# --- The owner's report -------------------------------------------------------------------


def visit_report(*, visit: FileRequestVisit, now: datetime.datetime | None = None) -> bool:
    """Email the request's creator the files of one visit, once; return whether it was sent."""
    now = now or timezone.now()
    # Claimed by a conditional UPDATE: the Done button and the periodic report never both send.
    claimed = FileRequestVisit.objects.filter(
        pk=visit.pk, reported_at__isnull=True, files__isnull=False
    ).update(reported_at=now)
    if not claimed:
        return False
    visit = FileRequestVisit.objects.select_related("request__creator").get(pk=visit.pk)
    request, files = visit.request, list(visit.files.all())
    actor = Actor.system("file-requests")
    message = f"visit {visit.pk}: {len(files)} files reported to the creator."
    creator = request.creator
    if not creator.email:
        _event(actor, request, "file_request.report", Outcome.FAILURE, "creator has no email.")
        return False
    email = emails.file_request_email(
        request=request,
        visit=visit,
        files=files,
        owner_name=sender_name(creator),
        folder_url=settings.SITE_URL
        + reverse("bucket_detail", args=[request.bucket])
        + (f"?prefix={request.prefix}" if request.prefix else ""),
    )
    try:
        email.send()
    except Exception:  # noqa: BLE001 - a mail server fault must not lose the audit row
        logger.exception("File request report failed: visit %s", visit.pk)
        FileRequestVisit.objects.filter(pk=visit.pk).update(reported_at=None)
        _event(actor, request, "file_request.report", Outcome.FAILURE, "the email failed.")
        return False
    _event(actor, request, "file_request.report", Outcome.SUCCESS, message)
    return True


def file_requests_report(*, now: datetime.datetime, idle_minutes: int = REPORT_IDLE_MINUTES) -> int:
    """Report every visit idle for `idle_minutes` with files not reported yet; return how many."""
    quiet = now - datetime.timedelta(minutes=idle_minutes)
    visits = FileRequestVisit.objects.filter(
        reported_at__isnull=True, last_activity_at__lte=quiet, files__isnull=False
    ).distinct()
    return sum(visit_report(visit=visit, now=now) for visit in visits)
