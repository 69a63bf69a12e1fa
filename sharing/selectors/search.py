"""Search of a whole bucket through its index (sharing/services/search_index.py keeps it)."""

import datetime
import functools
from dataclasses import dataclass
from typing import TypedDict
from urllib.parse import quote

from django.db import connection
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL
from django.urls import reverse
from django.utils import timezone

from sharing import permissions
from sharing.audit import Actor
from sharing.models import BucketIndex, FileKind, IndexedObject, IndexState, Role
from sharing.selectors import _size_texts
from sharing.templatetags.dates import when_html

PAGE_SIZE = 50
# The substring index works on trigrams: a query of 1 or 2 characters cannot use it, so it is
# matched plainly, name by name, over at most SHORT_QUERY_SCAN names per page (in name order;
# the page then offers to search the names after them).
TRIGRAM = 3
SHORT_QUERY_SCAN = 20_000
SQLITE_TRIGRAMS = "SELECT rowid FROM sharing_indexedobject_trigram WHERE key MATCH %s"
KIND_LABELS = dict(FileKind.choices)


@dataclass(frozen=True)
class SearchFilters:
    q: str = ""
    type: str = ""
    min_size: int | None = None
    max_size: int | None = None
    after: datetime.date | None = None
    before: datetime.date | None = None
    cursor: str = ""


class ResultRow(TypedDict):
    """A found file or folder: its name, the folder it is in, links and the texts shown."""

    name: str
    key: str
    folder: str
    folder_url: str
    url: str
    is_folder: bool
    kind: str
    size_bytes: str
    size_text: str
    modified_html: str


@dataclass(frozen=True)
class Results:
    rows: list[ResultRow]
    next_cursor: str = ""  # the first key of the next page ("" when there is none)
    scan_stopped: bool = False  # a short query looked through SHORT_QUERY_SCAN names only


@dataclass(frozen=True)
class Freshness:
    """How fresh a bucket's index is, as the search page tells it."""

    walked_at: datetime.datetime | None
    files: int
    state: str
    error: str

    @property
    def walking(self) -> bool:
        return self.state in (IndexState.QUEUED, IndexState.RUNNING)


def index_freshness(*, bucket: str) -> Freshness:
    """Return when the bucket's index was last walked, what that walk counted, and what runs now."""
    state = BucketIndex.objects.filter(bucket=bucket).first()
    if state is None:
        return Freshness(walked_at=None, files=0, state=IndexState.IDLE, error="")
    return Freshness(
        walked_at=state.walk_finished_at, files=state.files, state=state.state, error=state.error
    )


def _day_start(day: datetime.date) -> datetime.datetime:
    # Days are the viewer's (ViewerTimeZoneMiddleware), as everywhere dates are shown.
    return datetime.datetime.combine(day, datetime.time(), tzinfo=timezone.get_current_timezone())


def _containing(rows: QuerySet, text: str) -> QuerySet:
    """Return the rows whose key contains `text`, any case, through the trigram index."""
    if connection.vendor == "sqlite":
        # FTS5 has no ORM lookup: its MATCH, with the text as one quoted string (a substring).
        phrase = '"' + text.replace('"', '""') + '"'
        return rows.filter(pk__in=RawSQL(SQLITE_TRIGRAMS, [phrase]))  # noqa: S611 (a parameter)
    # PostgreSQL: UPPER(key) LIKE UPPER('%text%'), which the GIN index on UPPER(key) serves.
    return rows.filter(key__icontains=text)


def bucket_search(
    *, actor: Actor, bucket: str, filters: SearchFilters | None
) -> tuple[str, Results]:
    """Return the actor's role and a page of the bucket's files and folders matching the filters.

    No filters (None, or all empty) give no rows: the page shows its search box."""
    role = permissions.require(actor=actor, bucket=bucket, role=Role.READ, action="object.search")
    if filters is None or filters == SearchFilters(cursor=filters.cursor):
        return role, Results(rows=[])
    return role, _search(bucket=bucket, filters=filters)


def _search(*, bucket: str, filters: SearchFilters) -> Results:
    rows = IndexedObject.objects.filter(bucket=bucket)
    if filters.cursor:
        rows = rows.filter(key__gte=filters.cursor)
    scan_end = ""
    if filters.q and len(filters.q) < TRIGRAM:
        scan_end = (
            rows.order_by("key").values_list("key", flat=True)[SHORT_QUERY_SCAN:].first() or ""
        )
        rows = rows.filter(key__icontains=filters.q)
        if scan_end:
            rows = rows.filter(key__lt=scan_end)
    elif filters.q:
        rows = _containing(rows, filters.q)
    if filters.type:
        rows = rows.filter(kind=filters.type)
    if filters.min_size is not None:
        rows = rows.filter(size__gte=filters.min_size)
    if filters.max_size is not None:
        rows = rows.filter(size__lte=filters.max_size)
    if filters.after:
        rows = rows.filter(last_modified__gte=_day_start(filters.after))
    if filters.before:
        rows = rows.filter(last_modified__lt=_day_start(filters.before + datetime.timedelta(1)))
    fields = ("key", "size", "last_modified", "kind")
    found = list(rows.order_by("key").values_list(*fields)[: PAGE_SIZE + 1])
    if len(found) > PAGE_SIZE:
        return Results(
            rows=_result_rows(found[:PAGE_SIZE], bucket=bucket), next_cursor=found[-1][0]
        )
    return Results(
        rows=_result_rows(found, bucket=bucket), next_cursor=scan_end, scan_stopped=bool(scan_end)
    )


def _result_rows(found: list[tuple], *, bucket: str) -> list[ResultRow]:
    object_url = reverse("object_detail", args=[bucket]) + "?key="
    folder_url = reverse("bucket_detail", args=[bucket]) + "?prefix="
    size_texts = functools.cache(_size_texts)
    time_html = functools.cache(when_html)
    rows = []
    for key, size, modified, kind in found:
        is_folder = key.endswith("/")
        folder, _, name = key.rstrip("/").rpartition("/")
        folder = f"{folder}/" if folder else ""
        size_bytes, size_text = size_texts(size)
        rows.append(
            ResultRow(
                name=name + ("/" if is_folder else ""), key=key, folder=folder,
                folder_url=folder_url + quote(folder),
                url=(folder_url if is_folder else object_url) + quote(key),
                is_folder=is_folder, kind=KIND_LABELS.get(kind, kind),
                size_bytes=size_bytes, size_text=size_text, modified_html=time_html(modified),
            )
        )  # fmt: skip
    return rows
