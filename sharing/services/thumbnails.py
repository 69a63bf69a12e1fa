"""Thumbnails of images and of PDFs' first pages: asked for without waiting, made by tasks.

A file gets one when its name says it is an image Pillow reads (JPEG, PNG, GIF, WebP, BMP, TIFF)
or a PDF. Uploads and folder pages ask (`thumbnails_request`); a task (`thumbnails_make`) reads
the file through the gateway, at most THUMBNAIL_MAX_SOURCE_BYTES (a larger file is skipped
without being read), refuses decompression bombs by Pillow's pixel limit, and keeps a WebP of at
most THUMBNAIL_SIZE pixels a side in the storage STORAGES["thumbnails"].
"""

import datetime
import hashlib
import io
import logging
import warnings
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Any, NamedTuple
from urllib.parse import quote

import pypdfium2
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages
from django.db import transaction
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import timezone
from PIL import Image, ImageOps

from sharing import audit, s3
from sharing.audit import Actor
from sharing.models import Outcome, Thumbnail, ThumbnailState

logger = logging.getLogger(__name__)

THUMBNAIL_SIZE = 256  # pixels, the longer side
# Pillow decodes only these (never EPS, which runs Ghostscript, nor any other plugin).
IMAGE_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".gif": "GIF",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
PDF_SUFFIX = ".pdf"
# A PDF's first page is rendered at twice the thumbnail's size, then scaled down: never more.
PDF_RENDER_MAX_PIXELS = (2 * THUMBNAIL_SIZE) ** 2
TASK_BATCH = 20  # thumbnails per task
# A thumbnail still pending this long after it was asked for (its task was lost, or the storage
# failed) is asked for again by the next page that shows it.
ASK_AGAIN_AFTER = datetime.timedelta(minutes=10)
CONTENT_TYPE = "image/webp"
SYSTEM = Actor.system("thumbnails")


class Source(NamedTuple):
    """One version of a file a thumbnail may be made of."""

    key: str
    version: str
    size: int


class ThumbnailRefusedError(Exception):
    """The file would decode to more pixels than the portal allows (a decompression bomb)."""


class ThumbnailFailedError(Exception):
    """The file cannot be read as the image or PDF its name says it is."""


def source_of(item: s3.ObjectSummary | s3.ObjectInfo) -> Source:
    """Return the version of a listed or inspected file: its ETag, else its size and time."""
    return Source(key=item.key, version=_version(item), size=item.size)


def _version(item: Any) -> str:
    last_modified = item["last_modified"] if isinstance(item, dict) else item.last_modified
    etag, size = (item["etag"], item["size"]) if isinstance(item, dict) else (item.etag, item.size)
    return (etag or f"{size}-{last_modified.isoformat()}")[:200]


def kind_of(key: str) -> str:
    """Return "image" or "pdf" for a name that gets a thumbnail, or "" for any other."""
    suffix = PurePosixPath(key).suffix.lower()
    if suffix in IMAGE_FORMATS:
        return "image"
    return "pdf" if suffix == PDF_SUFFIX else ""


def thumbnails_request(*, bucket: str, keys_with_versions: Iterable[Source]) -> None:
    """Ask for the thumbnails of those files that have none of their version yet; never waits."""
    wanted = {source.key: source for source in keys_with_versions if kind_of(source.key)}
    if wanted:
        _request(bucket=bucket, wanted=wanted)


