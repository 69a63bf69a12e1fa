"""The search index: each portal write updates it, and a walk of the whole bucket catches the rest.

The rows are in `IndexedObject` (one per key), each bucket's walks in `BucketIndex`. The portal's
own writes (uploads, copies, moves, deletes, new folders) call `index_put`, `index_copied` and
`index_removed` as they happen; a walk (`bucket_index_walk`, the `bucket_index` task, started from
the bucket page or by `search_reindex`) lists the bucket to pick up what others changed.
"""

import datetime
import logging
import mimetypes

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from sharing import audit, permissions, s3
from sharing.audit import Actor
from sharing.models import BucketIndex, FileKind, IndexedObject, IndexState, Outcome, Role

logger = logging.getLogger(__name__)
WALKER = "search-index"  # the audit trail's name for the walks
INDEX_ROLE = Role.WRITE  # asking for a walk lists the whole bucket: not for every reader
# A walk touches its state after each page; one silent this long has died (a killed worker).
WALK_STALE = datetime.timedelta(minutes=10)
# A queued walk waits behind other tasks; one queued this long was lost (a flushed queue).
QUEUE_STALE = datetime.timedelta(hours=1)
UPDATED_FIELDS = ["size", "last_modified", "content_type", "kind", "etag", "seen_at"]
# Content types by what people look for; the first matching rule wins (see file_kind).
KIND_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (FileKind.PDF, ("application/pdf",)),
    (FileKind.IMAGE, ("image/",)),
    (FileKind.VIDEO, ("video/",)),
    (FileKind.AUDIO, ("audio/",)),
    (FileKind.SPREADSHEET, ("text/csv", "spreadsheet", "ms-excel")),
    (FileKind.PRESENTATION, ("presentation", "ms-powerpoint")),
    (FileKind.DOCUMENT, ("msword", "wordprocessing", "opendocument.text", "rtf")),
    (FileKind.ARCHIVE, ("zip", "x-tar", "gzip", "x-7z", "x-bzip", "x-xz", "x-rar", "zstd")),
    (FileKind.TEXT, ("text/", "json", "xml", "yaml", "javascript", "x-sh", "toml")),
)
GENERIC_TYPES = ("", "application/octet-stream", "binary/octet-stream")


def file_kind(key: str, content_type: str = "") -> str:
    """Return what a file is, from its content type or, when that says nothing, its extension."""
    if key.endswith("/"):
        return FileKind.FOLDER
    content_type = content_type.split(";", 1)[0].strip().lower()
    if content_type in GENERIC_TYPES:
        content_type = (mimetypes.guess_type(key, strict=False)[0] or "").lower()
    for kind, markers in KIND_RULES:
        if any(marker in content_type for marker in markers):
            return kind
    return FileKind.OTHER


def _row(
    *, bucket: str, key: str, size: int, modified: datetime.datetime, content_type: str, etag: str,
    seen: datetime.datetime,
) -> IndexedObject:  # fmt: skip
    return IndexedObject(
        bucket=bucket, key=key, size=size, last_modified=modified,
        content_type=content_type[:255], kind=file_kind(key, content_type), etag=etag[:100],
        seen_at=seen,
    )  # fmt: skip


def _upsert(rows: list[IndexedObject]) -> None:
    # One statement per batch, whatever is already there: no per-row query.
    IndexedObject.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["bucket", "key"], update_fields=UPDATED_FIELDS
    )


def index_put(
    *,
    bucket: str,
    key: str,
    size: int,
    last_modified: datetime.datetime | None = None,
    content_type: str = "",
    etag: str = "",
) -> None:
    """Record an object the portal has just stored (an upload, a new folder)."""
    now = timezone.now()
    _upsert([
        _row(
            bucket=bucket, key=key, size=size, modified=last_modified or now,
            content_type=content_type, etag=etag, seen=now,
        )
    ])  # fmt: skip


def index_copied(*, bucket: str, key: str, dst_bucket: str, dst_key: str) -> None:
    """Record a copy from the source's row, without asking S3 (an unknown source waits for a walk)."""
    now = timezone.now()
    if key.endswith("/"):
        index_put(bucket=dst_bucket, key=dst_key, size=0)
        return
    source = IndexedObject.objects.filter(bucket=bucket, key=key).first()
    if source is None:
        return
    _upsert([
        _row(
            bucket=dst_bucket, key=dst_key, size=source.size, modified=now,
            content_type=source.content_type, etag=source.etag, seen=now,
        )
    ])  # fmt: skip


def index_removed(*, bucket: str, keys: list[str]) -> None:
    """Drop the rows of objects the portal has just deleted."""
    if keys:
        IndexedObject.objects.filter(bucket=bucket, key__in=keys).delete()


