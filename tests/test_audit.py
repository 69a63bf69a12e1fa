"""The audit trail: intent before the call, outcome after, MACs, the sealed chain, read-only admin."""

import datetime
import json
import threading

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.urls import reverse

from sharing import admin as admin_module
from sharing import audit, s3
from sharing.audit import Actor
from sharing.models import AuditEvent, Outcome
from tests.conftest import audit_rows, client_for


@pytest.mark.django_db(transaction=True)
def test_intent_is_visible_to_other_connections_while_the_call_runs(alice):
    seen_elsewhere: list[list[tuple[str, str, str]]] = []

    def look_from_another_connection() -> None:
        try:
            seen_elsewhere.append(audit_rows())
        finally:
            connection.close()

    with audit.s3_call(actor=Actor(user=alice), action="bucket.list"):
        # A thread has a connection of its own: it sees only what was committed.
        other = threading.Thread(target=look_from_another_connection)
        other.start()
        other.join(10)
    assert seen_elsewhere == [[("bucket.list", "intent", "pending")]]
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


def write_rows(alice, *actions: str) -> list[AuditEvent]:
    for action in actions:
        audit.record(actor=Actor(user=alice), action=action, outcome=Outcome.SUCCESS)
    return list(AuditEvent.objects.order_by("id"))


def problems() -> list[str]:
    return [str(problem) for problem in audit.verify()]


def test_trail_verifies_when_untouched_sealed_or_not(alice):
    write_rows(alice, "a", "b")
    assert problems() == []
    assert audit.seal() == 2
    write_rows(alice, "c")
    assert problems() == []
    call_command("audit_verify")
    assert audit.seal() == 1 and audit.seal() == 0
    assert list(AuditEvent.objects.order_by("seq").values_list("action", flat=True)) == list("abc")


def test_edited_unsealed_row_is_detected_before_it_is_sealed(alice):
    _, middle, _ = write_rows(alice, "a", "b", "c")
    AuditEvent.objects.filter(pk=middle.pk).update(outcome=Outcome.FAILURE)
    assert problems() == [
        f"row {middle.pk}: its contents were changed or it was not written by the portal "
        "(the MAC does not match)"
    ]
    with pytest.raises(CommandError):
        call_command("audit_verify")


def test_edited_sealed_row_is_detected(alice):
    _, middle, _ = write_rows(alice, "a", "b", "c")
    audit.seal()
    AuditEvent.objects.filter(pk=middle.pk).update(message="nothing to see")
    assert problems() == [f"row {middle.pk}: its contents were changed (the MAC does not match)"]


def test_deleted_sealed_row_is_detected(alice):
    _, middle, last = write_rows(alice, "a", "b", "c")
    audit.seal()
    AuditEvent.objects.filter(pk=middle.pk).delete()
    assert problems() == [f"row {last.pk}: the sealed rows before it (2) were deleted"]


def test_deleted_newest_sealed_rows_are_detected(alice):
    write_rows(alice, "a", "b", "c")
    audit.seal()
    AuditEvent.objects.filter(action__in=["b", "c"]).delete()
    assert problems() == ["the newest sealed rows (2-3) were deleted"]


def test_inserted_row_is_detected_sealed_or_not(alice):
    first, _ = write_rows(alice, "a", "b")
    audit.seal()
    forged = AuditEvent.objects.get(pk=first.pk)
    forged.pk, forged.seq, forged.action, forged.mac = None, None, "bucket.delete", "0" * 64
    forged.save()  # someone with the database but not the key
    assert problems() == [
        f"row {forged.pk}: its contents were changed or it was not written by the portal "
        "(the MAC does not match)"
    ]
    audit.seal()  # sealing does not bless it
    assert problems() == [f"row {forged.pk}: its contents were changed (the MAC does not match)"]


def test_copied_row_is_detected(alice):
    first, _ = write_rows(alice, "a", "b")
    copy = AuditEvent.objects.get(pk=first.pk)
    copy.pk = None
    copy.save()  # a replay: a valid row, twice
    assert problems() == [f"row {copy.pk}: it is a copy of row {first.pk} (inserted)"]


