"""Reads of thumbnails: the one ready for a file a person may see, and its bytes."""

from django.core.files.storage import storages
from django.http import Http404

from sharing import audit, permissions, s3
from sharing.audit import Actor
from sharing.models import Role, Thumbnail, ThumbnailState


def thumbnail_ready(*, actor: Actor, bucket: str, key: str) -> Thumbnail:
    """Return a file's ready thumbnail, if the actor may read the bucket; 404 otherwise."""
    permissions.require(actor=actor, bucket=bucket, role=Role.READ, action="thumbnail.get")
    thumbnail = Thumbnail.objects.filter(bucket=bucket, key=key, state=ThumbnailState.READY).first()
    if thumbnail is None:
        raise Http404("No thumbnail of this file (yet).")
    return thumbnail


def thumbnail_content(*, actor: Actor, thumbnail: Thumbnail) -> bytes:
    """Return a ready thumbnail's bytes from the thumbnails' storage (404 when it is gone)."""
    with audit.s3_call(
        actor=actor, action="thumbnail.get", bucket=thumbnail.bucket, key=thumbnail.key
    ) as call:
        try:
            content = s3.read_stored(storages["thumbnails"], thumbnail.storage_name)
        except FileNotFoundError:
            call.message = "The stored thumbnail is gone."
            content = None
        else:
            call.message = f"{len(content)} bytes."
    if content is None:
        raise Http404("No thumbnail of this file.")
    return content
