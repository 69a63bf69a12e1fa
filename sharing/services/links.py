"""Share links: create, email, open, download, revoke, extend. Only the token's hash is stored;
a download passes every check, takes the counter atomically, then redirects to a 60 s URL."""

import datetime
import functools
import hashlib
import secrets
import uuid
from dataclasses import dataclass, replace

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core.cache import cache
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from sharing import audit, emails, permissions, s3
from sharing.audit import Actor
from sharing.models import BucketGrant, Outcome, Role, ShareLink
from sharing.services.link_counter import Claim, count_download

TOKEN_BYTES = 32  # 256 bits from secrets; DESIGN asks for at least 128
MAX_LINK_SECONDS = 7 * 24 * 3600  # SigV4's limit, kept for links too
DOWNLOAD_URL_SECONDS = 60
FILE_SEEN_SECONDS = 30  # how long S3's "the file exists" is trusted between page and download
MAX_DOWNLOAD_LIMIT = 100_000
MAX_PASSWORD_CHARS = 200
GONE_MESSAGES = {
    "revoked": "The person who shared this file has withdrawn the link.",
    "expired": "This link has expired.",
    "used up": "This link has been used as many times as it allows.",
    "disabled": "This link no longer works: the account that shared it can no longer share this file.",
    "missing": "The shared file no longer exists.",
}