def test_swapped_sealed_rows_are_detected(alice):
    first, second, _ = write_rows(alice, "a", "b", "c")
    audit.seal()
    # Swap their places in the chain, each row keeping its own (valid) contents and MAC.
    chain = ["seq", "prev_hash", "hash"]
    one, two = (AuditEvent.objects.values(*chain).get(pk=row.pk) for row in (first, second))
    AuditEvent.objects.filter(pk=first.pk).update(seq=-1)
    AuditEvent.objects.filter(pk=second.pk).update(**one)
    AuditEvent.objects.filter(pk=first.pk).update(**two)
    found = problems()
    assert (
        found and found[0] == f"row {second.pk}: it was moved, reordered or inserted in the chain"
    )


def test_rows_left_unsealed_too_long_are_reported(alice):
    oldest, _ = write_rows(alice, "a", "b")
    found = [str(p) for p in audit.verify(unsealed_limit=datetime.timedelta(0))]
    assert found == [
        f"row {oldest.pk}: 2 rows are unsealed for longer than 0:00:00; is the sealer running?"
    ]
    with pytest.raises(CommandError):
        call_command("audit_verify", unsealed_minutes=0)
    audit.seal()
    assert audit.verify(unsealed_limit=datetime.timedelta(0)) == []


def test_audit_key_is_not_in_the_database(alice, settings):
    (row,) = write_rows(alice, "a")
    audit.seal()
    stored = json.dumps(list(AuditEvent.objects.values()), default=str)
    assert settings.AUDIT_KEY not in stored
    settings.AUDIT_KEY = "another key of at least thirty-two characters"
    assert problems()  # rows made with another key do not verify


@pytest.mark.django_db(transaction=True)
def test_sealers_at_once_chain_every_row_once(alice):
    write_rows(alice, *[f"action-{n}" for n in range(300)])
    sealed: list[int] = []

    def run_sealer() -> None:
        try:
            sealed.append(audit.seal())
        finally:
            connection.close()

    sealers = [threading.Thread(target=run_sealer) for _ in range(4)]
    for sealer in sealers:
        sealer.start()
    for sealer in sealers:
        sealer.join(30)
    assert sum(sealed) == 300
    assert problems() == []
    seqs = sorted(AuditEvent.objects.values_list("seq", flat=True))
    assert seqs == list(range(1, 301))


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


def test_admin_counts_a_large_trail_only_up_to_its_limit(client, admin_user, alice, monkeypatch):
    monkeypatch.setattr(admin_module, "COUNT_LIMIT", 5)
    for n in range(7):
        audit.record(
            actor=Actor(user=alice), action="object.get", outcome="success", bucket=f"b{n}"
        )
    client_for(client, admin_user)
    url = reverse("admin:sharing_auditevent_changelist")
    page = client.get(url).content.decode()
    assert "more than 5 audit events" in page
    few = client.get(url, {"bucket": "b3"}).content.decode()
    assert "1 audit event" in few and "more than" not in few


def test_admin_filters_offer_the_newest_rows_values(client, admin_user, alice, monkeypatch):
    monkeypatch.setattr(admin_module, "FILTER_SAMPLE_ROWS", 2)
    for bucket in ("old-bucket", "new-bucket", "newest-bucket"):
        audit.record(actor=Actor(user=alice), action="object.get", outcome="success", bucket=bucket)
    client_for(client, admin_user)
    url = reverse("admin:sharing_auditevent_changelist")
    page = client.get(url).content.decode()
    assert "?bucket=newest-bucket" in page and "?bucket=new-bucket" in page
    assert "?bucket=old-bucket" not in page
    chosen = client.get(url, {"bucket": "old-bucket"})  # any value still filters
    assert [row.bucket for row in chosen.context["cl"].result_list] == ["old-bucket"]


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
    user = User.objects.create_user(username="leaver")
    user_id = user.pk
    audit.record(actor=Actor(user=user, name="leaver"), action="auth.login", outcome="success")
    user.delete()
    row = AuditEvent.objects.get(action="auth.login")
    assert (row.actor_id, row.actor_name) == (user_id, "leaver")  # who it was, still
    assert audit.verify() == []


@pytest.mark.parametrize(
    ("command", "option"),
    [("audit_seal", {"every": -1}), ("audit_verify", {"unsealed_minutes": -5})],
)
def test_commands_refuse_negative_durations_with_a_clear_message(db, command, option):
    with pytest.raises(CommandError, match="0 or more"):
        call_command(command, **option)
