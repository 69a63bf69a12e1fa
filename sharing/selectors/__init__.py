"""Reads for pages: what a person may see, fetched through the audited gateway or the database."""

import datetime
import functools
import operator
from dataclasses import dataclass
from typing import TypedDict
from urllib.parse import quote, urlencode

from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.cache import cache
from django.db.models import QuerySet
from django.http import Http404
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.translation import ngettext

from sharing import audit, permissions, s3
from sharing.audit import Actor
from sharing.models import Role, ShareLink
from sharing.templatetags.dates import when_html

# Rows per folder page: each page is one ListObjectsV2 call, whatever the size of the folder.
PAGE_SIZE = 200
# How a folder page can be sorted: ?sort=size, ?sort=-size (descending). S3 lists in name order
# only, so a sort by size or date orders the page of PAGE_SIZE names that was fetched, and the
# page says so when the folder has more pages: reading a whole folder of 100,000 files to sort
# it would make every large folder as slow as its size, which pages by token exist to avoid.
SORTS = {"name": "Name", "size": "Size", "modified": "Last modified"}


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
        call.message = ngettext("%d bucket listed.", "%d buckets listed.", len(buckets)) % len(
            buckets
        )
    return [
        BucketRow(
            name=b.name, created=b.created, role=Role.MANAGE if roles is None else roles[b.name]
        )
        for b in buckets
        if (roles is None or b.name in roles) and not permissions.is_portal_bucket(b.name)
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
    download_url: str
    size_bytes: str
    size_text: str
    modified_html: str  # `{% when last_modified %}`
    etag: str  # which version of the file this is (thumbnails follow it)


class SortHeader(TypedDict):
    """A column header of a folder listing: the link that sorts by it, and its aria-sort."""

    field: str
    label: str
    url: str
    aria_sort: str  # "ascending", "descending" or "" (not sorted by this column)


@dataclass(frozen=True)
class Listing:
    folders: list[FolderRow]
    files: list[FileRow]
    next_token: str
    sort: str = "name"
    headers: tuple[SortHeader, ...] = ()
    partial: bool = False  # the folder has other pages than this one

    @property
    def sorted_within_page(self) -> bool:
        """Return whether this page is sorted on its own, apart from the folder's other pages."""
        return self.partial and self.sort != "name"


def folder_page(
    *,
    actor: Actor,
    bucket: str,
    prefix: str = "",
    query: str = "",
    token: str = "",
    sort: str = "",
) -> tuple[str, Listing]:
    """Return the actor's role and one page of a folder (names starting with `query` only)."""
    role = permissions.require(actor=actor, bucket=bucket, role=Role.READ, action="object.list")
    with audit.s3_call(actor=actor, action="object.list", bucket=bucket, key=prefix + query):
        page = s3.list_page(bucket, prefix=prefix + query, token=token, size=PAGE_SIZE)
    cut = len(prefix)
    sort = sort if sort.removeprefix("-") in SORTS else "name"
    # The same query string as ?prefix={{ prefix|urlencode }}.
    folders = [
        FolderRow(name=p[cut:].rstrip("/"), prefix=p, url=f"?prefix={quote(p)}")
        for p in page.folders
    ]
    # The folder's own marker object ("docs/") is the folder itself, not a file in it.
    files = _file_rows([o for o in page.objects if o.key != prefix], bucket=bucket, cut=cut)
    base = {"prefix": prefix, "q": query, "token": token}
    return role, Listing(
        folders=folders[::-1] if sort == "-name" else folders,  # folders have no size or date
        files=_sorted_files(files, sort),
        next_token=page.next_token,
        sort=sort,
        headers=_sort_headers(sort, {name: value for name, value in base.items() if value}),
        partial=bool(token or page.next_token),
    )


def _sorted_files(files: list[FileRow], sort: str) -> list[FileRow]:
    field = sort.removeprefix("-")
    if field == "name":
        return files[::-1] if sort.startswith("-") else files  # S3 lists in name order
    key = operator.itemgetter("size" if field == "size" else "last_modified", "key")
    return sorted(files, key=key, reverse=sort.startswith("-"))


def _sort_headers(sort: str, base: dict[str, str]) -> tuple[SortHeader, ...]:
    headers = []
    for field, label in SORTS.items():
        current = sort.removeprefix("-") == field
        descending = current and sort.startswith("-")
        # A second click on the sorted column turns its order round.
        wanted = f"-{field}" if current and not descending else field
        query = {**base, "sort": wanted} if wanted != "name" else base
        headers.append(
            SortHeader(
                field=field,
                label=label,
                url=f"?{urlencode(query)}" if query else "?",
                aria_sort=("descending" if descending else "ascending") if current else "",
            )
        )
    return tuple(headers)


def _file_rows(objects: list[s3.ObjectSummary], *, bucket: str, cut: int) -> list[FileRow]:
    # One reverse() per page, then the key quoted as {{ key|urlencode }} quotes it.
    object_url = reverse("object_detail", args=[bucket]) + "?key="
    download_url = reverse("object_download", args=[bucket]) + "?key="
    # Files uploaded together share sizes and timestamps: format each value once per page. The
    # caches live for one page only, as the texts depend on the language and time zone.
    size_texts = functools.cache(_size_texts)
    time_html = functools.cache(when_html)
    rows = []
    for o in objects:
        size_bytes, size_text = size_texts(o.size)
        rows.append(
            FileRow(
                name=o.key[cut:],
                key=o.key,
                size=o.size,
                last_modified=o.last_modified,
                url=object_url + quote(o.key),
                download_url=download_url + quote(o.key),
                size_bytes=size_bytes,
                size_text=size_text,
                modified_html=time_html(o.last_modified),
                etag=o.etag,
            )
        )
    return rows


def _size_texts(size: int) -> tuple[str, str]:
    return escape(intcomma(size)), escape(filesizeformat(size))


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


def can_copy_anywhere(*, actor: Actor) -> bool:
    """Return whether the actor may write to some bucket, so has somewhere to copy files to."""
    roles = permissions.visible_roles(actor.user)
    return roles is None or any(
        permissions.allows(role, permissions.WRITE_ROLE) for role in roles.values()
    )


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


# The bucket list's sizes: known cheaply or not shown.

BUCKET_USAGE_LIMIT = 1000  # files counted per bucket: one ListObjectsV2 page
# Buckets probed per visit of the bucket list; the others are probed on later visits, so a person
# with many buckets never waits for all of them at once.
BUCKET_USAGE_PROBES = 5
BUCKET_USAGE_SECONDS = 60


def bucket_usages(*, actor: Actor, names: list[str]) -> dict[str, s3.BucketUsage]:
    """Return the file count and size of those buckets that are cached or probed on this visit."""
    keys = {name: _usage_key(name) for name in names}
    cached = cache.get_many(list(keys.values()))
    usages = {name: s3.BucketUsage(*cached[key]) for name, key in keys.items() if key in cached}
    fresh = {}
    for name in [name for name in names if name not in usages][:BUCKET_USAGE_PROBES]:
        try:
            with audit.s3_call(actor=actor, action="bucket.usage", bucket=name) as call:
                usage = s3.bucket_usage(name, limit=BUCKET_USAGE_LIMIT)
                more = "" if usage.complete else " (more not counted)"
                files = ngettext("%d file", "%d files", usage.files) % usage.files
                call.message = f"{files}, {usage.bytes} bytes counted{more}."
        except s3.S3Error:
            continue  # a size is a nicety: the list stays usable, and the outcome row says why
        usages[name] = usage
        fresh[keys[name]] = (usage.files, usage.bytes, usage.complete)
    cache.set_many(fresh, BUCKET_USAGE_SECONDS)
    return usages


def bucket_usage_forget(*, bucket: str) -> None:
    """Forget a bucket's counted files: the portal has just changed what it holds."""
    cache.delete(_usage_key(bucket))


def _usage_key(bucket: str) -> str:
    return f"bucket-usage:{bucket}"
