"""Aborting uploads nobody finished, so that no stray parts keep using storage."""

import datetime
from dataclasses import dataclass, field

from django.utils import timezone

from sharing import audit, s3
from sharing.audit import Actor
from sharing.models import BucketGrant, PendingUpload
from sharing.services.uploads import UploadError, abort_parts, forget, is_single


@dataclass(frozen=True)
class Cleaned:
    pending_aborted: int = 0
    strays_aborted: int = 0
    failures: list[str] = field(default_factory=list)


def uploads_cleanup(*, hours: int, actor: Actor | None = None) -> Cleaned:
    """Abort uploads started over `hours` ago, and untracked multipart uploads in known buckets."""
    actor = actor or Actor.system("uploads_cleanup")
    cutoff = timezone.now() - datetime.timedelta(hours=hours)
    pending_aborted, strays_aborted, failures = 0, 0, []
    for upload in PendingUpload.objects.filter(created_at__lt=cutoff).order_by("created_at"):
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
    tracked = set(PendingUpload.objects.values_list("upload_id", flat=True))
    buckets = set(BucketGrant.objects.values_list("bucket", flat=True)) | set(
        PendingUpload.objects.values_list("bucket", flat=True)
    )
    for bucket in sorted(buckets):
        try:
            with audit.s3_call(actor=actor, action="upload.list_stale", bucket=bucket) as call:
                uploads = s3.list_multipart_uploads(bucket)
                call.message = f"{len(uploads)} unfinished uploads."
        except s3.S3Error as error:
            failures.append(f"{bucket}: {error.message}")
            continue
        for stray in uploads:
            if stray.upload_id in tracked or stray.initiated >= cutoff:
                continue
            try:
                with audit.s3_call(
                    actor=actor, action="upload.abort", bucket=bucket, key=stray.key
                ) as call:
                    s3.abort_multipart(bucket, stray.key, upload_id=stray.upload_id)
                    call.message = f"Untracked upload started at {stray.initiated:%Y-%m-%d %H:%M}."
                strays_aborted += 1
            except s3.S3Error as error:
                failures.append(f"{bucket}/{stray.key}: {error.message}")
    return Cleaned(
        pending_aborted=pending_aborted, strays_aborted=strays_aborted, failures=failures
    )
