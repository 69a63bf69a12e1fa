"""Grants, group membership and active accounts: changed through services, each change audited."""

import boto3
import pytest
from django.contrib.auth.models import Group, User
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from sharing import audit, s3, services
from sharing.audit import Actor
from sharing.models import AuditEvent, BucketGrant, Role
from sharing.services import grants
from tests.conftest import audit_rows, client_for

ACCESS_PREFIXES = ("grant.", "group.", "user.")


def changes() -> list[tuple[str, str, str]]:
    """Return (action, message, actor name) of the access-change rows, oldest first."""
    prefixes = Q()
    for prefix in ACCESS_PREFIXES:
        prefixes |= Q(action__startswith=prefix)
    rows = AuditEvent.objects.filter(prefixes).order_by("id")
    return [(row.action, row.message, row.actor_name) for row in rows]


def admin_actor(admin_user: User) -> Actor:
    return Actor(user=admin_user, name=admin_user.username)


def user_change_data(user: User, *, active: bool | None = None, **changes) -> dict:
    """Return the admin's user change form as it would be shown for this user, with changes."""
    joined = timezone.localtime(user.date_joined)
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "date_joined_0": joined.strftime("%Y-%m-%d"),
        "date_joined_1": joined.strftime("%H:%M:%S"),
        "last_login_0": "",
        "last_login_1": "",
        "groups": [group.pk for group in user.groups.all()],
        "user_permissions": [permission.pk for permission in user.user_permissions.all()],
        **changes,
    }
    # An unticked checkbox is simply not posted.
    if user.is_active if active is None else active:
        data["is_active"] = "on"
    return data


