"""Aborting uploads nobody finished, so that no stray parts keep using storage."""

import datetime
from dataclasses import dataclass, field

from django.utils import timezone
from django.utils.translation import ngettext

from sharing import audit, s3
from sharing.audit import Actor
from sharing.models import BucketGrant, PendingUpload
from sharing.services.uploads import UploadError, abort_parts, forget, is_single

ACTOR_NAME = "uploads_cleanup"
# An upload younger than this may still be sending parts: aborting it breaks someone's transfer.
IN_PROGRESS_AGE = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class Stray:
    """A multipart upload in a known bucket that the portal has no record of."""

    bucket: str
    key: str
    upload_id: str
    initiated: datetime.datetime


@dataclass(frozen=True)
class Unfinished:
    """The uploads started before a moment: the portal's own, then the untracked ones."""

    pending: list[PendingUpload] = field(default_factory=list)
    strays: list[Stray] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # buckets that could not be listed

    @property
    def count(self) -> int:
        return len(self.pending) + len(self.strays)

    def any_started_after(self, moment: datetime.datetime) -> bool:
        """Return whether one of the uploads started after moment."""
        starts = [upload.created_at for upload in self.pending]
        starts += [stray.initiated for stray in self.strays]
        return any(start > moment for start in starts)


@dataclass(frozen=True)
class Cleaned:
    pending_aborted: int = 0
    strays_aborted: int = 0
    failures: list[str] = field(default_factory=list)


def uploads_unfinished(*, started_before: datetime.datetime | None, actor: Actor) -> Unfinished:
    """Return the uploads started before a moment (None: all); S3Error when S3 is unreachable."""
    pending_uploads = PendingUpload.objects.order_by("created_at")
    if started_before is not None:
        pending_uploads = pending_uploads.filter(created_at__lt=started_before)
    pending = list(pending_uploads)
    tracked = set(PendingUpload.objects.values_list("upload_id", flat=True))
    buckets = set(BucketGrant.objects.values_list("bucket", flat=True)) | set(
        PendingUpload.objects.values_list("bucket", flat=True)
    )
    strays, failures = [], []
    for bucket in sorted(buckets):
        try:
            with audit.s3_call(actor=actor, action="upload.list_stale", bucket=bucket) as call:
                uploads = s3.list_multipart_uploads(bucket)
                call.message = ngettext(
                    "%d unfinished upload.", "%d unfinished uploads.", len(uploads)
                ) % len(uploads)
        except s3.S3Error as error:
            if error.status >= 500:  # storage out of reach: the other buckets would fail alike
                raise
            failures.append(f"{bucket}: {error.message}")
            continue
        strays += [
            Stray(bucket=bucket, key=item.key, upload_id=item.upload_id, initiated=item.initiated)
            for item in uploads
            if item.upload_id not in tracked
            and (started_before is None or item.initiated < started_before)
        ]
    return Unfinished(pending=pending, strays=strays, failures=failures)


def uploads_abort(*, unfinished: Unfinished, actor: Actor) -> Cleaned:
    """Abort the given uploads and remove their parts, each call audited."""
    pending_aborted, strays_aborted, failures = 0, 0, list(unfinished.failures)
    for upload in unfinished.pending:
        try:
            with audit.s3_call(
                actor=actor, action="upload.abort", bucket=upload.bucket, key=upload.key
            ) as call:
                if not is_single(upload):
                    abort_parts(upload)
                call.message = (
                    f"Stale: started by {upload.user} at {upload.created_at:%Y-%m-%d %H:%M}."
                )
        except (s3.S3Error, UploadError) as error:
            failures.append(f"{upload.bucket}/{upload.key}: {error.message}")
            if error.status >= 500:
                continue
        forget(upload)
        pending_aborted += 1
    for stray in unfinished.strays:
        try:
            with audit.s3_call(
                actor=actor, action="upload.abort", bucket=stray.bucket, key=stray.key
            ) as call:
                s3.abort_multipart(stray.bucket, stray.key, upload_id=stray.upload_id)
                call.message = f"Untracked upload started at {stray.initiated:%Y-%m-%d %H:%M}."
            strays_aborted += 1
        except s3.S3Error as error:
            failures.append(f"{stray.bucket}/{stray.key}: {error.message}")
    return Cleaned(
        pending_aborted=pending_aborted, strays_aborted=strays_aborted, failures=failures
    )


def uploads_cleanup(*, hours: int, actor: Actor | None = None) -> Cleaned:
    """Abort uploads started over `hours` ago, and untracked multipart uploads in known buckets."""
    actor = actor or Actor.system(ACTOR_NAME)
    started_before = timezone.now() - datetime.timedelta(hours=hours)
    return uploads_abort(
        unfinished=uploads_unfinished(started_before=started_before, actor=actor), actor=actor
    )
