"""Reads for pages: what a person may see, fetched through the audited gateway."""

import datetime
from dataclasses import dataclass

from sharing import audit, permissions, s3
from sharing.audit import Actor
from sharing.models import Role


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


def folder_page(
    *, actor: Actor, bucket: str, prefix: str = "", token: str = ""
) -> tuple[str, s3.Page]:
    """Return the actor's role and one page of a folder of a bucket they may read."""
    role = permissions.require(actor=actor, bucket=bucket, role=Role.READ, action="object.list")
    with audit.s3_call(actor=actor, action="object.list", bucket=bucket, key=prefix):
        page = s3.list_page(bucket, prefix=prefix, token=token)
    return role, page