def post_user_change(client, user: User, **changes):
    response = client.post(
        reverse("admin:auth_user_change", args=[user.pk]), user_change_data(user, **changes)
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    return response


# The services


def test_grant_set_creates_a_grant_and_records_it(db, admin_user, bob):
    grant = grants.grant_set(
        actor=admin_actor(admin_user), bucket="reports", role=Role.READ, user=bob
    )
    assert BucketGrant.objects.get(user=bob, bucket="reports") == grant
    assert audit_rows(action="grant.create") == [("grant.create", "event", "success")]
    row = AuditEvent.objects.get(action="grant.create")
    assert (row.bucket, row.actor, row.message) == (
        "reports",
        admin_user,
        "Granted user bob read on reports.",
    )


def test_grant_set_changes_the_role_and_records_old_and_new(db, admin_user, bob):
    actor = admin_actor(admin_user)
    grants.grant_set(actor=actor, bucket="reports", role=Role.READ, user=bob)
    grants.grant_set(actor=actor, bucket="reports", role=Role.WRITE, user=bob)
    assert BucketGrant.objects.get(user=bob, bucket="reports").role == Role.WRITE
    assert changes()[-1] == (
        "grant.change",
        "Changed user bob's role on reports: read → write.",
        "root",
    )
    assert audit_rows(action="grant.change") == [("grant.change", "event", "success")]


def test_grant_set_with_the_same_role_records_nothing(db, admin_user, bob):
    actor = admin_actor(admin_user)
    grants.grant_set(actor=actor, bucket="reports", role=Role.WRITE, user=bob)
    grants.grant_set(actor=actor, bucket="reports", role=Role.WRITE, user=bob)
    assert [action for action, _, _ in changes()] == ["grant.create"]
    assert BucketGrant.objects.filter(user=bob, bucket="reports").count() == 1


def test_group_grant_names_the_group(db, admin_user):
    staff = Group.objects.create(name="staff")
    grants.grant_set(actor=admin_actor(admin_user), bucket="reports", role=Role.MANAGE, group=staff)
    assert BucketGrant.objects.get(group=staff, bucket="reports").role == Role.MANAGE
    assert changes() == [("grant.create", "Granted group staff manage on reports.", "root")]


@pytest.mark.parametrize("holders", ["neither", "both"])
def test_grant_needs_a_user_or_a_group(db, admin_user, bob, holders):
    group = Group.objects.create(name="staff") if holders == "both" else None
    user = bob if holders == "both" else None
    with pytest.raises(ValueError, match="user or by a group"):
        grants.grant_set(
            actor=admin_actor(admin_user), bucket="reports", role="read", user=user, group=group
        )
    assert not BucketGrant.objects.exists()
    assert changes() == []


def test_unknown_role_is_refused(db, admin_user, bob):
    with pytest.raises(ValueError, match="owner"):
        grants.grant_set(actor=admin_actor(admin_user), bucket="reports", role="owner", user=bob)
    assert not BucketGrant.objects.exists()
    assert changes() == []


def test_grant_delete_records_holder_and_role_once(db, admin_user, bob):
    grant = BucketGrant.objects.create(user=bob, bucket="reports", role=Role.WRITE)
    actor = admin_actor(admin_user)
    assert grants.grant_delete(actor=actor, grant=grant) is True
    assert grants.grant_delete(actor=actor, grant=grant) is False  # already gone: no row
    assert not BucketGrant.objects.exists()
    assert changes() == [("grant.delete", "Removed user bob's write role on reports.", "root")]
    assert AuditEvent.objects.get(action="grant.delete").bucket == "reports"


def test_a_change_whose_audit_row_fails_is_rolled_back(db, admin_user, bob, monkeypatch):
    grant = BucketGrant.objects.create(user=bob, bucket="reports", role=Role.READ)
    staff = Group.objects.create(name="staff")

    def broken_record(**fields) -> None:
        raise RuntimeError("the audit table is unavailable")

    monkeypatch.setattr(audit, "record", broken_record)
    actor = admin_actor(admin_user)
    with pytest.raises(RuntimeError):
        grants.grant_set(actor=actor, bucket="reports", role=Role.MANAGE, user=bob)
    with pytest.raises(RuntimeError):
        grants.grant_set(actor=actor, bucket="other", role=Role.READ, user=bob)
    with pytest.raises(RuntimeError):
        grants.grant_delete(actor=actor, grant=grant)
    with pytest.raises(RuntimeError):
        grants.user_groups_set(actor=actor, user=bob, groups=[staff])
    with pytest.raises(RuntimeError):
        grants.user_set_active(actor=actor, user=bob, active=False)
    assert list(BucketGrant.objects.values_list("bucket", "role")) == [("reports", "read")]
    assert not bob.groups.exists()
    assert User.objects.get(pk=bob.pk).is_active


def test_user_groups_set_records_each_group_added_and_removed(db, admin_user, bob):
    staff, auditors, ops = (
        Group.objects.create(name=name) for name in ("staff", "auditors", "ops")
    )
    bob.groups.add(ops)
    actor = admin_actor(admin_user)
    grants.user_groups_set(actor=actor, user=bob, groups=[staff, auditors])
    assert set(bob.groups.all()) == {staff, auditors}
    assert changes() == [
        ("group.member_add", "Added user bob to group auditors.", "root"),
        ("group.member_add", "Added user bob to group staff.", "root"),
        ("group.member_remove", "Removed user bob from group ops.", "root"),
    ]
    grants.user_groups_set(actor=actor, user=bob, groups=[auditors, staff])  # the same groups
    assert len(changes()) == 3


def test_group_members_set_records_each_user_added_and_removed(db, admin_user, bob, charlie):
    staff = Group.objects.create(name="staff")
    charlie.groups.add(staff)
    grants.group_members_set(actor=admin_actor(admin_user), group=staff, users=[bob])
    assert list(staff.user_set.all()) == [bob]
    assert changes() == [
        ("group.member_add", "Added user bob to group staff.", "root"),
        ("group.member_remove", "Removed user charlie from group staff.", "root"),
    ]


def test_user_set_active_records_deactivation_and_reactivation(db, admin_user, bob):
    actor = admin_actor(admin_user)
    assert grants.user_set_active(actor=actor, user=bob, active=False) is True
    assert not User.objects.get(pk=bob.pk).is_active
    assert grants.user_set_active(actor=actor, user=bob, active=False) is False
    assert grants.user_set_active(actor=actor, user=bob, active=True) is True
    assert User.objects.get(pk=bob.pk).is_active
    assert changes() == [
        ("user.deactivate", "Deactivated user bob.", "root"),
        ("user.activate", "Reactivated user bob.", "root"),
    ]
    assert audit_rows(action="user.deactivate") == [("user.deactivate", "event", "success")]


def test_bucket_create_records_the_creators_manage_grant(alice, bucket):
    assert BucketGrant.objects.get(user=alice, bucket=bucket).role == Role.MANAGE
    row = AuditEvent.objects.get(action="grant.create")
    assert (row.bucket, row.actor, row.outcome, row.message) == (
        bucket,
        alice,
        "success",
        "Granted user alice manage on team-files.",
    )


def test_bucket_create_upgrades_a_stale_grant_of_the_creator(alice, moto_s3):
    BucketGrant.objects.create(user=alice, bucket="reused-name", role=Role.READ)
    services.bucket_create(actor=Actor(user=alice, name="alice"), name="reused-name")
    assert BucketGrant.objects.get(user=alice, bucket="reused-name").role == Role.MANAGE
    assert changes() == [
        ("grant.change", "Changed user alice's role on reused-name: read → manage.", "alice")
    ]


def test_bucket_delete_records_each_grant_it_removes(alice, bob, bucket):
    staff = Group.objects.create(name="staff")
    BucketGrant.objects.create(group=staff, bucket=bucket, role=Role.WRITE)
    services.bucket_delete(actor=Actor(user=alice, name="alice"), name=bucket)
    assert not BucketGrant.objects.filter(bucket=bucket).exists()
    removed = sorted(message for action, message, _ in changes() if action == "grant.delete")
    assert removed == [
        "Removed group staff's write role on team-files.",
        "Removed user alice's manage role on team-files.",
        "Removed user bob's read role on team-files.",
    ]
    assert set(
        AuditEvent.objects.filter(action="grant.delete").values_list("actor_name", "bucket")
    ) == {("alice", bucket)}


# The admin site


@pytest.fixture
def granted(moto_s3) -> str:
    """A bucket in the storage, with no grant yet."""
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="granted")
    return "granted"


