"""ZIP downloads of a folder or a selection, streamed as they are built, never held whole.

Callers check access first (`folder_archive`, `selection_archive`, or a share link's own rule),
then send `archive_chunks(plan)` as the response body.
"""

import time
from collections.abc import Iterator
from dataclasses import dataclass

import zipstream
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import ngettext

from sharing import audit, permissions, s3
from sharing.audit import Actor
from sharing.models import Outcome, Role
from sharing.services.errors import ServiceError
from sharing.services.objects import check_selection, file_name

ARCHIVE_ACTION = "archive.download"
FILE_ACTION = "archive.file"
FILE_ROWS_BATCH = 200


class ArchiveError(ServiceError):
    """A ZIP download that cannot be made as asked; the message says why."""


class ArchiveTooLargeError(ArchiveError):
    """The files asked for exceed a cap on ZIP downloads (ARCHIVE_MAX_BYTES or ARCHIVE_MAX_FILES)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=413)


@dataclass(frozen=True)
class ArchivePlan:
    """What one ZIP holds: (key, name in the ZIP, size) per file, in the order they are sent."""

    bucket: str
    entries: list[tuple[str, str, int]]
    total_bytes: int
    filename: str
    base: str = ""  # the folder the names are relative to

    @property
    def file_count(self) -> int:
        return len(self.entries)


def archive_plan(
    *, actor: Actor, bucket: str, prefix: str = "", keys: list[str] | None = None, base: str = ""
) -> ArchivePlan:
    """List the files of a folder (or of selected keys) and check them against the caps."""
    if keys is None:
        sizes = _listed(actor=actor, bucket=bucket, prefix=prefix)
    else:
        sizes = _expanded(actor=actor, bucket=bucket, keys=keys)
    entries = [
        (key, key.removeprefix(base) or file_name(key), size)
        for key, size in sizes.items()
        if not key.endswith("/")  # folder markers: the names of the files keep the structure
    ]
    plan = ArchivePlan(
        bucket=bucket,
        entries=entries,
        total_bytes=sum(size for _, _, size in entries),
        filename=f"{file_name(base) if base else bucket}.zip",
        base=base,
    )
    _check_caps(actor=actor, plan=plan)
    return plan


def _listed(*, actor: Actor, bucket: str, prefix: str) -> dict[str, int]:
    with audit.s3_call(actor=actor, action="object.list", bucket=bucket, key=prefix):
        return {item.key: item.size for item in s3.list_keys(bucket, prefix=prefix)}


def _expanded(*, actor: Actor, bucket: str, keys: list[str]) -> dict[str, int]:
    # A selected folder stands for everything under it; a selected file must still exist.
    sizes: dict[str, int] = {}
    for key in dict.fromkeys(keys):
        if key.endswith("/"):
            sizes.update(_listed(actor=actor, bucket=bucket, prefix=key))
            continue
        with audit.s3_call(actor=actor, action="object.head", bucket=bucket, key=key):
            info = s3.head(bucket, key)
            if info is None:
                raise ArchiveError(f"“{file_name(key)}” does not exist (any more).", status=404)
        sizes[key] = info.size
    return sizes


def _check_caps(*, actor: Actor, plan: ArchivePlan) -> None:
    count, total = plan.file_count, plan.total_bytes
    if not count:
        raise ArchiveError("There are no files to download here.", status=404)
    if count > settings.ARCHIVE_MAX_FILES:
        message = (
            f"This download holds {count:,} files; a ZIP download may hold at most "
            f"{settings.ARCHIVE_MAX_FILES:,} files. Download its sub-folders one by one."
        )
    elif total > settings.ARCHIVE_MAX_BYTES:
        message = (
            f"This download holds {filesizeformat(total)}; a ZIP download may hold at most "
            f"{filesizeformat(settings.ARCHIVE_MAX_BYTES)}. Download its sub-folders one by one."
        )
    else:
        return
    audit.record(
        actor=actor,
        action=ARCHIVE_ACTION,
        outcome=Outcome.REFUSED,
        bucket=plan.bucket,
        key=plan.base,
        message=message,
    )
    raise ArchiveTooLargeError(message)


def archive_size(*, plan: ArchivePlan) -> int:
    """Return the length in bytes of the ZIP that `archive_chunks` sends for the plan."""
    return len(_zip_stream(plan, [iter(()) for _ in plan.entries]))


def archive_chunks(*, actor: Actor, plan: ArchivePlan) -> Iterator[bytes]:
    """Yield the ZIP of the plan's files as it is built, reading each file from S3 in chunks."""
    # Readers start reading only when the ZIP reaches their file; each one is closed below, so
    # that a download cut short (GeneratorExit) closes its S3 body and says which file it cut.
    rows = _FileRows()
    readers = [
        _file_chunks(actor=actor, plan=plan, key=key, arcname=arcname, rows=rows)
        for key, arcname, _ in plan.entries
    ]
    stream = _zip_stream(plan, readers)
    with audit.s3_call(
        actor=actor, action=ARCHIVE_ACTION, bucket=plan.bucket, key=plan.base
    ) as call:
        try:
            yield from stream
        finally:
            for reader in readers:
                reader.close()
            rows.flush()
        files = ngettext("%d file", "%d files", plan.file_count) % plan.file_count
        call.message = f"{plan.filename}: {files}, {plan.total_bytes:,} bytes."


