"""Reads for pages: what a person may see, fetched through the audited gateway or the database."""

import datetime
import functools
from dataclasses import dataclass
from typing import TypedDict
from urllib.parse import quote

from django.contrib.humanize.templatetags.humanize import intcomma, naturaltime
from django.db.models import QuerySet
from django.http import Http404
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import dateformat, formats, timezone
from django.utils.html import escape

from sharing import audit, permissions, s3
from sharing.audit import Actor
from sharing.models import Role, ShareLink

# Rows per folder page: each page is one ListObjectsV2 call, whatever the size of the folder.
PAGE_SIZE = 200


@dataclass(frozen=True)
class BucketRow:
    name: str
    created: datetime.datetime | None
    role: str


def bucket_rows(*, actor: Actor) -> list[BucketRow]:
    """Return the buckets the actor may see, with their role on each."""
    roles = permissions.visible_roles(actor.user)
    if roles == {}:
        return []
    with audit.s3_call(actor=actor, action="bucket.list") as call:
        buckets = s3.list_buckets()
        call.message = f"{len(buckets)} buckets listed."
    return [
        BucketRow(
            name=b.name, created=b.created, role=Role.MANAGE if roles is None else roles[b.name]
        )
        for b in buckets
        if roles is None or b.name in roles
    ]


# Rows are dicts, not dataclasses: a page has up to PAGE_SIZE rows of ~10 `{{ }}` each, and
# the template engine reads a dict key in less time than an attribute (no TypeError raised first).
class FolderRow(TypedDict):
    """A sub-folder in a folder listing, with the link that opens it."""

    name: str
    prefix: str
    url: str


class FileRow(TypedDict):
    """A file in a folder listing, with its link and the texts the page shows for it.

    The texts are what the template filters gave (`|intcomma`, `|filesizeformat`, `|date:'c'`,
    the plain `{{ }}` date, `|naturaltime`), computed and escaped once per distinct value on the
    page instead of through the template machinery on every row.
    """

    name: str
    key: str
    size: int
    last_modified: datetime.datetime
    url: str
    size_bytes: str
    size_text: str
    modified_iso: str
    modified_text: str
    modified_ago: str


@dataclass(frozen=True)
class Listing:
    folders: list[FolderRow]
    files: list[FileRow]
    next_token: str


def folder_page(
    *, actor: Actor, bucket: str, prefix: str = "", query: str = "", token: str = ""
) -> tuple[str, Listing]:
    """Return the actor's role and one page of a folder (names starting with `query` only)."""
    role = permissions.require(actor=actor, bucket=bucket, role=Role.READ, action="object.list")
    with audit.s3_call(actor=actor, action="object.list", bucket=bucket, key=prefix + query):
        page = s3.list_page(bucket, prefix=prefix + query, token=token, size=PAGE_SIZE)
    cut = len(prefix)
    return role, Listing(
        # The same query string as ?prefix={{ prefix|urlencode }}.
        folders=[
            FolderRow(name=p[cut:].rstrip("/"), prefix=p, url=f"?prefix={quote(p)}")
            for p in page.folders
        ],
        # The folder's own marker object ("docs/") is the folder itself, not a file in it.
        files=_file_rows([o for o in page.objects if o.key != prefix], bucket=bucket, cut=cut),
        next_token=page.next_token,
    )


def _file_rows(objects: list[s3.ObjectSummary], *, bucket: str, cut: int) -> list[FileRow]:
    # One reverse() per page, then the key quoted as {{ key|urlencode }} quotes it.
    object_url = reverse("object_detail", args=[bucket]) + "?key="
    datetime_format = formats.get_format("DATETIME_FORMAT")
    # Files uploaded together share sizes and timestamps: format each value once per page. The
    # caches live for one page only, as the texts depend on the language, time zone and now.
    size_texts = functools.cache(_size_texts)
    time_texts = functools.cache(functools.partial(_time_texts, datetime_format=datetime_format))
    rows = []
    for o in objects:
        size_bytes, size_text = size_texts(o.size)
        modified_iso, modified_text, modified_ago = time_texts(o.last_modified)
        rows.append(
            FileRow(
                name=o.key[cut:],
                key=o.key,
                size=o.size,
                last_modified=o.last_modified,
                url=object_url + quote(o.key),
                size_bytes=size_bytes,
                size_text=size_text,
                modified_iso=modified_iso,
                modified_text=modified_text,
                modified_ago=modified_ago,
            )
        )
    return rows


def _size_texts(size: int) -> tuple[str, str]:
    return escape(intcomma(size)), escape(filesizeformat(size))


def _time_texts(moment: datetime.datetime, *, datetime_format: str) -> tuple[str, str, str]:
    # As the template shows a datetime: `|date:'c'` and `{{ }}` convert to the current time zone
    # first (`|date:'c'` is isoformat()); `|naturaltime` takes the value as it is.
    local = timezone.template_localtime(moment)
    return (
        escape(local.isoformat()),
        escape(dateformat.format(local, datetime_format)),
        escape(naturaltime(moment)),
    )


def object_info(*, actor: Actor, bucket: str, key: str) -> tuple[str, s3.ObjectInfo]:
    """Return the actor's role and a file's metadata; 404 when it does not exist."""
    role = permissions.require(actor=actor, bucket=bucket, role=Role.READ, action="object.head")
    with audit.s3_call(actor=actor, action="object.head", bucket=bucket, key=key):
        info = s3.head(bucket, key)
    if info is None:
        raise Http404("No such file.")
    return role, info


def writable_buckets(*, actor: Actor) -> list[str]:
    """Return the names of the buckets the actor may write to (copy and move destinations)."""
    return [
        row.name
        for row in bucket_rows(actor=actor)
        if permissions.allows(row.role, permissions.WRITE_ROLE)
    ]


def breadcrumbs(prefix: str) -> list[tuple[str, str]]:
    """Return (folder name, its prefix) for each level of a prefix."""
    crumbs, path = [], ""
    for part in prefix.rstrip("/").split("/") if prefix else []:
        path += part + "/"
        crumbs.append((part, path))
    return crumbs


@dataclass(frozen=True)
class FolderSummary:
    files: int
    bytes: int


def folder_summary(*, actor: Actor, bucket: str, prefix: str) -> FolderSummary:
    """Return how many files, and how many bytes, a folder holds (all levels)."""
    permissions.require(actor=actor, bucket=bucket, role=Role.READ, action="object.list")
    with audit.s3_call(actor=actor, action="object.list", bucket=bucket, key=prefix):
        items = s3.list_keys(bucket, prefix=prefix)
    return FolderSummary(files=len(items), bytes=sum(item.size for item in items))


def links_with_status() -> QuerySet[ShareLink]:
    """Return all links, each with its status as of now and its creator."""
    return ShareLink.objects.with_status(timezone.now()).select_related("creator")


def links_of(*, actor: Actor) -> list[ShareLink]:
    """Return every link the actor made, newest first, each with its status."""
    return list(links_with_status().filter(creator=actor.user))


def links_for_object(*, actor: Actor, bucket: str, key: str) -> list[ShareLink]:
    """Return the links to one file that the actor may see (their own; all for an admin)."""
    links = links_with_status().filter(bucket=bucket, key=key)
    if not actor.user.is_superuser:
        links = links.filter(creator=actor.user)
    return list(links[:100])
