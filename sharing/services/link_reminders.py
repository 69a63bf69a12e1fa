"""Reminders to creators: a day before a link expires, if its file has not been downloaded yet.

Each due link is claimed by one conditional UPDATE (reminded_at set where it is still null), so
that two runners never remind of the same link; each creator gets one email listing their links,
sent after the claims commit, and each link reminded of gets its `link.remind` audit row.
"""

import datetime
import functools
import logging
from itertools import groupby

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from sharing import emails
from sharing.audit import Actor
from sharing.models import Outcome, ShareLink
from sharing.services import link_tracking
from sharing.services.links import record_link_event

ACTOR_NAME = "links_remind"
REMIND_BEFORE = datetime.timedelta(hours=24)
# A link made for a day or less would be due the moment it is made: its creator gets an hour
# to see it used before being reminded.
MIN_AGE = datetime.timedelta(hours=1)
log = logging.getLogger(__name__)


def reminders_due(*, now: datetime.datetime):
    """Return the links whose creator asked to be reminded and should be now."""
    return (
        ShareLink.objects.usable(now)
        .filter(link_tracking.NOT_DOWNLOADED)
        .filter(
            remind_before_expiry=True,
            reminded_at__isnull=True,
            expires_at__lte=now + REMIND_BEFORE,
            created_at__lte=now - MIN_AGE,
        )
    )


def reminders_send(*, now: datetime.datetime) -> int:
    """Claim the due links, email each creator once about theirs after commit; return how many."""
    actor = Actor.system(ACTOR_NAME)
    claimed = []
    with transaction.atomic():
        for pk in reminders_due(now=now).values_list("pk", flat=True):
            # The whole rule again in the UPDATE: a link revoked or downloaded meanwhile, or
            # claimed by another runner, is left alone.
            if reminders_due(now=now).filter(pk=pk).update(reminded_at=now):
                claimed.append(pk)
        links = ShareLink.objects.filter(pk__in=claimed).select_related("creator")
        links = sorted(links, key=lambda link: (link.creator_id, link.expires_at))
        for _, own in groupby(links, key=lambda link: link.creator_id):
            own = list(own)
            transaction.on_commit(functools.partial(_send, actor=actor, links=own))
    return len(claimed)


def _send(*, actor: Actor, links: list[ShareLink]) -> None:
    creator = links[0].creator
    outcome, detail = Outcome.SUCCESS, ""
    if not creator.email:
        outcome, detail = Outcome.FAILURE, " not sent: the creator has no email address"
    else:
        rows = [
            {
                "link": link,
                "state": link_tracking.recipient_state(link),
                "url": settings.SITE_URL + reverse("link_detail", args=[link.pk]),
            }
            for link in links
        ]
        try:
            emails.remind_email(creator=creator, rows=rows).send()
        except Exception as error:  # SMTP fails in many ways; each failure is recorded
            log.warning("reminder to user %s failed: %s", creator.pk, type(error).__name__)
            outcome, detail = Outcome.FAILURE, f" failed ({type(error).__name__})"
    for link in links:
        record_link_event(
            actor, link, "link.remind", outcome, f": expiry reminder to its creator{detail}."
        )
