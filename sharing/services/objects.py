"""File actions: download links, folders, copy, move, rename and delete."""

import logging
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from sharing import audit, permissions, s3, selectors
from sharing.audit import Actor
from sharing.keys import clean_key
from sharing.models import Role
from sharing.services import links, search_index, thumbnails
from sharing.services.errors import ServiceError

logger = logging.getLogger(__name__)
DOWNLOAD_SECONDS = 60  # the redirect is followed at once; a short URL is useless if it leaks


class ObjectError(ServiceError):
    """A file or folder action that cannot be carried out as asked; the message says why."""


class ObjectExistsError(ObjectError):
    """The destination already holds a file and the person did not ask to overwrite it."""

    def __init__(self, keys: list[str]) -> None:
        super().__init__(f"{len(keys)} files already exist at the destination.", status=409)
        self.keys = keys


@dataclass(frozen=True)
class TransferResult:
    copied: int
    deleted: int
    warning: str = ""


def file_name(key: str) -> str:
    """Return the last part of a key, the name a download is saved under."""
    return key.rstrip("/").rsplit("/", 1)[-1]


def object_download_url(*, actor: Actor, bucket: str, key: str) -> str:
    """Check access and existence, then return a 60-second attachment URL for the file."""
    permissions.require(actor=actor, bucket=bucket, role=Role.READ, action="object.download")
    with audit.s3_call(actor=actor, action="object.download", bucket=bucket, key=key):
        if s3.head(bucket, key) is None:
            raise ObjectError(s3.MESSAGES["NoSuchKey"], status=404)
        return s3.presigned_get(bucket, key, filename=file_name(key), seconds=DOWNLOAD_SECONDS)


def folder_create(*, actor: Actor, bucket: str, prefix: str, name: str) -> str:
    """Create an empty folder (a 0-byte '…/' marker) in a folder; return its prefix."""
    permissions.require(actor=actor, bucket=bucket, role=Role.WRITE, action="folder.create")
    key = clean_key(f"{prefix}{name.strip().strip('/')}/", folder=True)
    with audit.s3_call(actor=actor, action="folder.create", bucket=bucket, key=key):
        if s3.list_page(bucket, prefix=key, size=1).objects or s3.head(bucket, key):
            raise ObjectError("A folder with that name already exists.", status=409)
        s3.put_empty(bucket, key)
    search_index.index_put(bucket=bucket, key=key, size=0)
    selectors.bucket_usage_forget(bucket=bucket)
    return key


def _check_transfer(*, actor: Actor, bucket: str, dst_bucket: str, move: bool, action: str) -> None:
    permissions.require(
        actor=actor, bucket=bucket, role=Role.WRITE if move else Role.READ, action=action
    )
    permissions.require(actor=actor, bucket=dst_bucket, role=Role.WRITE, action=action)


def _copy_one(
    *, actor: Actor, bucket: str, key: str, dst_bucket: str, dst_key: str, size: int | None = None
) -> None:
    with audit.s3_call(actor=actor, action="object.copy", bucket=dst_bucket, key=dst_key) as call:
        call.message = f"From {bucket}/{key}."
        if key.endswith("/"):
            # A folder marker holds nothing, and SeaweedFS (whose folders are directories) answers
            # NoSuchKey to a CopyObject of one: make a new marker at the destination instead.
            s3.put_empty(dst_bucket, dst_key)
        else:
            s3.copy(bucket, key, dst_bucket, dst_key, size=size)
    search_index.index_copied(bucket=bucket, key=key, dst_bucket=dst_bucket, dst_key=dst_key)
    selectors.bucket_usage_forget(bucket=dst_bucket)


def _delete_one(*, actor: Actor, bucket: str, key: str) -> None:
    with audit.s3_call(actor=actor, action="object.delete", bucket=bucket, key=key):
        s3.delete(bucket, key)
    search_index.index_removed(bucket=bucket, keys=[key])
    thumbnails.thumbnails_forget(bucket=bucket, keys=[key])
    _forget_public_reads(actor=actor, bucket=bucket, keys=[key])
    links.forget_deleted(actor=actor, bucket=bucket, keys=[key])
    selectors.bucket_usage_forget(bucket=bucket)


def _forget_public_reads(*, actor: Actor, bucket: str, keys: list[str]) -> None:
    # A public-read policy statement outlives its file: a new file under the same name would
    # be public at once. Failing here must not undo the delete; the audit row keeps the trace.
    if not keys:
        return
    try:
        with audit.s3_call(actor=actor, action="bucket.policy_cleanup", bucket=bucket) as call:
            removed = s3.revoke_public_reads(bucket, keys)
            call.message = f"{len(removed)} public-read statements of deleted files removed."
    except s3.S3Error:
        logger.warning("policy clean-up failed bucket=%s keys=%d", bucket, len(keys))


