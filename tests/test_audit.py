"""The audit trail: intent before the call, outcome after, hash chain, read-only admin, CSV."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from sharing import audit, s3
from sharing.audit import Actor
from sharing.models import AuditEvent, Outcome
from tests.conftest import audit_rows, client_for


def test_intent_is_committed_before_the_call(alice):
    seen_during_call = []
    with audit.s3_call(actor=Actor(user=alice), action="bucket.list"):
        seen_during_call = audit_rows()
    assert seen_during_call == [("bucket.list", "intent", "pending")]
    assert audit_rows() == [
        ("bucket.list", "intent", "pending"),
        ("bucket.list", "outcome", "success"),
    ]


def test_s3_failure_leaves_failure_row_with_code(alice):
    with pytest.raises(s3.S3Error):
        with audit.s3_call(
            actor=Actor(user=alice, ip="10.0.0.7", user_agent="pytest"),
            action="bucket.delete",
            bucket="b1",
        ):
            raise s3.S3Error("nope", status=409, code="BucketNotEmpty", request_id="REQ123")
    row = AuditEvent.objects.order_by("id").last()
    assert (row.phase, row.outcome, row.error_code, row.request_id) == (
        "outcome",
        "failure",
        "BucketNotEmpty",
        "REQ123",
    )
    assert (row.actor, row.client_ip, row.user_agent, row.bucket) == (
        alice,
        "10.0.0.7",
        "pytest",
        "b1",
    )
    assert row.duration_ms is not None


def test_unexpected_error_still_leaves_failure_row(alice):
    with pytest.raises(ZeroDivisionError):
        with audit.s3_call(actor=Actor(user=alice), action="bucket.create", bucket="b2"):
            1 / 0  # noqa: B018
    assert audit_rows()[-1] == ("bucket.create", "outcome", "failure")
    assert AuditEvent.objects.order_by("id").last().error_code == "ZeroDivisionError"


def test_outcome_row_carries_request_id(alice, moto_s3):
    with audit.s3_call(actor=Actor(user=alice), action="bucket.list"):
        s3.list_buckets()
    assert AuditEvent.objects.order_by("id").last().request_id


def test_chain_verifies_when_untouched(alice):
    for action in ("a", "b", "c"):
        audit.record(actor=Actor(user=alice), action=action, outcome=Outcome.SUCCESS)
    assert audit.verify() == []
    call_command("audit_verify")


def test_edited_row_is_detected(alice):
    for action in ("a", "b", "c"):
        audit.record(actor=Actor(user=alice), action=action, outcome=Outcome.SUCCESS)
    middle = AuditEvent.objects.get(action="b")
    AuditEvent.objects.filter(pk=middle.pk).update(outcome=Outcome.FAILURE)
    assert audit.verify() == [f"row {middle.pk}: its contents were changed"]
    with pytest.raises(CommandError):
        call_command("audit_verify")


def test_deleted_row_is_detected(alice):
    for action in ("a", "b", "c"):
        audit.record(actor=Actor(user=alice), action=action, outcome=Outcome.SUCCESS)
    AuditEvent.objects.filter(action="b").delete()
    last = AuditEvent.objects.get(action="c")
    assert audit.verify() == [f"row {last.pk}: the row before it was deleted or changed"]


def test_deleted_newest_row_is_detected(alice):
    for action in ("a", "b"):
        audit.record(actor=Actor(user=alice), action=action, outcome=Outcome.SUCCESS)
    AuditEvent.objects.filter(action="b").delete()
    assert audit.verify() and "newest rows" in audit.verify()[0]


def test_reconcile_closes_stale_intents(alice, monkeypatch):
    with pytest.raises(KeyboardInterrupt):
        with audit.s3_call(actor=Actor(user=alice), action="bucket.create", bucket="b"):
            # A crash after the intent: simulate by dropping the outcome row afterwards.
            raise KeyboardInterrupt
    AuditEvent.objects.filter(phase="outcome").delete()
    assert audit.reconcile(older_than_seconds=0) == 1
    assert audit_rows()[-1] == ("bucket.create", "outcome", "unknown")
    assert audit.reconcile(older_than_seconds=0) == 0


def test_admin_changelist_is_read_only(client, admin_user, alice):
    audit.record(actor=Actor(user=alice), action="login", outcome=Outcome.SUCCESS, bucket="x")
    row = AuditEvent.objects.get(action="login", actor=alice)
    client_for(client, admin_user)
    changelist = client.get(reverse("admin:sharing_auditevent_changelist"))
    assert changelist.status_code == 200
    assert b"Add audit event" not in changelist.content
    for filter_name in (b"By action", b"By outcome", b"By actor", b"By bucket", b"By created at"):
        assert filter_name in changelist.content
    assert client.get(reverse("admin:sharing_auditevent_add")).status_code == 403
    assert client.get(reverse("admin:sharing_auditevent_delete", args=[row.pk])).status_code == 403
    detail = client.get(reverse("admin:sharing_auditevent_change", args=[row.pk]))
    assert detail.status_code == 200 and b'name="_save"' not in detail.content
    assert (
        client.post(
            reverse("admin:sharing_auditevent_change", args=[row.pk]), {"outcome": "failure"}
        ).status_code
        == 403
    )
    assert AuditEvent.objects.get(pk=row.pk).outcome == "success"


def test_admin_key_search_and_filter(client, admin_user, alice):
    audit.record(
        actor=Actor(user=alice),
        action="object.get",
        outcome="success",
        bucket="b",
        key="reports/q1.pdf",
    )
    audit.record(
        actor=Actor(user=alice), action="object.get", outcome="failure", bucket="b", key="other.txt"
    )
    client_for(client, admin_user)
    url = reverse("admin:sharing_auditevent_changelist")
    found = client.get(url, {"q": "q1"}).content
    assert b"reports/q1.pdf" in found and b"other.txt" not in found
    failed = client.get(url, {"outcome__exact": "failure"}).content
    assert b"other.txt" in failed and b"reports/q1.pdf" not in failed


def test_csv_export_neutralises_formulas(client, admin_user, alice):
    audit.record(
        actor=Actor(user=alice), action="object.get", outcome="success", key="=HYPERLINK(1)"
    )
    client_for(client, admin_user)
    response = client.post(
        reverse("admin:sharing_auditevent_changelist"),
        {
            "action": "export_csv",
            "_selected_action": list(AuditEvent.objects.values_list("pk", flat=True)),
        },
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    text = response.content.decode()
    assert "'=HYPERLINK(1)" in text and ",=HYPERLINK" not in text


def test_member_cannot_open_audit_admin(client, alice):
    response = client_for(client, alice).get(reverse("admin:sharing_auditevent_changelist"))
    assert response.status_code == 302  # to the login page: not staff


def test_nul_in_a_refused_name_is_recorded_visibly(alice):
    audit.record(
        actor=Actor(user=alice), action="upload.start", outcome=Outcome.DENIED, key="a\x00.jpg"
    )
    row = AuditEvent.objects.get(action="upload.start")
    assert row.key == "a\\x00.jpg"
    assert audit.verify() == []


def test_ipv6_address_in_any_spelling_keeps_the_chain_intact(db):
    for address in ("2001:DB8:0:0:0:0:0:1", "::ffff:192.0.2.1", "198.51.100.7"):
        audit.record(actor=Actor(ip=address, name="x"), action="auth.login", outcome="success")
    assert AuditEvent.objects.filter(client_ip="2001:db8::1").exists()
    assert audit.verify() == []


def test_deleting_a_user_leaves_their_rows_and_the_chain_intact(db):
    from django.contrib.auth.models import User

    user = User.objects.create_user(username="leaver")
    user_id = user.pk
    audit.record(actor=Actor(user=user, name="leaver"), action="auth.login", outcome="success")
    user.delete()
    row = AuditEvent.objects.get(action="auth.login")
    assert (row.actor_id, row.actor_name) == (user_id, "leaver")  # who it was, still
    assert audit.verify() == []
