"""Share links seen by the people who share: create, revoke, extend, raw presigned URLs.

Only the token's hash is stored. What recipients do with a link (open, password, download) is in
link_recipients.py; emails in link_emails.py; the lists of links in selectors.py."""

import datetime
import hashlib
import secrets
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from sharing import audit, permissions, s3, selectors
from sharing.audit import Actor
from sharing.models import LinkKind, Outcome, ShareLink
from sharing.services import link_scopes  # uses this module's errors at call time only
from sharing.services.errors import ServiceError

TOKEN_BYTES = 32  # 256 bits from secrets; DESIGN asks for at least 128
MAX_LINK_SECONDS = s3.MAX_PRESIGN_SECONDS  # SigV4's limit (7 days), kept for links too
MAX_DOWNLOAD_LIMIT = 100_000
MAX_PASSWORD_CHARS = 200
GONE_MESSAGES = {
    "revoked": "The person who shared it has withdrawn the link.",
    "expired": "This link has expired.",
    "used up": "This link has been used as many times as it allows.",
    "disabled": "This link no longer works: the account that made it may no longer share from this bucket.",
    "file deleted": "The shared file no longer exists.",
}
# Keys per UPDATE: SQLite allows a few thousand parameters in one statement.
FORGET_BATCH = 500


class LinkError(ServiceError):
    """A share request that cannot be carried out as asked; the message says why."""


class LinkNotFoundError(LinkError):
    """No link has this token (the same answer for a changed, re-cased or made-up token)."""

    def __init__(self) -> None:
        super().__init__("There is no link at this address.", status=404)


class LinkGoneError(LinkError):
    """The link existed but can no longer be used: revoked, expired, used up or disabled."""

    def __init__(self, reason: str) -> None:
        super().__init__(GONE_MESSAGES[reason], status=410)
        self.reason = reason


class LinkPasswordError(LinkError):
    """A missing or wrong password (403), or too many wrong ones (429); `page` is shown again."""

    def __init__(self, message: str, *, status: int, page: "LinkPage") -> None:
        super().__init__(message, status=status)
        self.page = page


@dataclass(frozen=True)
class NewLink:
    """A link just made; the raw token exists only here, to be shown or emailed once."""

    link: ShareLink
    token: str

    @property
    def url(self) -> str:
        return link_url(self.token)


@dataclass(frozen=True)
class LinkPage:
    """What a recipient sees before downloading."""

    link: ShareLink
    size: int
    sender: str
    needs_password: bool
    content_type: str = ""