def object_copy(
    *,
    actor: Actor,
    bucket: str,
    key: str,
    dst_bucket: str,
    dst_key: str,
    move: bool = False,
    overwrite: bool = False,
) -> TransferResult:
    """Copy (or move: copy, then delete the original) one file to any bucket the actor may write."""
    action = "object.move" if move else "object.copy"
    _check_transfer(actor=actor, bucket=bucket, dst_bucket=dst_bucket, move=move, action=action)
    dst_key = clean_key(dst_key)
    if (bucket, key) == (dst_bucket, dst_key):
        raise ValidationError("The destination is the file itself; choose another name or bucket.")
    with audit.s3_call(actor=actor, action="object.head", bucket=dst_bucket, key=dst_key):
        exists = s3.head(dst_bucket, dst_key) is not None
    if exists and not overwrite:
        raise ObjectExistsError([dst_key])
    _copy_one(actor=actor, bucket=bucket, key=key, dst_bucket=dst_bucket, dst_key=dst_key)
    if not move:
        return TransferResult(copied=1, deleted=0)
    try:
        _delete_one(actor=actor, bucket=bucket, key=key)
    except s3.S3Error as error:
        warning = f"The copy was made, but the original could not be deleted: {error.message}"
        return TransferResult(copied=1, deleted=0, warning=warning)
    return TransferResult(copied=1, deleted=1)


def folder_transfer_plan(
    *,
    actor: Actor,
    bucket: str,
    prefix: str,
    dst_bucket: str,
    dst_prefix: str,
    move: bool,
    overwrite: bool = False,
) -> list[tuple[str, str]]:
    """Check a folder copy or move and return its (source key, destination key) pairs."""
    action = "folder.move" if move else "folder.copy"
    dst_prefix = _destination(
        actor=actor, bucket=bucket, dst_bucket=dst_bucket, dst_prefix=dst_prefix, move=move,
        action=action,
    )  # fmt: skip
    if bucket == dst_bucket and dst_prefix.startswith(prefix):
        raise ValidationError("A folder cannot be copied or moved into itself.")
    with audit.s3_call(actor=actor, action="object.list", bucket=bucket, key=prefix):
        sources = [item.key for item in s3.list_keys(bucket, prefix=prefix)]
    return _plan(
        actor=actor, sources=sources, cut=len(prefix), dst_bucket=dst_bucket,
        dst_prefix=dst_prefix, overwrite=overwrite,
    )  # fmt: skip


def selection_transfer_plan(
    *,
    actor: Actor,
    bucket: str,
    prefix: str,
    keys: list[str],
    dst_bucket: str,
    dst_prefix: str,
    move: bool,
    overwrite: bool = False,
) -> list[tuple[str, str]]:
    """Check a copy or move of files and folders selected in one folder into another folder."""
    action = "object.move" if move else "object.copy"
    dst_prefix = _destination(
        actor=actor, bucket=bucket, dst_bucket=dst_bucket, dst_prefix=dst_prefix, move=move,
        action=action,
    )  # fmt: skip
    check_selection(prefix=prefix, keys=keys)
    if bucket == dst_bucket and dst_prefix == prefix:
        raise ValidationError("That is the folder they are in; choose another folder or bucket.")
    if bucket == dst_bucket and any(
        key.endswith("/") and dst_prefix.startswith(key) for key in keys
    ):
        raise ValidationError("A folder cannot be copied or moved into itself.")
    sources = _expand(actor=actor, bucket=bucket, keys=keys)
    return _plan(
        actor=actor, sources=sources, cut=len(prefix), dst_bucket=dst_bucket,
        dst_prefix=dst_prefix, overwrite=overwrite,
    )  # fmt: skip


def _destination(
    *, actor: Actor, bucket: str, dst_bucket: str, dst_prefix: str, move: bool, action: str
) -> str:
    """Check a copy or move between the buckets; return the destination folder, normalised."""
    _check_transfer(actor=actor, bucket=bucket, dst_bucket=dst_bucket, move=move, action=action)
    return clean_key(dst_prefix, folder=True) if dst_prefix else ""


def check_selection(*, prefix: str, keys: list[str]) -> None:
    """Refuse an empty selection, or one reaching outside the folder it was made in."""
    if not keys:
        raise ValidationError("Select at least one file or folder.")
    if any(not key.startswith(prefix) or key == prefix for key in keys):
        raise ValidationError("The selection must be inside the folder it was made in.")


