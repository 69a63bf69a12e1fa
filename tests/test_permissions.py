"""Who may do what on which bucket: user and group grants, roles, superusers."""

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.http import Http404
from django.urls import reverse

from sharing import permissions, s3
from sharing.audit import Actor
from sharing.models import BucketGrant, Role
from tests.conftest import audit_rows, client_for


def test_group_grant_gives_access(client, charlie, bucket):
    team = Group.objects.create(name="team")
    charlie.groups.add(team)
    BucketGrant.objects.create(group=team, bucket=bucket, role=Role.WRITE)
    assert permissions.role_for(charlie, bucket) == Role.WRITE
    assert (
        client_for(client, charlie).get(reverse("bucket_detail", args=[bucket])).status_code == 200
    )


def test_best_of_user_and_group_grants_wins(bob, bucket):
    team = Group.objects.create(name="team")
    bob.groups.add(team)
    BucketGrant.objects.create(group=team, bucket=bucket, role=Role.MANAGE)
    assert permissions.role_for(bob, bucket) == Role.MANAGE


def test_superuser_manages_everything(admin_user):
    assert permissions.role_for(admin_user, "any-bucket") == Role.MANAGE
    assert permissions.visible_roles(admin_user) is None


def test_inactive_user_sees_nothing(bob, bucket):
    bob.is_active = False
    assert permissions.visible_roles(bob) == {}


def test_require_raises_404_without_grant_and_records_denial(charlie, bucket):
    with pytest.raises(Http404):
        permissions.require(
            actor=Actor(user=charlie), bucket=bucket, role=Role.READ, action="object.list"
        )
    assert audit_rows(action="object.list") == [("object.list", "event", "denied")]


def test_require_raises_403_for_too_small_a_role(bob, bucket):
    with pytest.raises(PermissionDenied, match="manage"):
        permissions.require(
            actor=Actor(user=bob), bucket=bucket, role=Role.MANAGE, action="bucket.delete"
        )


def test_grant_needs_user_or_group_not_both(db, bob):
    with pytest.raises(IntegrityError), transaction.atomic():
        BucketGrant.objects.create(bucket="x-bucket", role=Role.READ)
    with pytest.raises(IntegrityError), transaction.atomic():
        BucketGrant.objects.create(
            user=bob, group=Group.objects.create(name="g"), bucket="x-bucket"
        )


def test_grants_are_managed_in_admin(client, admin_user, bob, moto_s3):
    s3.create_bucket("granted")
    client_for(client, admin_user)
    response = client.post(
        reverse("admin:sharing_bucketgrant_add"),
        {"user": bob.pk, "bucket": "granted", "role": "write"},
    )
    assert response.status_code == 302
    assert BucketGrant.objects.get(user=bob, bucket="granted").role == Role.WRITE