def listing_thumbnails(*, bucket: str, files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return a folder page's file rows with their thumbnails, asking for those not made yet.

    Each row gains `kind` ("image", "pdf" or ""), `thumbnail_url` (when one is ready) and
    `thumbnail_pending`."""
    wanted = {
        row["key"]: Source(key=row["key"], version=_version(row), size=row["size"])
        for row in files
        if kind_of(row["key"])
    }
    found = _request(bucket=bucket, wanted=wanted) if wanted else {}
    base = reverse("thumbnail", args=[bucket]) + "?key="
    rows = []
    for row in files:
        thumbnail = found.get(row["key"])
        state = thumbnail.state if thumbnail is not None else ""
        url = f"{base}{quote(row['key'])}&v={etag_of(thumbnail)}" if state == "ready" else ""
        rows.append(
            {
                **row,
                "kind": kind_of(row["key"]),
                "thumbnail_url": url,
                "thumbnail_pending": state == ThumbnailState.PENDING,
            }
        )
    return rows


def etag_of(thumbnail: Thumbnail) -> str:
    """Return the tag of a thumbnail's version (its HTTP ETag, and the `v` of its URL)."""
    return hashlib.sha256(f"{thumbnail.key}\0{thumbnail.version}".encode()).hexdigest()[:32]


def _request(*, bucket: str, wanted: dict[str, Source]) -> dict[str, Thumbnail]:
    now = timezone.now()
    rows = {row.key: row for row in Thumbnail.objects.filter(bucket=bucket, key__in=wanted)}
    asked: list[int] = []
    new = [
        Thumbnail(bucket=bucket, key=s.key, version=s.version, source_size=s.size, requested_at=now)
        for key, s in wanted.items()
        if key not in rows
    ]
    if new:
        # Two pages shown at once may both insert: the second's rows are ignored, and the rows
        # read back by their time are the ones this call asked for.
        Thumbnail.objects.bulk_create(new, ignore_conflicts=True)
        for row in Thumbnail.objects.filter(
            bucket=bucket, key__in=[row.key for row in new], requested_at=now
        ):
            rows[row.key] = row
            asked.append(row.pk)
    for key, row in rows.items():
        source = wanted[key]
        if row.pk in asked:
            continue
        if row.version != source.version:
            # Another file now has this name: its thumbnail is made anew, conditionally, so
            # that two pages seeing the change ask once.
            changes = {
                "version": source.version,
                "source_size": source.size,
                "state": ThumbnailState.PENDING,
                "reason": "",
                "width": None,
                "height": None,
                "requested_at": now,
            }
            claimed = Thumbnail.objects.filter(pk=row.pk, version=row.version).update(**changes)
        elif row.state == ThumbnailState.PENDING and (
            row.requested_at is None or row.requested_at < now - ASK_AGAIN_AFTER
        ):
            changes = {"requested_at": now}
            claimed = Thumbnail.objects.filter(
                pk=row.pk, state=ThumbnailState.PENDING, requested_at=row.requested_at
            ).update(**changes)
        else:
            continue
        if claimed:
            for name, value in changes.items():
                setattr(row, name, value)
            asked.append(row.pk)
    if asked:
        transaction.on_commit(lambda: _enqueue(asked))
    return rows


def _enqueue(ids: list[int]) -> None:
    from sharing import tasks  # tasks call this module

    try:
        for start in range(0, len(ids), TASK_BATCH):
            tasks.thumbnail_make.enqueue(thumbnail_ids=ids[start : start + TASK_BATCH])
    except Exception:
        # A thumbnail is a nicety: the page is shown anyway, and the rows stay pending, to be
        # asked for again after ASK_AGAIN_AFTER.
        logger.exception("Thumbnails %s could not be queued.", ids)


def thumbnails_make(*, thumbnail_ids: list[int]) -> None:
    """Make the pending thumbnails of these ids (a failure of one does not stop the others)."""
    storage = storages["thumbnails"]
    for row in Thumbnail.objects.filter(pk__in=thumbnail_ids, state=ThumbnailState.PENDING):
        try:
            thumbnail_make(thumbnail=row, storage=storage)
        except Exception:
            # A bug met by one file must not stop the others, nor ask for that file forever.
            logger.exception("Thumbnail %s (%s/%s) failed.", row.pk, row.bucket, row.key)
            _finish(row, state=ThumbnailState.FAILED, reason="The portal failed while making it.")


def thumbnail_make(*, thumbnail: Thumbnail, storage: Storage) -> str:
    """Make one thumbnail: read the file (capped), render, store; return the state it ends in."""
    cap = settings.THUMBNAIL_MAX_SOURCE_BYTES
    too_large = f"Larger than {filesizeformat(cap)}, the most a thumbnail is made of."
    if thumbnail.source_size > cap:
        return _finish(thumbnail, state=ThumbnailState.SKIPPED, reason=too_large)
    try:
        data = _read_source(thumbnail, cap=cap)
        if data is None:
            return _finish(thumbnail, state=ThumbnailState.SKIPPED, reason=too_large)
        image = _render(data, kind=kind_of(thumbnail.key))
    except ThumbnailRefusedError as error:
        return _refuse(thumbnail, reason=str(error))
    except ThumbnailFailedError as error:
        return _finish(thumbnail, state=ThumbnailState.FAILED, reason=str(error))
    except s3.S3Error as error:
        if error.status == 404:
            return _finish(thumbnail, state=ThumbnailState.FAILED, reason=error.message)
        return _stay_pending(thumbnail, reason=error.message)
    content = _encode(image)
    name = f"{thumbnail.bucket}/{etag_of(thumbnail)}.webp"
    try:
        with audit.s3_call(
            actor=SYSTEM, action="thumbnail.store", bucket=thumbnail.bucket, key=thumbnail.key
        ) as call:
            _ensure_bucket(storage)
            stored = storage.save(name, ContentFile(content))
            call.message = f"{image.width}×{image.height} WebP, {len(content)} bytes: {stored}."
            old = thumbnail.storage_name
            if old and old != stored:
                storage.delete(old)  # the thumbnail of the file's previous version
    except Exception as error:
        # Any storage may be configured, and each fails in its own way: the outcome row has it.
        return _stay_pending(thumbnail, reason=str(error) or type(error).__name__)
    return _finish(
        thumbnail,
        state=ThumbnailState.READY,
        storage_name=stored,
        width=image.width,
        height=image.height,
    )


def _ensure_bucket(storage: Storage) -> None:
    if isinstance(storage, s3.PortalS3Storage) and not storage.bucket_known:
        with audit.s3_call(
            actor=SYSTEM, action="thumbnail.bucket", bucket=storage.bucket_name
        ) as call:
            created = storage.ensure_bucket()
            call.message = "The thumbnails' bucket was created." if created else "It exists."


def _read_source(thumbnail: Thumbnail, *, cap: int) -> bytes | None:
    """Return the file's bytes, or None when it holds more than `cap` (reading stops there)."""
    with audit.s3_call(
        actor=SYSTEM, action="thumbnail.read", bucket=thumbnail.bucket, key=thumbnail.key
    ) as call:
        data = bytearray()
        chunks = s3.read_chunks(thumbnail.bucket, thumbnail.key)
        try:
            for chunk in chunks:
                data += chunk
                if len(data) > cap:
                    call.message = f"More than {cap} bytes: reading stopped."
                    return None
        finally:
            chunks.close()
        call.message = f"{len(data)} bytes read."
    return bytes(data)


def _render(data: bytes, *, kind: str) -> Image.Image:
    return _render_pdf(data) if kind == "pdf" else _render_image(data)


def _render_image(data: bytes) -> Image.Image:
    with warnings.catch_warnings():
        # Pillow warns above MAX_IMAGE_PIXELS and raises above twice that: both are refused.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=sorted(set(IMAGE_FORMATS.values())))
            image.draft("RGB", (2 * THUMBNAIL_SIZE, 2 * THUMBNAIL_SIZE))  # JPEG: decode smaller
            image = ImageOps.exif_transpose(image)
            image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
            return _flattened(image)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ThumbnailRefusedError(
                f"More than {Image.MAX_IMAGE_PIXELS:,} pixels: refused as a possible "
                "decompression bomb."
            ) from None
        except Exception as error:
            # Decoders fail in many ways on a damaged file (OSError, SyntaxError, ValueError…).
            raise ThumbnailFailedError(f"Not an image the portal can read: {error}") from error


def _render_pdf(data: bytes) -> Image.Image:
    try:
        pdf = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as error:
        raise ThumbnailFailedError(f"Not a PDF the portal can read: {error}") from error
    try:
        if len(pdf) == 0:
            raise ThumbnailFailedError("The PDF has no pages.")
        page = pdf[0]
        width, height = page.get_size()
        if min(width, height) <= 0:
            raise ThumbnailFailedError("The PDF's first page has no size.")
        scale = 2 * THUMBNAIL_SIZE / max(width, height)
        if width * scale * height * scale > PDF_RENDER_MAX_PIXELS:
            raise ThumbnailRefusedError("The PDF's first page would need too many pixels.")
        image = page.render(scale=scale).to_pil().convert("RGB")  # a copy, outliving the PDF
        page.close()
        image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    except pypdfium2.PdfiumError as error:
        raise ThumbnailFailedError(f"The PDF's first page cannot be drawn: {error}") from error
    finally:
        pdf.close()
    return image


def _flattened(image: Image.Image) -> Image.Image:
    transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    return image.convert("RGBA" if transparent else "RGB")


def _encode(image: Image.Image) -> bytes:
    output = io.BytesIO()
    image.save(output, "WEBP", quality=80)
    return output.getvalue()


def _finish(thumbnail: Thumbnail, *, state: str, reason: str = "", **fields: Any) -> str:
    # Conditional on the version: if the file changed meanwhile, the newer request stands.
    Thumbnail.objects.filter(pk=thumbnail.pk, version=thumbnail.version).update(
        state=state, reason=reason[:500], **fields
    )
    return state


def _refuse(thumbnail: Thumbnail, *, reason: str) -> str:
    audit.record(
        actor=SYSTEM,
        action="thumbnail.make",
        outcome=Outcome.REFUSED,
        bucket=thumbnail.bucket,
        key=thumbnail.key,
        message=reason,
    )
    return _finish(thumbnail, state=ThumbnailState.REFUSED, reason=reason)


def _stay_pending(thumbnail: Thumbnail, *, reason: str) -> str:
    # The storage failed: asked for again after ASK_AGAIN_AFTER by the next page that shows it.
    Thumbnail.objects.filter(pk=thumbnail.pk, version=thumbnail.version).update(reason=reason[:500])
    return ThumbnailState.PENDING


def thumbnails_forget(*, bucket: str, keys: Iterable[str] | None = None) -> None:
    """Forget the thumbnails of files the portal deleted (every one of a bucket without keys):
    no page serves them again, and a task removes their images from the storage."""
    rows = Thumbnail.objects.filter(bucket=bucket)
    if keys is not None:
        keys = list(keys)
        if not keys:
            return
        rows = rows.filter(key__in=keys)
    names = list(rows.exclude(storage_name="").values_list("storage_name", flat=True))
    rows.delete()
    if names:
        from sharing import tasks  # tasks call this module

        transaction.on_commit(lambda: tasks.thumbnail_files_delete.enqueue(names=names))


def thumbnail_files_delete(*, names: list[str]) -> None:
    """Remove stored thumbnail images that no row names any more."""
    storage = storages["thumbnails"]
    kept = set(
        Thumbnail.objects.filter(storage_name__in=names).values_list("storage_name", flat=True)
    )
    for name in set(names) - kept:
        with audit.s3_call(
            actor=SYSTEM, action="thumbnail.delete", bucket=settings.THUMBNAILS_BUCKET, key=name
        ):
            storage.delete(name)