def index_bucket_dropped(*, bucket: str) -> None:
    """Forget a deleted bucket's rows and walks."""
    IndexedObject.objects.filter(bucket=bucket).delete()
    BucketIndex.objects.filter(bucket=bucket).delete()


def _not_busy(now: datetime.datetime) -> Q:
    """Return the states in which a walk may be queued or started (a dead one's included)."""
    return (
        Q(state__in=[IndexState.IDLE, IndexState.FAILED])
        | Q(state=IndexState.QUEUED, requested_at__lt=now - QUEUE_STALE)
        | Q(state=IndexState.RUNNING, progress_at__lt=now - WALK_STALE)
    )


def _queue(*, bucket: str) -> bool:
    """Mark a bucket's walk as queued; return False when one is queued or running already."""
    now = timezone.now()
    BucketIndex.objects.get_or_create(bucket=bucket)
    # One conditional update: of two requests at once, one queues and the other finds it queued.
    claimed = BucketIndex.objects.filter(_not_busy(now), bucket=bucket).update(
        state=IndexState.QUEUED, requested_at=now
    )
    if claimed:
        from sharing import tasks  # tasks call services: imported when needed, not at load

        transaction.on_commit(lambda: tasks.bucket_index.enqueue(bucket))
    return bool(claimed)


def bucket_index_request(*, actor: Actor, bucket: str) -> bool:
    """Queue a walk of the bucket for its index; return False when one is on its way already."""
    permissions.require(actor=actor, bucket=bucket, role=INDEX_ROLE, action="bucket.index")
    queued = _queue(bucket=bucket)
    audit.record(
        actor=actor, action="bucket.index", outcome=Outcome.SUCCESS, bucket=bucket,
        message="Index update queued." if queued else "An index update was already on its way.",
    )  # fmt: skip
    return queued


def bucket_indexes_refresh(*, older_than: datetime.timedelta) -> list[str]:
    """Queue a walk of every bucket whose index is older than `older_than`; return their names."""
    actor = Actor.system(WALKER)
    with audit.s3_call(actor=actor, action="bucket.list") as call:
        # The portal's own buckets (thumbnails) are hidden from everyone: nobody searches them.
        names = [b.name for b in s3.list_buckets() if not permissions.is_portal_bucket(b.name)]
        call.message = f"{len(names)} buckets listed for the search index."
    cutoff = timezone.now() - older_than
    fresh = set(
        BucketIndex.objects.filter(bucket__in=names, walk_finished_at__gte=cutoff).values_list(
            "bucket", flat=True
        )
    )
    return [name for name in names if name not in fresh and _queue(bucket=name)]


def _start_walk(*, bucket: str) -> datetime.datetime | None:
    now = timezone.now()
    BucketIndex.objects.get_or_create(bucket=bucket)
    started = BucketIndex.objects.filter(
        _not_busy(now) | Q(state=IndexState.QUEUED), bucket=bucket
    ).update(state=IndexState.RUNNING, walk_started_at=now, progress_at=now, error="")
    return now if started else None


def bucket_index_walk(*, bucket: str) -> int | None:
    """List the whole bucket into its index and drop rows it no longer holds; return the count.

    Returns None when a walk of the bucket is running already (it is not started twice), or when
    the storage failed (the state then says why)."""
    started = _start_walk(bucket=bucket)
    if started is None:
        return None
    state = BucketIndex.objects.filter(bucket=bucket)
    files = 0
    try:
        with audit.s3_call(
            actor=Actor.system(WALKER), action="bucket.index", bucket=bucket
        ) as call:
            token = ""
            while True:
                page = s3.list_flat_page(bucket, token=token)
                _upsert([
                    _row(
                        bucket=bucket, key=item.key, size=item.size, modified=item.last_modified,
                        content_type="", etag=item.etag, seen=started,
                    )
                    for item in page.objects
                ])  # fmt: skip
                files += len(page.objects)
                state.update(progress_at=timezone.now())
                if not page.next_token:
                    break
                token = page.next_token
            # Rows the walk did not see are gone; the portal's writes meanwhile are newer.
            removed, _ = IndexedObject.objects.filter(bucket=bucket, seen_at__lt=started).delete()
            call.message = f"{files} objects indexed, {removed} rows of removed objects dropped."
    except s3.S3Error as error:
        state.update(state=IndexState.FAILED, error=error.message[:500], progress_at=timezone.now())
        logger.warning("index walk failed bucket=%s code=%s", bucket, error.code)
        return None
    except BaseException:
        state.update(state=IndexState.FAILED, error="The walk stopped unexpectedly.")
        raise
    state.update(state=IndexState.IDLE, walk_finished_at=timezone.now(), files=files, error="")
    return files
