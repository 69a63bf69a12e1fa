"""What each recipient did with their link: not opened, opened, downloaded; when, how many times.

`recipient_state` is the one reading of the tracking fields (every page and email asks it);
`open_counted` and `download_counted` are the one writing of them, as fields of an UPDATE so that
a count is one statement however many requests run at once; `NOT_DOWNLOADED` is the same rule
for a query.
"""

import datetime
from dataclasses import dataclass

from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from sharing.models import ShareLink

NOT_OPENED = "not opened"
OPENED = "opened"
DOWNLOADED = "downloaded"

# Links made before tracking began count downloads without a first download time.
NOT_DOWNLOADED = Q(downloads=0, first_downloaded_at__isnull=True)


@dataclass(frozen=True)
class RecipientState:
    """Where one recipient is: `state`, since when (`first`, `last`) and how many `times`."""

    state: str
    first: datetime.datetime | None
    last: datetime.datetime | None
    times: int
    opens: int
    downloads: int

    @property
    def summary(self) -> str:
        if self.state == NOT_OPENED:
            return NOT_OPENED
        return f"{self.state} {self.times} {'time' if self.times == 1 else 'times'}"


def recipient_state(link: ShareLink) -> RecipientState:
    """Return what the recipient of a link did with it, as far as the portal can tell."""
    counts = {"opens": link.opens, "downloads": link.downloads}
    if link.downloads or link.first_downloaded_at:
        first = link.first_downloaded_at or link.last_downloaded_at or link.last_opened_at
        last = link.last_downloaded_at or link.last_opened_at
        return RecipientState(DOWNLOADED, first, last, link.downloads, **counts)
    if link.opens or link.first_opened_at:
        return RecipientState(OPENED, link.first_opened_at, None, link.opens, **counts)
    return RecipientState(NOT_OPENED, None, None, 0, **counts)


def open_counted(now: datetime.datetime) -> dict:
    """Return the UPDATE fields that count one opening of a link's page."""
    return {"opens": F("opens") + 1, "first_opened_at": Coalesce(F("first_opened_at"), Value(now))}


def download_counted(now: datetime.datetime) -> dict:
    """Return the UPDATE fields that count one download (with the last-seen time of old)."""
    return {
        "downloads": F("downloads") + 1,
        "last_opened_at": now,
        "first_downloaded_at": Coalesce(F("first_downloaded_at"), Value(now)),
        "last_downloaded_at": now,
    }


def batch_links(*, link: ShareLink) -> list[ShareLink]:
    """Return the links emailed together with this one (itself included), by recipient."""
    if link.batch is None:
        return [link]
    links = ShareLink.objects.with_status(timezone.now()).filter(
        batch=link.batch, creator_id=link.creator_id
    )
    return list(links.order_by("recipient_email", "created_at"))