def token_hash(token: str) -> str:
    """Return the stored form of a token: its SHA-256 in hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def link_url(token: str) -> str:
    """Return a link's address built from SITE_URL (never from a request's Host header)."""
    return settings.SITE_URL + reverse("link_public", args=[token])


def expiry_problem(expires_at: datetime.datetime | None) -> str | None:
    """Return why an expiry is refused (missing, past, over 7 days away), or None."""
    if expires_at is None:
        return "Choose when the link expires."
    now = timezone.now()
    if expires_at <= now:
        return "The expiry must be in the future."
    if expires_at > now + datetime.timedelta(seconds=MAX_LINK_SECONDS):
        return "A link can last at most 7 days (the limit of S3's signed URLs)."
    return None


def validate_options(
    *, expires_at: datetime.datetime | None, password: str, max_downloads: int | None
) -> None:
    problem = expiry_problem(expires_at)
    if problem:
        raise LinkError(problem)
    if password and len(password) < settings.LINK_PASSWORD_MIN_LENGTH:
        raise LinkError(
            f"A link password must have at least {settings.LINK_PASSWORD_MIN_LENGTH} characters."
        )
    if len(password) > MAX_PASSWORD_CHARS:
        raise LinkError(f"A link password must have at most {MAX_PASSWORD_CHARS} characters.")
    if max_downloads is not None and not 1 <= max_downloads <= MAX_DOWNLOAD_LIMIT:
        raise LinkError(f"The download limit must be between 1 and {MAX_DOWNLOAD_LIMIT}.")


def notify_problem(user) -> str | None:
    """Return why a first-download notice cannot reach this user, or None when it can."""
    if user is not None and user.email:
        return None
    return "Your account has no email address, so no first-download notice can be sent."


def sender_name(user) -> str:
    return user.get_full_name() or user.get_username()


def head_for_sharing(*, actor: Actor, action: str, bucket: str, key: str) -> s3.ObjectInfo:
    with audit.s3_call(actor=actor, action=action, bucket=bucket, key=key) as call:
        info = s3.head(bucket, key)
        if info is None:
            raise LinkError(s3.MESSAGES["NoSuchKey"], status=404)
        call.message = f"{info.size} bytes."
    return info


def new_link(
    *, actor: Actor, bucket: str, key: str, recipient_email: str = "", **options
) -> NewLink:
    password = options.pop("password")
    if notify_problem(actor.user):
        options["notify_on_download"] = False  # the page says no notice will come: none is due
        options["remind_before_expiry"] = False
    token = secrets.token_urlsafe(TOKEN_BYTES)
    link = ShareLink.objects.create(
        token_hash=token_hash(token),
        bucket=bucket,
        key=key,
        creator=actor.user,
        recipient_email=recipient_email,
        password_hash=make_password(password) if password else "",
        **options,
    )
    return NewLink(link=link, token=token)


def link_create(
    *,
    actor: Actor,
    bucket: str,
    key: str,
    expires_at: datetime.datetime,
    password: str = "",
    max_downloads: int | None = None,
    notify_on_download: bool = False,
    remind_before_expiry: bool = False,
    kind: str = LinkKind.FILE,
    keys: list[str] | None = None,
) -> NewLink:
    """Create a link to an existing file, folder or selection (link_scopes says what it reaches);
    the raw token is returned once and never stored."""
    permissions.require(
        actor=actor, bucket=bucket, role=permissions.SHARE_ROLE, action="link.create"
    )
    chosen = list(dict.fromkeys(keys or []))
    refusal = {"actor": actor, "action": "link.create", "bucket": bucket, "key": key}
    with audit.refusals(**refusal, errors=LinkError):
        validate_options(expires_at=expires_at, password=password, max_downloads=max_downloads)
        problem = link_scopes.target_problem(kind=kind, key=key, chosen=chosen)
        if problem:
            raise LinkError(problem)
    with audit.s3_call(actor=actor, action="link.create", bucket=bucket, key=key) as call:
        missing = link_scopes.target_missing(bucket=bucket, kind=kind, key=key, chosen=chosen)
        if missing:
            raise LinkError(missing, status=404)
        new = new_link(
            actor=actor,
            bucket=bucket,
            key=key,
            kind=kind,
            keys=chosen,
            expires_at=expires_at,
            password=password,
            max_downloads=max_downloads,
            notify_on_download=notify_on_download,
            remind_before_expiry=remind_before_expiry,
        )
        call.message = (
            f"Link {new.link.pk} until {expires_at:%Y-%m-%d %H:%M} UTC"
            f"{', with password' if password else ''}"
            f"{f', {max_downloads} downloads' if max_downloads else ''}."
        )
    return new


def record_link_event(
    actor: Actor, link: ShareLink, action: str, outcome: str, message: str
) -> None:
    """Record an event about one link, its message following the link's id."""
    audit.record(
        actor=actor,
        action=action,
        outcome=outcome,
        bucket=link.bucket,
        key=link.key,
        message=f"Link {link.id}{message}",
    )


