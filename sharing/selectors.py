"""Reads for pages: what a person may see, fetched through the audited gateway."""

import datetime
from dataclasses import dataclass

from django.http import Http404

from sharing import audit, permissions, s3
from sharing.audit import Actor
from sharing.models import Role

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


@dataclass(frozen=True)
class Entry:
    """A row of a folder listing: a sub-folder (prefix) or a file (key)."""

    name: str
    prefix: str = ""
    key: str = ""
    size: int = 0
    last_modified: datetime.datetime | None = None


@dataclass(frozen=True)
class Listing:
    folders: list[Entry]
    files: list[Entry]
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
        folders=[Entry(name=p[cut:].rstrip("/"), prefix=p) for p in page.folders],
        # The folder's own marker object ("docs/") is the folder itself, not a file in it.
        files=[
            Entry(name=o.key[cut:], key=o.key, size=o.size, last_modified=o.last_modified)
            for o in page.objects
            if o.key != prefix
        ],
        next_token=page.next_token,
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
        if permissions.ROLE_RANK[row.role] >= permissions.ROLE_RANK[Role.WRITE]
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