def _zip_stream(plan: ArchivePlan, readers: list[Iterator[bytes]]) -> zipstream.ZipStream:
    # Stored, not deflated: most shared files are compressed already, and stored entries of
    # known sizes give the ZIP's length before it is built (Content-Length, a progress bar).
    # zipstream-ng writes UTF-8 names and switches to ZIP64 past 4 GiB on its own.
    stream = zipstream.ZipStream(sized=True)
    for (_, arcname, size), reader in zip(plan.entries, readers, strict=True):
        stream.add(reader, arcname, size=size)
    return stream


class _FileRows:
    """The per-file audit rows of one archive, written a batch at a time."""

    # One insert per small file would take longer than sending it: rows wait for a batch (or a
    # second), and whatever waits is written when the archive ends, completed or cut short.
    def __init__(self) -> None:
        self.pending: list[audit.Event] = []
        self.flushed_at = time.monotonic()

    def add(self, event: audit.Event) -> None:
        self.pending.append(event)
        if len(self.pending) >= FILE_ROWS_BATCH or time.monotonic() - self.flushed_at > 1:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            audit.record_many(self.pending)
            self.pending = []
        self.flushed_at = time.monotonic()


def _file_chunks(
    *, actor: Actor, plan: ArchivePlan, key: str, arcname: str, rows: _FileRows
) -> Iterator[bytes]:
    def row(outcome: str, message: str, error_code: str = "") -> audit.Event:
        text = f"{plan.filename}: {message}"
        return audit.Event(actor, FILE_ACTION, outcome, plan.bucket, key, text, error_code)

    try:
        yield from s3.read_chunks(plan.bucket, key)
    except GeneratorExit:
        message = f"the download stopped before “{arcname}” was sent whole."
        rows.add(row(Outcome.FAILURE, message, "GeneratorExit"))
        raise
    except s3.S3Error as error:
        rows.add(row(Outcome.FAILURE, error.message, error.code))
        raise
    rows.add(row(Outcome.SUCCESS, f"“{arcname}”."))


def folder_archive(*, actor: Actor, bucket: str, prefix: str) -> ArchivePlan:
    """Check read access, then plan the ZIP of a folder (the whole bucket for prefix "")."""
    permissions.require(actor=actor, bucket=bucket, role=Role.READ, action=ARCHIVE_ACTION)
    if prefix and not prefix.endswith("/"):
        raise ArchiveError("Only a folder (a path ending with “/”) downloads as a ZIP.")
    return archive_plan(actor=actor, bucket=bucket, prefix=prefix, base=prefix)


def selection_archive(*, actor: Actor, bucket: str, prefix: str, keys: list[str]) -> ArchivePlan:
    """Check read access and the selection, then plan the ZIP of files and folders chosen in a folder."""
    permissions.require(actor=actor, bucket=bucket, role=Role.READ, action=ARCHIVE_ACTION)
    check_selection(prefix=prefix, keys=keys)
    return archive_plan(actor=actor, bucket=bucket, keys=keys, base=prefix)