def test_admin_adds_a_grant_and_records_it(client, admin_user, bob, granted):
    client_for(client, admin_user)
    response = client.post(
        reverse("admin:sharing_bucketgrant_add"),
        {"user": bob.pk, "group": "", "bucket": "granted", "role": "write"},
    )
    assert response.status_code == 302
    assert BucketGrant.objects.get(user=bob, bucket="granted").role == Role.WRITE
    assert changes() == [("grant.create", "Granted user bob write on granted.", "root")]
    assert AuditEvent.objects.get(action="grant.create").client_ip == "127.0.0.1"


def test_admin_refuses_a_second_grant_for_the_same_holder_and_bucket(
    client, admin_user, bob, granted
):
    BucketGrant.objects.create(user=bob, bucket="granted", role=Role.READ)
    client_for(client, admin_user)
    response = client.post(
        reverse("admin:sharing_bucketgrant_add"),
        {"user": bob.pk, "group": "", "bucket": "granted", "role": "manage"},
    )
    assert response.status_code == 200  # the form again, with the error
    assert BucketGrant.objects.get(user=bob, bucket="granted").role == Role.READ
    assert changes() == []


def test_admin_grant_form_offers_the_buckets_of_the_storage(client, admin_user, granted):
    response = client_for(client, admin_user).get(reverse("admin:sharing_bucketgrant_add"))
    assert response.status_code == 200
    assert response.context["adminform"].form.fields["bucket"].choices == [
        ("", "---------"),
        ("granted", "granted"),
    ]
    # Listed through the gateway, audited as every listing is.
    assert audit_rows(action="bucket.list") == [
        ("bucket.list", "intent", "pending"),
        ("bucket.list", "outcome", "success"),
    ]


def test_admin_refuses_a_grant_on_a_bucket_that_does_not_exist(client, admin_user, bob, granted):
    response = client_for(client, admin_user).post(
        reverse("admin:sharing_bucketgrant_add"),
        {"user": bob.pk, "group": "", "bucket": "no-such-bucket", "role": "read"},
    )
    assert response.status_code == 200  # the form again, with the error
    assert "Select a valid choice" in response.content.decode()
    assert not BucketGrant.objects.exists()
    assert changes() == []


def test_admin_grant_form_says_when_the_storage_is_unavailable(
    client, admin_user, bob, moto_s3, monkeypatch
):
    def unavailable():
        raise s3.S3Error("The storage service is unavailable.", status=503, code="Unavailable")

    monkeypatch.setattr(s3, "list_buckets", unavailable)
    client_for(client, admin_user)
    page = client.get(reverse("admin:sharing_bucketgrant_add"))
    assert page.status_code == 200
    assert "The buckets cannot be listed right now" in page.content.decode()
    response = client.post(
        reverse("admin:sharing_bucketgrant_add"),
        {"user": bob.pk, "group": "", "bucket": "granted", "role": "read"},
    )
    assert response.status_code == 200
    assert "The buckets cannot be listed right now" in response.content.decode()
    assert not BucketGrant.objects.exists()


def test_admin_edits_a_grant_whose_bucket_vanished_without_asking_the_storage(
    client, admin_user, bob, moto_s3
):
    grant = BucketGrant.objects.create(user=bob, bucket="vanished", role=Role.READ)
    client_for(client, admin_user)
    url = reverse("admin:sharing_bucketgrant_change", args=[grant.pk])
    assert client.get(url).status_code == 200
    assert client.post(url, {"role": "write"}).status_code == 302
    assert BucketGrant.objects.get(pk=grant.pk).role == Role.WRITE
    assert audit_rows(action="bucket.list") == []