class LinkError(Exception):
    """A share request that cannot be carried out as asked; the message says why."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


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


def _validate_options(
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


def _sender(user) -> str:
    return user.get_full_name() or user.get_username()


def _head_for_sharing(*, actor: Actor, action: str, bucket: str, key: str) -> s3.ObjectInfo:
    with audit.s3_call(actor=actor, action=action, bucket=bucket, key=key) as call:
        info = s3.head(bucket, key)
        if info is None:
            raise s3.S3Error(s3.MESSAGES["NoSuchKey"], status=404, code="NoSuchKey")
        call.message = f"{info.size} bytes."
    return info


def _new_link(
    *, actor: Actor, bucket: str, key: str, recipient_email: str = "", **options
) -> NewLink:
    password = options.pop("password")
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
) -> NewLink:
    """Create a link to one existing file; the raw token is returned once and never stored."""
    permissions.require(actor=actor, bucket=bucket, role=Role.READ, action="link.create")
    _validate_options(expires_at=expires_at, password=password, max_downloads=max_downloads)
    with audit.s3_call(actor=actor, action="link.create", bucket=bucket, key=key) as call:
        if s3.head(bucket, key) is None:
            raise s3.S3Error(s3.MESSAGES["NoSuchKey"], status=404, code="NoSuchKey")
        new = _new_link(
            actor=actor,
            bucket=bucket,
            key=key,
            expires_at=expires_at,
            password=password,
            max_downloads=max_downloads,
            notify_on_download=notify_on_download,
        )
        call.message = (
            f"Link {new.link.pk} until {expires_at:%Y-%m-%d %H:%M} UTC"
            f"{', with password' if password else ''}"
            f"{f', {max_downloads} downloads' if max_downloads else ''}."
        )
    return new


def _recipient(actor: Actor, recipient_email: str) -> Actor:
    if actor.user is not None:
        return actor
    return replace(actor, name=f"recipient {recipient_email}".strip()[:150])


def _find(*, actor: Actor, token: str, action: str) -> ShareLink:
    # Any grant of the creator on the bucket, directly or through a group (as in permissions.py),
    # fetched with the link: one query on the download path instead of two.
    creator_grant = BucketGrant.objects.filter(bucket=OuterRef("bucket")).filter(
        Q(user=OuterRef("creator")) | Q(group__user=OuterRef("creator"))
    )
    links = ShareLink.objects.select_related("creator").annotate(
        creator_has_grant=Exists(creator_grant)
    )
    try:
        # Looked up by hash through the unique index: equality on a digest leaks nothing.
        return links.get(token_hash=token_hash(token))
    except ShareLink.DoesNotExist:
        audit.record(
            actor=actor, action=action, outcome=Outcome.DENIED, message="No link has this token."
        )
        raise LinkNotFoundError from None


def _creator_may_read(link: ShareLink) -> bool:
    creator = link.creator
    if not creator.is_active:
        return False
    if creator.is_superuser:
        return True
    has_grant = getattr(link, "creator_has_grant", None)
    if has_grant is None:  # a link not fetched by _find
        return permissions.role_for(creator, link.bucket) is not None
    return has_grant


def _gone_reason(link: ShareLink) -> str | None:
    if link.revoked_at:
        return "revoked"
    if link.is_expired:
        return "expired"
    if link.is_exhausted:
        return "used up"
    if not _creator_may_read(link):
        return "disabled"
    return None


def _record_link(
    actor: Actor, link: "ShareLink | SeenLink", action: str, outcome: str, message: str
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


def _refuse(*, actor: Actor, link: ShareLink, action: str, reason: str) -> LinkGoneError:
    _record_link(actor, link, action, Outcome.DENIED, f": {reason}.")
    return LinkGoneError(reason)


def _usable(*, actor: Actor, token: str, action: str) -> tuple[Actor, ShareLink]:
    link = _find(actor=actor, token=token, action=action)
    actor = _recipient(actor, link.recipient_email)
    reason = _gone_reason(link)
    if reason:
        raise _refuse(actor=actor, link=link, action=action, reason=reason)
    return actor, link


def _file_exists(*, actor: Actor, link: ShareLink, action: str) -> s3.ObjectInfo | None:
    """Ask S3 whether the linked file still exists (audited), and remember a yes for a while."""
    with audit.s3_call(actor=actor, action=action, bucket=link.bucket, key=link.key) as call:
        info = s3.head(link.bucket, link.key)
        call.message = f"Link {link.pk}" + (": the file is gone." if info is None else ".")
    if info is not None:
        seen = SeenLink(str(link.pk), link.bucket, link.key, link.recipient_email)
        cache.set(_seen_key(link.token_hash), seen, timeout=FILE_SEEN_SECONDS)
    return info


@dataclass(frozen=True)
class SeenLink:
    """What the download fast path needs of a link whose file S3 has just confirmed."""

    id: str  # not a UUID: cached, and a str is quicker to unpickle
    bucket: str
    key: str
    recipient_email: str


def _seen_key(hashed: str) -> str:
    return f"link-file-seen:{hashed[:32]}"  # 128 bits name a link well enough here


def link_open(*, actor: Actor, token: str) -> LinkPage:
    """Return what the recipient page shows, after every check; 404 unknown, 410 unusable."""
    actor, link = _usable(actor=actor, token=token, action="link.open")
    info = _file_exists(actor=actor, link=link, action="link.open")
    if info is None:
        raise _refuse(actor=actor, link=link, action="link.open", reason="missing")
    return LinkPage(
        link=link,
        size=info.size,
        sender=_sender(link.creator),
        needs_password=bool(link.password_hash),
    )


def _throttle_keys(link: ShareLink, actor: Actor) -> tuple[str, str]:
    return f"link-password:link:{link.pk}", f"link-password:address:{actor.ip or 'unknown'}"


def _check_password(*, actor: Actor, link: ShareLink, password: str) -> None:
    # The page shown again with the error: no name or size before the password is right.
    page = LinkPage(link=link, size=0, sender=_sender(link.creator), needs_password=True)
    keys = _throttle_keys(link, actor)
    limit = settings.LINK_PASSWORD_ATTEMPTS
    if any((cache.get(name) or 0) >= limit for name in keys):
        _record_link(actor, link, "link.password", Outcome.DENIED, ": too many wrong passwords.")
        raise LinkPasswordError(
            "Too many wrong passwords. Wait a few minutes and try again.", status=429, page=page
        )
    if not password:
        raise LinkPasswordError("This link needs a password.", status=403, page=page)
    if check_password(password, link.password_hash):
        return
    for name in keys:
        cache.add(name, 0, timeout=settings.LINK_PASSWORD_WINDOW)
        try:
            cache.incr(name)
        except ValueError:  # expired between add and incr
            cache.set(name, 1, timeout=settings.LINK_PASSWORD_WINDOW)
    _record_link(actor, link, "link.password", Outcome.FAILURE, ": wrong password.")
    raise LinkPasswordError("Wrong password.", status=403, page=page)


def _take_download(link: ShareLink) -> bool:
    """Count one download if the link still allows it; one conditional UPDATE, so never over."""
    now = timezone.now()
    allowed = ShareLink.objects.filter(pk=link.pk, revoked_at__isnull=True, expires_at__gt=now)
    allowed = allowed.filter(Q(max_downloads__isnull=True) | Q(downloads__lt=F("max_downloads")))
    return allowed.update(downloads=F("downloads") + 1, last_opened_at=now) == 1


def _download_event(actor: Actor, link: "ShareLink | SeenLink") -> audit.Event:
    message = f"Link {link.id}: download counted, 60 s URL handed out."
    return audit.Event(actor, "link.download", Outcome.SUCCESS, link.bucket, link.key, message)


def _quick_download(*, actor: Actor, token: str) -> str | None:
    """Count a download of a link whose page was just shown, in one statement; None otherwise."""
    hashed = token_hash(token)
    seen = cache.get(_seen_key(hashed))
    if seen is None:
        return None
    url = s3.presigned_get(
        seen.bucket, seen.key, filename=seen.key.rsplit("/", 1)[-1], seconds=DOWNLOAD_URL_SECONDS
    )
    event = _download_event(_recipient(actor, seen.recipient_email), seen)
    claim = Claim(link_id=seen.id, token_hash=hashed, event=event)
    if not count_download(claim):
        return None  # anything unusual: the full path finds and records the reason
    return url


def link_download(*, actor: Actor, token: str, password: str = "") -> str:
    """Check everything, count the download, and return a 60-second URL that saves the file."""
    if not password:
        url = _quick_download(actor=actor, token=token)
        if url:
            return url
    actor, link = _usable(actor=actor, token=token, action="link.download")
    if link.password_hash:
        _check_password(actor=actor, link=link, password=password)
    # The page the recipient clicked on asked S3 moments ago; ask again only when that is old.
    if not cache.get(_seen_key(link.token_hash)) and not _file_exists(
        actor=actor, link=link, action="link.download"
    ):
        raise _refuse(actor=actor, link=link, action="link.download", reason="missing")
    url = s3.presigned_get(
        link.bucket, link.key, filename=link.file_name, seconds=DOWNLOAD_URL_SECONDS
    )
    # Counter and audit row commit together: no counted download without its row, nor the reverse.
    with transaction.atomic():
        taken = _take_download(link)
        if taken:
            audit.record_many([_download_event(actor, link)])
    if not taken:
        link.refresh_from_db()
        reason = _gone_reason(link) or "used up"
        raise _refuse(actor=actor, link=link, action="link.download", reason=reason)
    if link.notify_on_download and link.notified_at is None:
        _notify_first_download(actor=actor, link=link)
    return url


def _notify_first_download(*, actor: Actor, link: ShareLink) -> None:
    now = timezone.now()
    claimed = ShareLink.objects.filter(pk=link.pk, notified_at__isnull=True).update(notified_at=now)
    if not claimed or not link.creator.email:
        return  # another request was first, or the creator has no address
    link.notified_at = link.last_opened_at = now
    transaction.on_commit(functools.partial(_send_notify, actor=actor, link=link))


def _send_notify(*, actor: Actor, link: ShareLink) -> None:
    email = emails.notify_email(link=link, client_ip=actor.ip or "", user_agent=actor.user_agent)
    outcome, detail = Outcome.SUCCESS, ""
    try:
        email.send()
    except Exception as error:  # SMTP fails in many ways; each failure is recorded
        outcome, detail = Outcome.FAILURE, f" failed ({type(error).__name__})"
    _record_link(
        actor, link, "link.notify", outcome, f": first download reported to its creator{detail}."
    )


def _require_owner(*, actor: Actor, link: ShareLink, action: str) -> None:
    user = actor.user
    if user is not None and user.is_active and (user.is_superuser or link.creator_id == user.pk):
        return
    _record_link(actor, link, action, Outcome.DENIED, " belongs to someone else.")
    # Someone else's link is answered like a link that does not exist.
    raise Http404("No such link.")


def link_revoke(*, actor: Actor, link: ShareLink) -> bool:
    """Withdraw a link at once (owner or admin); return False when it was already withdrawn."""
    _require_owner(actor=actor, link=link, action="link.revoke")
    now = timezone.now()
    changed = ShareLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(revoked_at=now)
    link.refresh_from_db(fields=["revoked_at"])
    _record_link(
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
    permissions.require(actor=actor, bucket=link.bucket, role=Role.READ, action="link.extend")
    if link.revoked_at:
        raise LinkError("A withdrawn link cannot be extended; create a new one.", status=409)
    problem = expiry_problem(expires_at)
    if problem:
        raise LinkError(problem)
    ShareLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(expires_at=expires_at)
    link.expires_at = expires_at
    _record_link(
        actor,
        link,
        "link.extend",
        Outcome.SUCCESS,
        f" now expires {expires_at:%Y-%m-%d %H:%M} UTC.",
    )


def object_presign(*, actor: Actor, bucket: str, key: str, seconds: int) -> str:
    """Return a raw presigned URL (cannot be revoked or counted), valid up to 7 days."""
    permissions.require(actor=actor, bucket=bucket, role=Role.READ, action="object.presign")
    if not 1 <= seconds <= MAX_LINK_SECONDS:
        raise LinkError("A presigned URL must last between 1 second and 7 days.")
    _head_for_sharing(actor=actor, action="object.presign", bucket=bucket, key=key)
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


def links_of(*, actor: Actor) -> list[ShareLink]:
    """Return every link the actor made, newest first."""
    return list(ShareLink.objects.filter(creator=actor.user).select_related("creator"))


def links_for_object(*, actor: Actor, bucket: str, key: str) -> list[ShareLink]:
    """Return the links to one file that the actor may see (their own; all for an admin)."""
    links = ShareLink.objects.filter(bucket=bucket, key=key).select_related("creator")
    if not actor.user.is_superuser:
        links = links.filter(creator=actor.user)
    return list(links[:100])


def link_of(*, actor: Actor, link_id: uuid.UUID | str) -> ShareLink:
    """Return a link its owner (or an admin) may change; 404 for anyone else."""
    link = ShareLink.objects.select_related("creator").filter(pk=link_id).first()
    if link is None:
        raise Http404("No such link.")
    _require_owner(actor=actor, link=link, action="link.view")
    return link
