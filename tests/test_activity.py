"""My activity: who sees which audit rows, the filters, the pages."""

import datetime

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from sharing import audit
from sharing.audit import Actor
from sharing.models import AuditEvent, BucketGrant, Outcome, Role
from sharing.selectors import activity as activity_reads
from tests.conftest import PASSWORD, audit_rows, client_for, make_user

URL = "/activity/"


def act(user, action: str, bucket: str = "", key: str = "", outcome: str = Outcome.SUCCESS):
    audit.record(
        actor=Actor(user=user, name=user.username),
        action=action,
        bucket=bucket,
        key=key,
        outcome=outcome,
    )


def shown(client, query: str = "") -> list[tuple[str, str, str]]:
    """Return (action, bucket, key) of the rows My activity shows, newest first."""
    response = client.get(URL + query)
    assert response.status_code == 200
    return [(row.action, row.bucket, row.key) for row in response.context["page"].rows]


@pytest.fixture
def trail(alice, bob, charlie):
    """alice manages team-files, bob reads it and manages bob-only; each did things in both."""
    BucketGrant.objects.create(user=alice, bucket="team-files", role=Role.MANAGE)
    BucketGrant.objects.create(user=bob, bucket="team-files", role=Role.READ)
    BucketGrant.objects.create(user=bob, bucket="bob-only", role=Role.MANAGE)
    act(alice, "folder.create", "team-files", "alice-folder/")
    act(bob, "object.download", "team-files", "report.pdf")
    act(bob, "object.delete", "bob-only", "private.txt")
    act(charlie, "object.list", "team-files", outcome=Outcome.DENIED)


def test_member_sees_only_own_rows_in_a_bucket_they_do_not_manage(client, trail, bob):
    rows = shown(client_for(client, bob))
    assert ("object.download", "team-files", "report.pdf") in rows
    assert ("object.delete", "bob-only", "private.txt") in rows
    assert not [row for row in rows if row[2] == "alice-folder/"]
    assert ("object.list", "team-files", "") not in rows  # charlie's denial


def test_manager_sees_everyone_in_their_bucket_and_nothing_of_others_elsewhere(
    client, trail, alice
):
    response = client_for(client, alice).get(URL)
    rows = {(row.actor_name, row.action, row.bucket) for row in response.context["page"].rows}
    assert rows == {
        ("alice", "folder.create", "team-files"),
        ("bob", "object.download", "team-files"),
        ("charlie", "object.list", "team-files"),
    }
    assert b"<th>Who</th>" in response.content


def test_charlie_without_grants_sees_only_his_own_logins(client, trail, charlie):
    assert client.post("/login/", {"username": "charlie", "password": "wrong"}).status_code == 400
    assert client.post("/login/", {"username": "charlie", "password": PASSWORD}).status_code == 302
    response = client.get(URL + "?action=login")
    rows = [(row.action, row.outcome) for row in response.context["page"].rows]
    assert rows == [("login", "success"), ("login", "failure")]
    assert b"<th>Who</th>" not in response.content


def test_nobody_sees_failed_logins_named_for_someone_else(client, trail, bob):
    client.post("/login/", {"username": "alice", "password": "wrong"})
    assert shown(client_for(client, bob), "?action=login") == []


def test_superuser_sees_every_row(client, trail, admin_user):
    rows = shown(client_for(client, admin_user))
    assert len(rows) == AuditEvent.objects.exclude(phase="intent").count()


def test_staff_with_audit_view_sees_every_row_other_staff_only_their_own(client, trail):
    auditor = make_user("auditor", is_staff=True)
    auditor.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    assert ("object.delete", "bob-only", "private.txt") in shown(client_for(client, auditor))
    helper = make_user("helper", is_staff=True)
    assert shown(client_for(client, helper)) == []


def test_a_bucket_filter_on_a_bucket_not_managed_keeps_to_ones_own_rows(client, trail, alice):
    act(alice, "object.head", "bob-only", "peek.txt")
    assert shown(client_for(client, alice), "?bucket=bob-only") == [
        ("object.head", "bob-only", "peek.txt")
    ]


