"""Share links by email: one link per recipient, sent after the transaction commits, audited."""

import datetime
import functools
import logging
import uuid

from django.conf import settings
from django.db import transaction

from sharing import audit, emails, permissions
from sharing.audit import Actor
from sharing.models import LinkKind, Outcome
from sharing.services import link_scopes
from sharing.services.links import (
    LinkError,
    NewLink,
    new_link,
    sender_name,
    validate_options,
)

MAX_MESSAGE_CHARS = 2000
log = logging.getLogger(__name__)


def recipients_problem(recipients: list[str]) -> str | None:
    """Return why a recipient list is refused, or None."""
    if not recipients:
        return "Give at least one recipient's email address."
    if len(recipients) > settings.LINK_EMAIL_MAX_RECIPIENTS:
        return f"At most {settings.LINK_EMAIL_MAX_RECIPIENTS} recipients at once."
    for address in recipients:
        problem = emails.address_problem(address)
        if problem:
            return problem
    return None


def links_email(
    *,
    actor: Actor,
    bucket: str,
    key: str,
    recipients: list[str],
    message: str = "",
    expires_at: datetime.datetime,
    password: str = "",
    max_downloads: int | None = None,
    notify_on_download: bool = False,
    remind_before_expiry: bool = False,
    kind: str = LinkKind.FILE,
    keys: list[str] | None = None,
) -> list[NewLink]:
    """Create one link per recipient (to a file, folder or selection) and email each their own;
    the mails leave after commit."""
    permissions.require(
        actor=actor, bucket=bucket, role=permissions.SHARE_ROLE, action="link.email"
    )
    recipients = list(dict.fromkeys(address.strip() for address in recipients if address.strip()))
    refusal = {"actor": actor, "action": "link.email", "bucket": bucket, "key": key}
    with audit.refusals(**refusal, errors=LinkError):
        problem = recipients_problem(recipients)
        if problem:
            raise LinkError(problem)
        if len(message) > MAX_MESSAGE_CHARS:
            raise LinkError(f"The message must have at most {MAX_MESSAGE_CHARS} characters.")
        validate_options(expires_at=expires_at, password=password, max_downloads=max_downloads)
    target = link_scopes.target_check(
        actor=actor, action="link.email", bucket=bucket, kind=kind, key=key,
        chosen=list(dict.fromkeys(keys or [])),
    )  # fmt: skip
    created = []
    batch = uuid.uuid4()  # the links of one sending, shown together to their creator
    with transaction.atomic():
        for address in recipients:
            new = new_link(
                actor=actor,
                bucket=bucket,
                key=key,
                kind=kind,
                keys=target.keys,
                recipient_email=address,
                expires_at=expires_at,
                password=password,
                max_downloads=max_downloads,
                notify_on_download=notify_on_download,
                remind_before_expiry=remind_before_expiry,
                batch=batch,
            )
            created.append(new)
            transaction.on_commit(
                functools.partial(_send_share, actor=actor, new=new, size=target.size, note=message)
            )
    return created


def _send_share(*, actor: Actor, new: NewLink, size: int | None, note: str) -> None:
    link = new.link
    email = emails.share_email(
        link=link,
        url=new.url,
        size=size,
        sender_name=sender_name(actor.user),
        sender_email=actor.user.email,
        message=note,
    )
    outcome, detail = Outcome.SUCCESS, ""
    try:
        email.send()
    except Exception as error:  # SMTP fails in many ways; each failure is recorded
        log.warning("share email for link %s failed: %s", link.pk, type(error).__name__)
        outcome, detail = Outcome.FAILURE, f" failed ({type(error).__name__})"
    audit.record(
        actor=actor,
        action="link.email",
        outcome=outcome,
        bucket=link.bucket,
        key=link.key,
        message=f"Link {link.pk} emailed to {link.recipient_email}{detail}.",
    )