def _expand(*, actor: Actor, bucket: str, keys: list[str]) -> list[str]:
    # A selected folder stands for everything under it, its marker and sub-folders included.
    found: list[str] = []
    for key in keys:
        if not key.endswith("/"):
            found.append(key)
            continue
        with audit.s3_call(actor=actor, action="object.list", bucket=bucket, key=key):
            found += [item.key for item in s3.list_keys(bucket, prefix=key)]
    return list(dict.fromkeys(found))


def _plan(
    *, actor: Actor, sources: list[str], cut: int, dst_bucket: str, dst_prefix: str, overwrite: bool
) -> list[tuple[str, str]]:
    with audit.s3_call(actor=actor, action="object.list", bucket=dst_bucket, key=dst_prefix):
        existing = {item.key for item in s3.list_keys(dst_bucket, prefix=dst_prefix)}
    plan = [(key, dst_prefix + key[cut:]) for key in sources]
    for _, dst_key in plan:
        clean_key(dst_key, folder=dst_key.endswith("/"))
    # An empty folder marker made again loses nothing: only files are asked about.
    clashes = [dst_key for _, dst_key in plan if dst_key in existing and not dst_key.endswith("/")]
    if clashes and not overwrite:
        raise ObjectExistsError(clashes)
    return plan


def objects_delete(*, actor: Actor, bucket: str, keys: list[str]) -> s3.DeleteResult:
    """Delete the given files (batches of 1000), one audit pair per file."""
    permissions.require(actor=actor, bucket=bucket, role=Role.WRITE, action="object.delete")
    # SeaweedFS ignores the delete of a folder marker ("docs/") while the folder still holds
    # files, yet answers that it deleted it: delete what is in a folder before the folder.
    # In reverse key order, every key comes after all the keys it is a prefix of.
    keys = sorted(keys, reverse=True)
    deleted: list[str] = []
    failed: dict[str, str] = {}
    for start in range(0, len(keys), s3.core.DELETE_BATCH):
        batch_keys = keys[start : start + s3.core.DELETE_BATCH]
        with audit.s3_batch(
            actor=actor, action="object.delete", bucket=bucket, keys=batch_keys
        ) as batch:
            result = s3.delete_many(bucket, batch_keys)
            batch.failed = result.failed
        deleted += result.deleted
        failed.update(result.failed)
    search_index.index_removed(bucket=bucket, keys=deleted)
    thumbnails.thumbnails_forget(bucket=bucket, keys=deleted)
    _forget_public_reads(actor=actor, bucket=bucket, keys=deleted)
    links.forget_deleted(actor=actor, bucket=bucket, keys=deleted)
    selectors.bucket_usage_forget(bucket=bucket)
    return s3.DeleteResult(deleted=deleted, failed=failed)


def selection_delete_plan(*, actor: Actor, bucket: str, prefix: str, keys: list[str]) -> list[str]:
    """Check a delete of files and folders selected in one folder; return every key it deletes."""
    permissions.require(actor=actor, bucket=bucket, role=Role.WRITE, action="object.delete")
    check_selection(prefix=prefix, keys=keys)
    return _expand(actor=actor, bucket=bucket, keys=keys)


def selection_delete(*, actor: Actor, bucket: str, prefix: str, keys: list[str]) -> s3.DeleteResult:
    """Delete the files and folders selected in one folder (a folder: everything under it)."""
    plan = selection_delete_plan(actor=actor, bucket=bucket, prefix=prefix, keys=keys)
    return objects_delete(actor=actor, bucket=bucket, keys=plan)


def folder_delete_plan(*, actor: Actor, bucket: str, prefix: str) -> list[str]:
    """Check a folder delete; return every key under the folder, its marker included."""
    permissions.require(actor=actor, bucket=bucket, role=Role.WRITE, action="folder.delete")
    if not prefix.endswith("/"):
        raise ValidationError("Only a folder (a path ending with “/”) can be deleted this way.")
    with audit.s3_call(actor=actor, action="object.list", bucket=bucket, key=prefix):
        return [item.key for item in s3.list_keys(bucket, prefix=prefix)]


def folder_delete(*, actor: Actor, bucket: str, prefix: str) -> s3.DeleteResult:
    """Delete a folder: every file under its prefix, the folder marker included."""
    keys = folder_delete_plan(actor=actor, bucket=bucket, prefix=prefix)
    return objects_delete(actor=actor, bucket=bucket, keys=keys)