def test_admin_changes_a_role_and_records_old_and_new(client, admin_user, bob):
    grant = BucketGrant.objects.create(user=bob, bucket="granted", role=Role.READ)
    client_for(client, admin_user)
    url = reverse("admin:sharing_bucketgrant_change", args=[grant.pk])
    # Holder and bucket are read-only on the change form: a posted bucket is ignored.
    response = client.post(url, {"bucket": "elsewhere", "role": "manage"})
    assert response.status_code == 302
    assert list(BucketGrant.objects.values_list("bucket", "role")) == [("granted", "manage")]
    assert changes() == [
        ("grant.change", "Changed user bob's role on granted: read → manage.", "root")
    ]
    assert client.post(url, {"role": "manage"}).status_code == 302  # saved unchanged
    assert len(changes()) == 1


def test_admin_deletes_a_grant_and_records_it(client, admin_user, bob):
    grant = BucketGrant.objects.create(user=bob, bucket="granted", role=Role.READ)
    client_for(client, admin_user)
    response = client.post(
        reverse("admin:sharing_bucketgrant_delete", args=[grant.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert not BucketGrant.objects.exists()
    assert changes() == [("grant.delete", "Removed user bob's read role on granted.", "root")]


def test_admin_bulk_delete_records_each_grant(client, admin_user, bob, charlie):
    staff = Group.objects.create(name="staff")
    kept = BucketGrant.objects.create(user=charlie, bucket="kept", role=Role.READ)
    selected = [
        BucketGrant.objects.create(user=bob, bucket="one", role=Role.READ).pk,
        BucketGrant.objects.create(group=staff, bucket="two", role=Role.MANAGE).pk,
    ]
    client_for(client, admin_user)
    response = client.post(
        reverse("admin:sharing_bucketgrant_changelist"),
        {"action": "delete_selected", "_selected_action": selected, "post": "yes"},
    )
    assert response.status_code == 302
    assert list(BucketGrant.objects.all()) == [kept]
    assert sorted(message for _, message, _ in changes()) == [
        "Removed group staff's manage role on two.",
        "Removed user bob's read role on one.",
    ]
    assert audit_rows(action="grant.delete") == [("grant.delete", "event", "success")] * 2


def test_admin_user_form_adds_and_removes_groups_through_the_service(client, admin_user, bob):
    staff, ops = Group.objects.create(name="staff"), Group.objects.create(name="ops")
    bob.groups.add(ops)
    client_for(client, admin_user)
    post_user_change(client, bob, groups=[staff.pk])
    assert list(bob.groups.all()) == [staff]
    assert changes() == [
        ("group.member_add", "Added user bob to group staff.", "root"),
        ("group.member_remove", "Removed user bob from group ops.", "root"),
    ]
    post_user_change(client, bob, first_name="Bob")  # groups as they are
    assert User.objects.get(pk=bob.pk).first_name == "Bob"
    assert len(changes()) == 2


def test_admin_deactivates_and_reactivates_a_user(client, admin_user, bob):
    client_for(client, admin_user)
    post_user_change(client, bob, active=False, first_name="Bob")
    bob.refresh_from_db()
    assert (bob.is_active, bob.first_name) == (False, "Bob")  # the rest of the form saved too
    assert changes() == [("user.deactivate", "Deactivated user bob.", "root")]
    post_user_change(client, bob, last_name="Builder")  # still inactive: nothing recorded
    assert len(changes()) == 1
    post_user_change(client, bob, active=True)
    assert User.objects.get(pk=bob.pk).is_active
    assert changes()[-1] == ("user.activate", "Reactivated user bob.", "root")


def test_admin_deleting_a_user_records_the_grants_and_groups_it_removes(client, admin_user, bob):
    staff = Group.objects.create(name="staff")
    bob.groups.add(staff)
    BucketGrant.objects.create(user=bob, bucket="granted", role=Role.WRITE)
    client_for(client, admin_user)
    response = client.post(reverse("admin:auth_user_delete", args=[bob.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not User.objects.filter(username="bob").exists()
    assert changes() == [
        ("grant.delete", "Removed user bob's write role on granted.", "root"),
        ("group.member_remove", "Removed user bob from group staff.", "root"),
    ]


def test_admin_bulk_deleting_groups_records_their_grants_and_members(
    client, admin_user, bob, charlie
):
    staff = Group.objects.create(name="staff")
    staff.user_set.add(bob, charlie)
    BucketGrant.objects.create(group=staff, bucket="granted", role=Role.READ)
    client_for(client, admin_user)
    response = client.post(
        reverse("admin:auth_group_changelist"),
        {"action": "delete_selected", "_selected_action": [staff.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Group.objects.exists()
    assert changes() == [
        ("grant.delete", "Removed group staff's read role on granted.", "root"),
        ("group.member_remove", "Removed user bob from group staff.", "root"),
        ("group.member_remove", "Removed user charlie from group staff.", "root"),
    ]