def forget_deleted(*, actor: Actor, bucket: str, keys: list[str] | None = None) -> int:
    """Mark the links to these files (every file of the bucket when None) as "file deleted"."""
    links = ShareLink.objects.filter(bucket=bucket, file_deleted_at__isnull=True)
    now = timezone.now()
    if keys is None:
        marked = links.update(file_deleted_at=now)
    else:
        marked = sum(
            links.filter(key__in=keys[start : start + FORGET_BATCH]).update(file_deleted_at=now)
            for start in range(0, len(keys), FORGET_BATCH)
        )
    if marked:
        audit.record(
            actor=actor,
            action="link.file_deleted",
            outcome=Outcome.SUCCESS,
            bucket=bucket,
            key=keys[0] if keys and len(keys) == 1 else "",
            message=f"{marked} links marked: their file was deleted.",
        )
    return marked


def _require_owner(*, actor: Actor, link: ShareLink, action: str) -> None:
    user = actor.user
    if user is not None and user.is_active and (user.is_superuser or link.creator_id == user.pk):
        return
    record_link_event(actor, link, action, Outcome.DENIED, " belongs to someone else.")
    # Someone else's link is answered like a link that does not exist.
    raise Http404("No such link.")


def link_revoke(*, actor: Actor, link: ShareLink) -> bool:
    """Withdraw a link at once (owner or admin); return False when it was already withdrawn."""
    _require_owner(actor=actor, link=link, action="link.revoke")
    now = timezone.now()
    changed = ShareLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(revoked_at=now)
    link.refresh_from_db(fields=["revoked_at"])
    record_link_event(
        actor,
        link,
        "link.revoke",
        Outcome.SUCCESS,
        f" {'revoked' if changed else 'was already revoked'}.",
    )
    return bool(changed)


def link_extend(*, actor: Actor, link: ShareLink, expires_at: datetime.datetime) -> None:
    """Move a link's expiry (at most 7 days from now); a withdrawn link stays withdrawn."""
    _require_owner(actor=actor, link=link, action="link.extend")
    permissions.require(
        actor=actor, bucket=link.bucket, role=permissions.SHARE_ROLE, action="link.extend"
    )
    refusal = {"actor": actor, "action": "link.extend", "bucket": link.bucket, "key": link.key}
    with audit.refusals(**refusal, errors=LinkError):
        if link.revoked_at:
            raise LinkError("A withdrawn link cannot be extended; create a new one.", status=409)
        if link.file_deleted_at:
            raise LinkError(
                "The file of this link was deleted: there is nothing to extend.", status=409
            )
        problem = expiry_problem(expires_at)
        if problem:
            raise LinkError(problem)
    ShareLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(expires_at=expires_at)
    link.expires_at = expires_at
    record_link_event(
        actor,
        link,
        "link.extend",
        Outcome.SUCCESS,
        f" now expires {expires_at:%Y-%m-%d %H:%M} UTC.",
    )


def object_presign(*, actor: Actor, bucket: str, key: str, seconds: int) -> str:
    """Return a raw presigned URL (cannot be revoked or counted), valid up to 7 days."""
    permissions.require(
        actor=actor, bucket=bucket, role=permissions.PRESIGN_ROLE, action="object.presign"
    )
    refusal = {"actor": actor, "action": "object.presign", "bucket": bucket, "key": key}
    with audit.refusals(**refusal, errors=LinkError):
        if not 1 <= seconds <= MAX_LINK_SECONDS:
            raise LinkError("A presigned URL must last between 1 second and 7 days.")
    head_for_sharing(actor=actor, action="object.presign", bucket=bucket, key=key)
    url = s3.presigned_get(bucket, key, filename=key.rsplit("/", 1)[-1], seconds=seconds)
    audit.record(
        actor=actor,
        action="object.presign",
        outcome=Outcome.SUCCESS,
        bucket=bucket,
        key=key,
        message=f"Raw presigned URL valid {seconds} s handed out (cannot be revoked).",
    )
    return url


def link_of(*, actor: Actor, link_id: uuid.UUID | str) -> ShareLink:
    """Return a link its owner (or an admin) may change; 404 for anyone else."""
    link = selectors.links_with_status().filter(pk=link_id).first()
    if link is None:
        raise Http404("No such link.")
    _require_owner(actor=actor, link=link, action="link.view")
    return link
