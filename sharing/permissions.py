"""Who may do what on which bucket."""

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404

from sharing import audit
from sharing.audit import Actor
from sharing.models import SHARE_ROLE as SHARE_ROLE  # the links' rule needs it too
from sharing.models import BucketGrant, Outcome, Role

ROLE_RANK = {Role.READ: 1, Role.WRITE: 2, Role.MANAGE: 3}
# What each role may do (the README's table, walked by tests/test_roles.py):
# read: browse, metadata, download, copy out of the bucket;
# write: also upload, create folders, move, rename and delete files, share links and emails;
# manage: also raw presigned URLs (they cannot be revoked), public/private, delete the bucket.
WRITE_ROLE = Role.WRITE
PRESIGN_ROLE = Role.MANAGE
PUBLIC_ROLE = Role.MANAGE
BUCKET_ROLE = Role.MANAGE


def is_portal_bucket(bucket: str) -> bool:
    """Return whether the portal keeps this bucket for itself (thumbnails): hidden from everyone."""
    return bool(settings.THUMBNAILS_BUCKET) and bucket == settings.THUMBNAILS_BUCKET


def allows(role: str | None, needed: str) -> bool:
    """Return whether `role` (None: no access) includes `needed`."""
    return ROLE_RANK.get(role, 0) >= ROLE_RANK[needed]


def visible_roles(user) -> dict[str, str] | None:
    """Return {bucket: best role} for the user, or None when they see every bucket (superuser)."""
    if not (user and user.is_active):
        return {}
    if user.is_superuser:
        return None
    roles: dict[str, str] = {}
    for bucket, role in BucketGrant.objects.reaching(user).values_list("bucket", "role"):
        if ROLE_RANK[role] > ROLE_RANK.get(roles.get(bucket), 0):
            roles[bucket] = role
    return roles


def role_for(user, bucket: str) -> str | None:
    """Return the user's best role on a bucket, or None without access."""
    if is_portal_bucket(bucket):
        return None  # superusers included: its pages answer 404, as for a missing bucket
    roles = visible_roles(user)
    return Role.MANAGE if roles is None else roles.get(bucket)


def can_create_bucket(user) -> bool:
    """Return whether the user may create buckets (superusers, or the create_bucket permission)."""
    return bool(user and user.is_active and user.has_perm("sharing.create_bucket"))


def require(*, actor: Actor, bucket: str, role: str, action: str) -> str:
    """Return the actor's role on the bucket, or record a denial and raise 404 (no access) or 403."""
    granted = role_for(actor.user, bucket)
    if granted is None:
        audit.record(
            actor=actor,
            action=action,
            bucket=bucket,
            outcome=Outcome.DENIED,
            message="No grant on this bucket.",
        )
        # Existence stays hidden: the answer is the same as for a bucket that does not exist.
        raise Http404("No such bucket.")
    if not allows(granted, role):
        audit.record(
            actor=actor,
            action=action,
            bucket=bucket,
            outcome=Outcome.DENIED,
            message=f"Needs the {role} role; has {granted}.",
        )
        raise PermissionDenied(f"This needs the {role} role on {bucket}; you have {granted}.")
    return granted


def require_create_bucket(*, actor: Actor, bucket: str) -> None:
    """Record a denial and raise 403 unless the actor may create buckets."""
    if not can_create_bucket(actor.user):
        audit.record(
            actor=actor,
            action="bucket.create",
            bucket=bucket,
            outcome=Outcome.DENIED,
            message="No permission to create buckets.",
        )
        raise PermissionDenied("You may not create buckets; ask an administrator.")
