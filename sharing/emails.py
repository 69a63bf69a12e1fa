"""Share-link emails: built from templates, links from SITE_URL, headers free of line breaks."""

import re
import unicodedata

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.template.loader import render_to_string
from django.urls import reverse

from sharing.models import ShareLink
from sharing.services import link_scopes

SUBJECT_MAX = 200
_SPACES = re.compile(r"\s+")


def header_text(value: str) -> str:
    """Return text fit for a mail header: control and line-break characters become spaces."""
    cleaned = "".join(
        " " if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") else char for char in value
    )
    return _SPACES.sub(" ", cleaned).strip()


def address_problem(address: str) -> str | None:
    """Return why an email address is refused (line breaks, bad form), or None when it is fine."""
    if any(char in address for char in "\r\n\x00") or any(
        unicodedata.category(char) in ("Cc", "Zl", "Zp") for char in address
    ):
        return f"“{header_text(address)}” contains a line break or a control character."
    try:
        validate_email(address)
    except ValidationError:
        return f"“{address}” is not a valid email address."
    return None


def _reply_to(sender_email: str) -> list[str]:
    return [sender_email] if sender_email and address_problem(sender_email) is None else []


def _email(
    name: str, context: dict, *, to: str, reply_to: list[str] | None = None
) -> EmailMultiAlternatives:
    """Return the email made of templates sharing/emails/<name>-{subject,body.txt,body.html}."""
    subject = render_to_string(f"sharing/emails/{name}-subject.txt", context)
    email = EmailMultiAlternatives(
        subject=header_text(subject)[:SUBJECT_MAX],
        body=render_to_string(f"sharing/emails/{name}-body.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        reply_to=reply_to or [],
    )
    email.attach_alternative(
        render_to_string(f"sharing/emails/{name}-body.html", context), "text/html"
    )
    return email


def share_email(
    *,
    link: ShareLink,
    url: str,
    size: int | None,  # None for a folder or a selection
    sender_name: str,
    sender_email: str,
    message: str,
) -> EmailMultiAlternatives:
    """Return the email that hands one recipient their own link to a file."""
    context = {
        "link": link,
        "url": url,
        "size": size,
        "file_name": link.file_name,
        "subject_file_name": header_text(link.file_name)[:100],
        "what": link_scopes.link_what(link),
        "what_label": link_scopes.link_label(link),
        "sender_name": header_text(sender_name),
        "sender_email": sender_email,
        "message": message,
        "site_url": settings.SITE_URL,
        "has_password": bool(link.password_hash),
    }
    return _email("share", context, to=link.recipient_email, reply_to=_reply_to(sender_email))


def notify_email(*, link: ShareLink, client_ip: str, user_agent: str) -> EmailMultiAlternatives:
    """Return the email that tells a link's creator the file was downloaded for the first time."""
    context = {
        "link": link,
        "file_name": link.file_name,
        "subject_file_name": header_text(link.file_name)[:100],
        "client_ip": client_ip or "unknown",
        "user_agent": header_text(user_agent)[:200],
        "links_url": settings.SITE_URL + reverse("link_list"),
        "site_url": settings.SITE_URL,
    }
    return _email("notify", context, to=link.creator.email)


def remind_email(*, creator, rows: list[dict]) -> EmailMultiAlternatives:
    """Return the email that lists a creator's links expiring soon with nothing downloaded yet."""
    context = {
        "rows": rows,
        "count": len(rows),
        "links_url": settings.SITE_URL + reverse("link_list"),
        "site_url": settings.SITE_URL,
    }
    return _email("remind", context, to=creator.email)


def file_request_email(
    *, request, visit, files: list, owner_name: str, folder_url: str
) -> EmailMultiAlternatives:
    """Return the email that lists what one visit of a file request stored, for its creator."""
    context = {
        "request": request,
        "visit": visit,
        "files": files,
        "subject_title": header_text(request.title)[:100],
        "owner_name": header_text(owner_name),
        "client_ip": visit.client_ip or "unknown",
        "user_agent": header_text(visit.user_agent)[:200],
        "folder_url": folder_url,
        "site_url": settings.SITE_URL,
    }
    return _email("file_request", context, to=request.creator.email)
