"""Share links seen by their recipients: the page, the password, the download and its count.

Everything here starts from a token in a URL, without login. Whether a link may be used is asked of
ShareLink.objects (with_status, usable) and nowhere else; a download is counted by one conditional
update of a usable link, in one transaction with its audit row, and gets a 60-second URL.
"""

import functools
from dataclasses import replace

from django.contrib.auth.hashers import check_password
from django.core.cache import caches
from django.db import transaction
from django.utils import timezone

from sharing import audit, emails, s3
from sharing.audit import Actor
from sharing.models import LinkKind, LinkStatus, Outcome, ShareLink
from sharing.services import link_scopes, link_tracking, password_attempts
from sharing.services.links import (
    LinkError,
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


def recipient_actor(actor: Actor, recipient_email: str) -> Actor:
    """Return the actor as the audit trail names a link's recipient (a visitor: by the link's email)."""
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


def _seen_key(link: ShareLink, key: str) -> str:
    return f"link-file-seen:{link.pk}:{token_hash(key)}"


def _file_exists(
    *, actor: Actor, link: ShareLink, action: str, key: str | None = None
) -> s3.ObjectInfo | None:
    """Ask S3 whether the linked file still exists (audited), and remember a yes for a while."""
    key = link.key if key is None else key
    with audit.s3_call(actor=actor, action=action, bucket=link.bucket, key=key) as call:
        info = s3.head(link.bucket, key)
        call.message = f"Link {link.pk}" + (": the file is gone." if info is None else ".")
    if info is not None:
        caches["local"].set(_seen_key(link, key), True, timeout=FILE_SEEN_SECONDS)
    return info


def _file_gone(*, actor: Actor, link: ShareLink, action: str) -> LinkError:
    if link.kind != LinkKind.FILE:
        # A folder is shared as it is at each visit: a file gone from it is not the link's end.
        record_link_event(actor, link, action, Outcome.DENIED, ": that file is gone.")
        return LinkError("That file is no longer in the shared folder.", status=404)
    # Deleted outside the portal (or before links were marked): every link to it is dead now,
    # and says so in My links, even if a new file later takes the name.
    forget_deleted(actor=actor, bucket=link.bucket, keys=[link.key])
    return _refuse(actor=actor, link=link, action=action, reason=LinkStatus.FILE_DELETED)


def _scoped(*, actor: Actor, link: ShareLink, action: str, relative: str) -> str:
    """Return the full key a recipient names (link_scopes' rule), recording a refusal."""
    try:
        return link_scopes.scope_key(link, relative)
    except LinkError:
        record_link_event(actor, link, action, Outcome.DENIED, ": outside the link's scope.")
        raise


def link_open(*, actor: Actor, token: str) -> LinkPage:
    """Return what the recipient page shows, after every check; 404 unknown, 410 unusable."""
    link = _find(actor=actor, token=token, action="link.open")
    actor = recipient_actor(actor, link.recipient_email)
    _require_usable(actor=actor, link=link, action="link.open")
    size, content_type = 0, ""  # a folder's or selection's files are listed by folder_links
    if link.kind == LinkKind.FILE:
        info = _file_exists(actor=actor, link=link, action="link.open")
        if info is None:
            raise _file_gone(actor=actor, link=link, action="link.open")
        size, content_type = info.size, info.content_type
    _count_open(actor=actor, link=link)
    return LinkPage(
        link=link,
        size=size,
        sender=sender_name(link.creator),
        needs_password=bool(link.password_hash),
        content_type=content_type,
    )


def _count_open(*, actor: Actor, link: ShareLink) -> None:
    # One UPDATE, so that openings at the same moment are all counted; with its audit row.
    with transaction.atomic():
        ShareLink.objects.filter(pk=link.pk).update(**link_tracking.open_counted(timezone.now()))
        record_link_event(actor, link, "link.open", Outcome.SUCCESS, ": page opened.")


def _check_password(*, actor: Actor, link: ShareLink, password: str) -> None:
    # The page shown again with the error: no name or size before the password is right.
    page = LinkPage(link=link, size=0, sender=sender_name(link.creator), needs_password=True)
    keys = password_attempts.attempt_keys(scope="link", target=f"link:{link.pk}", actor=actor)
    if password_attempts.attempts_exhausted(keys):
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
    password_attempts.attempt_failed(keys)
    record_link_event(actor, link, "link.password", Outcome.FAILURE, ": wrong password.")
    raise LinkPasswordError("Wrong password.", status=403, page=page)


def _download_event(actor: Actor, link: ShareLink, key: str, what: str) -> audit.Event:
    message = f"Link {link.id}: {what}."
    return audit.Event(actor, "link.download", Outcome.SUCCESS, link.bucket, key, message)


def link_download(
    *, actor: Actor, token: str, password: str = "", relative: str = "", unlocked: bool = False
) -> str:
    """Check everything, count the download, and return a 60-second URL that saves the file;
    `relative` names a file of a folder or selection link, `unlocked` a password given before."""
    action = "link.download"
    # Usually the recipient page has just shown the link and asked S3 for its file; then the
    # conditional update below is the one check of the link. Otherwise it is checked first, so
    # that a password or S3 is never asked about a link that cannot be used.
    link = _find(actor=actor, token=token, action=action, with_status=False)
    actor = recipient_actor(actor, link.recipient_email)
    key = _scoped(actor=actor, link=link, action=action, relative=relative)
    file_seen = caches["local"].get(_seen_key(link, key))
    if link.password_hash or not file_seen:
        link.status = _status_of(link)
        _require_usable(actor=actor, link=link, action=action)
    if link.password_hash and not unlocked:
        _check_password(actor=actor, link=link, password=password)
    if not file_seen and not _file_exists(actor=actor, link=link, action=action, key=key):
        raise _file_gone(actor=actor, link=link, action=action)
    name = key.rsplit("/", 1)[-1]
    url = s3.presigned_get(link.bucket, key, filename=name, seconds=DOWNLOAD_URL_SECONDS)
    link_count_download(
        actor=actor, link=link, key=key, what="download counted, 60 s URL handed out"
    )
    return url


def link_checked(
    *, actor: Actor, token: str, action: str, password: str = "", unlocked: bool = False
) -> tuple[ShareLink, Actor]:
    """Return a link usable now and its recipient as actor, its password checked; or raise."""
    link = _find(actor=actor, token=token, action=action)
    actor = recipient_actor(actor, link.recipient_email)
    _require_usable(actor=actor, link=link, action=action)
    if link.password_hash and not unlocked:
        _check_password(actor=actor, link=link, password=password)
    return link, actor


def link_count_download(*, actor: Actor, link: ShareLink, key: str, what: str) -> None:
    """Count one download (a file, or one "Download all") if the link is still usable; or raise."""
    now = timezone.now()
    # Counted only if the link is still usable when it is counted, and with its audit row in
    # one transaction: the limit holds however many downloads run at once.
    with transaction.atomic():
        counted = ShareLink.objects.usable(now).filter(pk=link.pk)
        counted = counted.update(**link_tracking.download_counted(now))
        if counted:
            audit.record_many([_download_event(actor, link, key, what)])
    if not counted:
        status = _status_of(link)
        reason = LinkStatus.USED_UP if status == LinkStatus.ACTIVE else status
        raise _refuse(actor=actor, link=link, action="link.download", reason=reason)
    if link.notify_on_download and link.notified_at is None:
        _notify_first_download(actor=actor, link=link)


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