def test_intent_rows_are_not_listed_only_outcomes(client, trail, bob):
    with audit.s3_call(actor=Actor(user=bob, name="bob"), action="object.head", bucket="b"):
        pass
    rows = client_for(client, bob).get(URL + "?action=object.head").context["page"].rows
    assert [row.phase for row in rows] == ["outcome"]
    assert audit_rows(action="object.head")[0][1] == "intent"


def test_filters_by_action_outcome_who_and_name(client, trail, alice):
    client_for(client, alice)
    assert shown(client, "?action=object.download") == [
        ("object.download", "team-files", "report.pdf")
    ]
    assert shown(client, "?outcome=denied") == [("object.list", "team-files", "")]
    assert shown(client, "?who=bob") == [("object.download", "team-files", "report.pdf")]
    assert shown(client, "?key=FOLDER") == [("folder.create", "team-files", "alice-folder/")]
    assert shown(client, "?action=object.delete") == []  # bob's, in a bucket alice does not manage


def test_filters_by_date_range(client, trail, bob):
    # The trail's rows happened a month ago (ids still grow with time, as in any trail).
    month_ago = timezone.now() - datetime.timedelta(days=30)
    AuditEvent.objects.update(created_at=month_ago)
    act(bob, "object.head", "bob-only", "today.txt")
    today, day = timezone.localdate(), timezone.localdate(month_ago)
    client_for(client, bob)
    assert shown(client, f"?since={today}") == [("object.head", "bob-only", "today.txt")]
    assert shown(client, f"?since={day}&until={day}") == [
        ("object.delete", "bob-only", "private.txt"),
        ("object.download", "team-files", "report.pdf"),
    ]
    assert shown(client, f"?until={day - datetime.timedelta(days=1)}") == []


def test_bad_filters_answer_400_with_a_message_and_are_recorded(client, trail, bob):
    response = client_for(client, bob).get(URL + "?since=yesterday&outcome=maybe")
    assert response.status_code == 400
    assert b"Enter a valid date." in response.content
    assert b"Select a valid choice." in response.content
    response = client.get(URL + "?since=2026-02-02&until=2026-02-01")
    assert response.status_code == 400
    assert "The first day comes after the last day." in response.content.decode()
    assert audit_rows(action="activity.view") == [("activity.view", "event", "refused")] * 2


@pytest.mark.parametrize(
    "query", ["?until=9999-12-31", "?since=0001-01-01", "?before=99999999999999999999", "?before=0"]
)
def test_values_past_what_a_date_or_an_id_can_hold_answer_400(client, trail, bob, query):
    assert client_for(client, bob).get(URL + query).status_code == 400


def test_pages_of_fifty_newest_first_without_overlap(client, trail, bob):
    audit.record_many(
        [
            audit.Event(Actor(user=bob, name="bob"), "object.head", "success", "bob-only", f"{n}")
            for n in range(120)
        ]
    )
    client_for(client, bob)
    seen, query = [], "?action=object.head"
    for expected in (50, 50, 20):
        response = client.get(URL + query)
        page = response.context["page"]
        assert len(page.rows) == expected
        seen += [row.key for row in page.rows]
        query = f"?action=object.head&before={page.next_before}"
    assert page.next_before is None
    assert seen == [str(n) for n in reversed(range(120))]
    assert b'data-testid="activity-older"' not in response.content


def test_the_page_and_the_queryset_agree(trail, alice, bob):
    for user in (alice, bob):
        actor = Actor(user=user, name=user.username)
        filters = activity_reads.ActivityFilters()
        page = activity_reads.activity_page(actor=actor, filters=filters)
        assert page.rows == list(activity_reads.activity(actor=actor, filters=filters))


def test_a_row_both_own_and_in_a_managed_bucket_is_listed_once(client, trail, alice):
    rows = shown(client_for(client, alice), "?action=folder.create")
    assert rows == [("folder.create", "team-files", "alice-folder/")]


def test_needs_login(client, trail):
    response = client.get(URL)
    assert response.status_code == 302
    assert response.url.startswith("/login/")


def test_post_is_refused_with_405(client, trail, bob):
    assert client_for(client, bob).post(URL).status_code == 405


def test_nav_has_an_activity_link(client, trail, bob):
    response = client_for(client, bob).get(URL)
    assert b'data-testid="nav-activity"' in response.content
    assert b'aria-current="page" data-testid="nav-activity"' in response.content
