"""Who holds what: bucket grants, group membership and active accounts, each change audited.

Every change here is made in one transaction with its audit row, so there is never one without
the other, and a call that changes nothing writes nothing. Callers (the admin site, bucket_create)
decide who may make these changes; these functions only make and record them.
"""

from collections.abc import Iterable

from django.contrib.auth.models import AbstractUser, Group
from django.db import transaction

from sharing import audit
from sharing.audit import Actor
from sharing.models import BucketGrant, Outcome, Role


def _user_name(user: AbstractUser) -> str:
    return f"user {user.get_username()}"


def _holder_name(grant: BucketGrant) -> str:
    return _user_name(grant.user) if grant.user_id else f"group {grant.group.name}"


def _record(*, actor: Actor, action: str, message: str, bucket: str = "") -> None:
    audit.record(
        actor=actor, action=action, outcome=Outcome.SUCCESS, bucket=bucket, message=message
    )


def grant_set(
    *,
    actor: Actor,
    bucket: str,
    role: str,
    user: AbstractUser | None = None,
    group: Group | None = None,
) -> BucketGrant:
    """Give a user or a group a role on a bucket, or change the role they have; return the grant."""
    if (user is None) == (group is None):
        raise ValueError("A grant is held by a user or by a group, not both or neither.")
    if role not in Role.values:
        raise ValueError(f"Unknown role {role!r}.")
    with transaction.atomic():
        # Locked, so that two changes at once each record the role they really replaced.
        grant, created = BucketGrant.objects.select_for_update().get_or_create(
            user=user, group=group, bucket=bucket, defaults={"role": role}
        )
        if created:
            message = f"Granted {_holder_name(grant)} {role} on {bucket}."
            _record(actor=actor, action="grant.create", bucket=bucket, message=message)
        elif grant.role != role:
            old_role, grant.role = grant.role, role
            grant.save(update_fields=["role"])
            message = f"Changed {_holder_name(grant)}'s role on {bucket}: {old_role} → {role}."
            _record(actor=actor, action="grant.change", bucket=bucket, message=message)
    return grant


def grant_delete(*, actor: Actor, grant: BucketGrant) -> bool:
    """Delete a grant; return whether it was still there to delete."""
    with transaction.atomic():
        deleted, _ = BucketGrant.objects.filter(pk=grant.pk).delete()
        if deleted:
            message = f"Removed {_holder_name(grant)}'s {grant.role} role on {grant.bucket}."
            _record(actor=actor, action="grant.delete", bucket=grant.bucket, message=message)
    return bool(deleted)


def _record_membership(*, actor: Actor, user: AbstractUser, group: Group, added: bool) -> None:
    if added:
        message = f"Added {_user_name(user)} to group {group.name}."
    else:
        message = f"Removed {_user_name(user)} from group {group.name}."
    _record(
        actor=actor,
        action="group.member_add" if added else "group.member_remove",
        message=message,
    )


def user_groups_set(*, actor: Actor, user: AbstractUser, groups: Iterable[Group]) -> None:
    """Make a user a member of exactly these groups; record each group added or removed."""
    wanted = {group.pk: group for group in groups}
    with transaction.atomic():
        # The user's row is locked so that two edits at once do not both record the same change.
        type(user).objects.select_for_update().get(pk=user.pk)
        current = {group.pk: group for group in user.groups.order_by("name")}
        added = [group for pk, group in wanted.items() if pk not in current]
        removed = [group for pk, group in current.items() if pk not in wanted]
        user.groups.add(*added)
        user.groups.remove(*removed)
        for group in sorted(added, key=lambda group: group.name):
            _record_membership(actor=actor, user=user, group=group, added=True)
        for group in removed:
            _record_membership(actor=actor, user=user, group=group, added=False)


def group_members_set(*, actor: Actor, group: Group, users: Iterable[AbstractUser]) -> None:
    """Make these users exactly the members of a group; record each user added or removed."""
    wanted = {user.pk: user for user in users}
    with transaction.atomic():
        Group.objects.select_for_update().get(pk=group.pk)
        current = {user.pk: user for user in group.user_set.order_by("pk")}
        added = [user for pk, user in wanted.items() if pk not in current]
        removed = [user for pk, user in current.items() if pk not in wanted]
        group.user_set.add(*added)
        group.user_set.remove(*removed)
        for user in added:
            _record_membership(actor=actor, user=user, group=group, added=True)
        for user in removed:
            _record_membership(actor=actor, user=user, group=group, added=False)


def holder_access_remove(
    *, actor: Actor, user: AbstractUser | None = None, group: Group | None = None
) -> None:
    """Delete every grant and group membership of a user or a group (before it is deleted)."""
    if (user is None) == (group is None):
        raise ValueError("Give a user or a group, not both or neither.")
    # Deleting a user or group would cascade to these rows silently: remove them here, recorded.
    with transaction.atomic():
        # A grant has a user xor a group, so this is exactly the holder's grants.
        held = BucketGrant.objects.filter(user=user, group=group)
        for grant in held.select_related("user", "group").order_by("pk"):
            grant_delete(actor=actor, grant=grant)
        if user is not None:
            user_groups_set(actor=actor, user=user, groups=[])
        else:
            group_members_set(actor=actor, group=group, users=[])


def user_set_active(*, actor: Actor, user: AbstractUser, active: bool) -> bool:
    """Deactivate or reactivate a user; return whether that changed anything."""
    with transaction.atomic():
        # One conditional update: of two calls at once, only the one that changed the row records.
        users = type(user).objects.filter(pk=user.pk).exclude(is_active=active)
        changed = users.update(is_active=active) > 0
        user.is_active = active
        if changed:
            verb = "Reactivated" if active else "Deactivated"
            action = "user.activate" if active else "user.deactivate"
            _record(actor=actor, action=action, message=f"{verb} {_user_name(user)}.")
    return changed
