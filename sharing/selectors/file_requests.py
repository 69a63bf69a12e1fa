"""Reads of file requests for pages: the creator's list with each request's status."""

from django.utils import timezone

from sharing.audit import Actor
from sharing.models import FileRequest


def file_requests_of(*, actor: Actor) -> list[FileRequest]:
    """Return every file request the actor made, newest first, each with its status."""
    requests = FileRequest.objects.with_status(timezone.now()).filter(creator=actor.user)
    return list(requests[:200])
