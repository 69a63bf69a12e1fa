"""Share links by email: one link per recipient, sent after the transaction commits, audited."""

import datetime
import functools
import logging

from django.conf import settings
from django.db import transaction

from sharing import audit, emails, permissions
from sharing.audit import Actor
from sharing.models import Outcome
from sharing.services.links import (
    LinkError,
    NewLink,
    head_for_sharing,
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
) -> list[NewLink]:
    """Create one link per recipient and email each their own; the mails leave after commit."""
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
    info = head_for_sharing(actor=actor, action="link.email", bucket=bucket, key=key)
    created = []
    with transaction.atomic():
        for address in recipients:
            new = new_link(
                actor=actor,
                bucket=bucket,
                key=key,
                recipient_email=address,
                expires_at=expires_at,
                password=password,
                max_downloads=max_downloads,
                notify_on_download=notify_on_download,
            )
            created.append(new)
            transaction.on_commit(
                functools.partial(_send_share, actor=actor, new=new, size=info.size, note=message)
            )
    return created


def _send_share(*, actor: Actor, new: NewLink, size: int, note: str) -> None:
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
