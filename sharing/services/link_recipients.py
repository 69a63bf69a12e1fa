"""Share links seen by their recipients: the page, the password, the download and its count.

Everything here starts from a token in a URL, without login. Whether a link may be used is asked of
ShareLink.objects (with_status, usable) and nowhere else; a download is counted by one conditional
update of a usable link, in one transaction with its audit row, and gets a 60-second URL.
"""

import functools
from dataclasses import replace

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.core.cache import cache, caches
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from sharing import audit, emails, s3
from sharing.audit import Actor
from sharing.models import LinkStatus, Outcome, ShareLink
from sharing.services.links import (
    LinkGoneError,
    LinkNotFoundError,
    LinkPage,
    LinkPasswordError,
    forget_deleted,
    record_link_event,
    sender_name,
    token_hash,
)

DOWNLOAD_URL_SECONDS = 60
FILE_SEEN_SECONDS = 30  # how long S3's "the file exists" is trusted between page and download


def _recipient(actor: Actor, recipient_email: str) -> Actor:
    if actor.user is not None:
        return actor
    return replace(actor, name=f"recipient {recipient_email}".strip()[:150])


def _find(*, actor: Actor, token: str, action: str, with_status: bool = True) -> ShareLink:
    links = ShareLink.objects.select_related("creator")
    if with_status:
        links = links.with_status(timezone.now())
    try:
        # Looked up by hash through the unique index: equality on a digest leaks nothing.
        return links.get(token_hash=token_hash(token))
    except ShareLink.DoesNotExist:
        audit.record(
            actor=actor, action=action, outcome=Outcome.DENIED, message="No link has this token."
        )
        raise LinkNotFoundError from None


def _refuse(*, actor: Actor, link: ShareLink, action: str, reason: str) -> LinkGoneError:
    record_link_event(actor, link, action, Outcome.DENIED, f": {reason}.")
    return LinkGoneError(reason)


def _require_usable(*, actor: Actor, link: ShareLink, action: str) -> None:
    if link.status != LinkStatus.ACTIVE:
        raise _refuse(actor=actor, link=link, action=action, reason=link.status)


def _seen_key(link: ShareLink) -> str:
    return f"link-file-seen:{link.pk}"


def _file_exists(*, actor: Actor, link: ShareLink, action: str) -> s3.ObjectInfo | None:
    """Ask S3 whether the linked file still exists (audited), and remember a yes for a while."""
    with audit.s3_call(actor=actor, action=action, bucket=link.bucket, key=link.key) as call:
        info = s3.head(link.bucket, link.key)
        call.message = f"Link {link.pk}" + (": the file is gone." if info is None else ".")
    if info is not None:
        caches["local"].set(_seen_key(link), True, timeout=FILE_SEEN_SECONDS)
    return info


def _file_gone(*, actor: Actor, link: ShareLink, action: str) -> LinkGoneError:
    # Deleted outside the portal (or before links were marked): every link to it is dead now,
    # and says so in My links, even if a new file later takes the name.
    forget_deleted(actor=actor, bucket=link.bucket, keys=[link.key])
    return _refuse(actor=actor, link=link, action=action, reason=LinkStatus.FILE_DELETED)


def link_open(*, actor: Actor, token: str) -> LinkPage:
    """Return what the recipient page shows, after every check; 404 unknown, 410 unusable."""
    link = _find(actor=actor, token=token, action="link.open")
    actor = _recipient(actor, link.recipient_email)
    _require_usable(actor=actor, link=link, action="link.open")
    info = _file_exists(actor=actor, link=link, action="link.open")
    if info is None:
        raise _file_gone(actor=actor, link=link, action="link.open")
    return LinkPage(
        link=link,
        size=info.size,
        sender=sender_name(link.creator),
        needs_password=bool(link.password_hash),
    )


def _throttle_keys(link: ShareLink, actor: Actor) -> tuple[str, str]:
    return f"link-password:link:{link.pk}", f"link-password:address:{actor.ip or 'unknown'}"


def _check_password(*, actor: Actor, link: ShareLink, password: str) -> None:
    # The page shown again with the error: no name or size before the password is right.
    page = LinkPage(link=link, size=0, sender=sender_name(link.creator), needs_password=True)
    keys = _throttle_keys(link, actor)
    limit = settings.LINK_PASSWORD_ATTEMPTS
    if any((cache.get(name) or 0) >= limit for name in keys):
        record_link_event(
            actor, link, "link.password", Outcome.DENIED, ": too many wrong passwords."
        )
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
    record_link_event(actor, link, "link.password", Outcome.FAILURE, ": wrong password.")
    raise LinkPasswordError("Wrong password.", status=403, page=page)


def _download_event(actor: Actor, link: ShareLink) -> audit.Event:
    message = f"Link {link.id}: download counted, 60 s URL handed out."
    return audit.Event(actor, "link.download", Outcome.SUCCESS, link.bucket, link.key, message)


def link_download(*, actor: Actor, token: str, password: str = "") -> str:
    """Check everything, count the download, and return a 60-second URL that saves the file."""
    action = "link.download"
    # Usually the recipient page has just shown the link and asked S3 for its file; then the
    # conditional update below is the one check of the link. Otherwise it is checked first, so
    # that a password or S3 is never asked about a link that cannot be used.
    link = _find(actor=actor, token=token, action=action, with_status=False)
    actor = _recipient(actor, link.recipient_email)
    file_seen = caches["local"].get(_seen_key(link))
    if link.password_hash or not file_seen:
        link.status = _status_of(link)
        _require_usable(actor=actor, link=link, action=action)
    if link.password_hash:
        _check_password(actor=actor, link=link, password=password)
    if not file_seen and not _file_exists(actor=actor, link=link, action=action):
        raise _file_gone(actor=actor, link=link, action=action)
    url = s3.presigned_get(
        link.bucket, link.key, filename=link.file_name, seconds=DOWNLOAD_URL_SECONDS
    )
    now = timezone.now()
    # Counted only if the link is still usable when it is counted, and with its audit row in
    # one transaction: the limit holds however many downloads run at once.
    with transaction.atomic():
        counted = ShareLink.objects.usable(now).filter(pk=link.pk)
        counted = counted.update(downloads=F("downloads") + 1, last_opened_at=now)
        if counted:
            audit.record_many([_download_event(actor, link)])
    if not counted:
        status = _status_of(link)
        reason = LinkStatus.USED_UP if status == LinkStatus.ACTIVE else status
        raise _refuse(actor=actor, link=link, action=action, reason=reason)
    if link.notify_on_download and link.notified_at is None:
        _notify_first_download(actor=actor, link=link)
    return url


def _status_of(link: ShareLink) -> str:
    statuses = ShareLink.objects.with_status(timezone.now()).filter(pk=link.pk)
    return next(iter(statuses.values_list("status", flat=True)), LinkStatus.REVOKED)


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
    record_link_event(
        actor, link, "link.notify", outcome, f": first download reported to its creator{detail}."
    )
