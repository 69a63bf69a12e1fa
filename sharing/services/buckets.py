"""Bucket actions and the first administrator."""

import secrets

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.translation import ngettext

from sharing import audit, permissions, s3
from sharing.audit import Actor
from sharing.models import BucketGrant, BucketSettings, Outcome, Role
from sharing.services import grants, links, search_index, thumbnails
from sharing.services.errors import ServiceError

# What a storage without Block Public Access answers when asked to remove it.
NO_BLOCK_CODES = ("NotImplemented", "501", "XNotImplemented")


class BucketError(ServiceError):
    """A bucket request the portal refuses (the storage was not asked, or said nothing wrong)."""


class BucketExistsError(BucketError):
    """The name is taken: by us or, on AWS, by anyone."""


class BucketNotEmptyError(BucketError):
    """The bucket still holds files; it must be emptied first."""


def bucket_create(
    *, actor: Actor, name: str, allow_public: bool = False, abort_incomplete_days: int | None = None
) -> list[str]:
    """Create a bucket, grant its creator the manage role, and return warnings for unmet options."""
    permissions.require_create_bucket(actor=actor, bucket=name)
    if permissions.is_portal_bucket(name):
        message = "That name is kept for the portal's own use."
        audit.record(
            actor=actor, action="bucket.create", outcome=Outcome.REFUSED, bucket=name,
            message=f"name: {message}",
        )  # fmt: skip
        raise BucketExistsError(message, status=409)
    with audit.s3_call(actor=actor, action="bucket.create", bucket=name):
        # On AWS us-east-1 CreateBucket answers 200 for a bucket we already own; without this
        # check anyone allowed to create buckets could claim an existing one.
        if s3.bucket_exists(name):
            raise BucketExistsError("A bucket with that name already exists.", status=409)
        s3.create_bucket(name, allow_acls=allow_public)
    if actor.user is not None:
        grants.grant_set(actor=actor, bucket=name, role=Role.MANAGE, user=actor.user)

    warnings = []
    if allow_public:
        warnings += bucket_set_public_files(actor=actor, name=name, allowed=True)
    if abort_incomplete_days:
        try:
            with audit.s3_call(actor=actor, action="bucket.set_lifecycle", bucket=name) as call:
                s3.abort_incomplete_uploads_after(name, days=abort_incomplete_days)
                call.message = f"Abort unfinished uploads after {abort_incomplete_days} days."
        except s3.S3Error as error:
            warnings.append(
                f"The clean-up rule for unfinished uploads was not set: {error.message}"
            )
    return warnings


def bucket_set_public_files(*, actor: Actor, name: str, allowed: bool) -> list[str]:
    """Allow or forbid public files in a bucket (the portal's own rule); return warnings."""
    permissions.require(actor=actor, bucket=name, role=Role.MANAGE, action="bucket.public_files")
    BucketSettings.objects.update_or_create(bucket=name, defaults={"public_files": allowed})
    audit.record(
        actor=actor,
        action="bucket.public_files",
        outcome=Outcome.SUCCESS,
        bucket=name,
        message=f"Public files {'allowed' if allowed else 'not allowed'} in this bucket.",
    )
    if not allowed:
        return []
    try:
        with audit.s3_call(actor=actor, action="bucket.allow_public", bucket=name) as call:
            try:
                s3.allow_public_access(name)
                call.message = "The storage's Block Public Access removed."
            except s3.S3Error as error:
                if error.code not in NO_BLOCK_CODES:
                    raise
                # SeaweedFS, among others: no block to remove, the portal's setting decides.
                call.message = "The storage does not support Block Public Access."
    except s3.S3Error as error:
        return [
            "Public files are allowed by the portal, but the storage's own Block Public Access "
            f"could not be removed: {error.message}"
        ]
    return []


def bucket_delete(*, actor: Actor, name: str, empty_first: bool = False) -> int:
    """Delete a bucket (emptying it first when asked); return how many files were deleted."""
    permissions.require(actor=actor, bucket=name, role=Role.MANAGE, action="bucket.delete")
    deleted = 0
    if empty_first:
        with audit.s3_call(actor=actor, action="bucket.empty", bucket=name) as call:
            deleted = s3.empty_bucket(name)
            call.message = ngettext("%d file deleted.", "%d files deleted.", deleted) % deleted
        links.forget_deleted(actor=actor, bucket=name)
    with audit.s3_call(actor=actor, action="bucket.delete", bucket=name):
        # Some servers (SeaweedFS by default) delete non-empty buckets: never rely on them refusing.
        if not s3.bucket_is_empty(name):
            raise BucketNotEmptyError(s3.MESSAGES["BucketNotEmpty"], status=409)
        s3.delete_bucket(name)
    links.forget_deleted(actor=actor, bucket=name)
    # Grants and settings must not outlive the bucket: a new bucket of the same name may belong
    # to others. One row per grant, naming its holder and role, so the trail says who lost
    # access; a bucket has a handful of grants, not thousands.
    with transaction.atomic():
        for grant in BucketGrant.objects.filter(bucket=name).select_related("user", "group"):
            grants.grant_delete(actor=actor, grant=grant)
        BucketSettings.objects.filter(bucket=name).delete()
        search_index.index_bucket_dropped(bucket=name)
        thumbnails.thumbnails_forget(bucket=name)
    return deleted


def bucket_is_empty(*, actor: Actor, name: str) -> bool:
    """Return whether the bucket holds no files (manage role), so the right delete form is shown."""
    permissions.require(actor=actor, bucket=name, role=Role.MANAGE, action="bucket.delete")
    with audit.s3_call(actor=actor, action="bucket.check_empty", bucket=name) as call:
        empty = s3.bucket_is_empty(name)
        call.message = "The bucket is empty." if empty else "The bucket holds files."
    return empty


def first_admin_create(*, username: str = "admin") -> str | None:
    """Create the first administrator with a generated password when no user exists; return it."""
    User = get_user_model()
    if User.objects.exists():
        return None
    password = secrets.token_urlsafe(12)
    User.objects.create_superuser(username=username, email="", password=password)
    audit.record(
        actor=Actor.system("runportal"),
        action="user.create_first_admin",
        outcome=Outcome.SUCCESS,
        message=f"First administrator {username!r} created.",
    )
    return password
