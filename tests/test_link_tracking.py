"""Per-recipient tracking (opens, downloads, batches), the link page, and expiry reminders."""

import datetime
import io

import boto3
import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from sharing.audit import Actor
from sharing.models import AuditEvent, BucketGrant, ShareLink
from sharing.services import link_emails, link_reminders, link_tracking, links
from tests.conftest import audit_rows, client_for

KEY = "reports/q3.pdf"


def as_actor(user) -> Actor:
    return Actor(user=user, ip="192.0.2.10", user_agent="pytest", name=user.username)


def in_hours(hours: float) -> datetime.datetime:
    return timezone.now() + datetime.timedelta(hours=hours)


@pytest.fixture
def file(bucket) -> str:
    boto3.client("s3", region_name="us-east-1").put_object(Bucket=bucket, Key=KEY, Body=b"q3")
    return KEY


def make_link(user, *, hours: float = 24, **options) -> links.NewLink:
    return links.link_create(
        actor=as_actor(user), bucket="team-files", key=KEY, expires_at=in_hours(hours), **options
    )


def email_links(user, recipients, **options) -> list[links.NewLink]:
    return link_emails.links_email(
        actor=as_actor(user),
        bucket="team-files",
        key=KEY,
        recipients=recipients,
        expires_at=in_hours(24),
        **options,
    )


def fetch(new: links.NewLink) -> ShareLink:
    return ShareLink.objects.get(pk=new.link.pk)


# --- Opens and downloads -----------------------------------------------------------------------


def test_opening_the_page_counts_opens_and_keeps_the_first_time(client, alice, file):
    new = make_link(alice)
    assert client.get(f"/s/{new.token}").status_code == 200
    first = fetch(new).first_opened_at
    assert first is not None
    assert client.get(f"/s/{new.token}").status_code == 200
    link = fetch(new)
    assert link.opens == 2 and link.first_opened_at == first
    assert link.downloads == 0 and link.first_downloaded_at is None
    events = AuditEvent.objects.filter(action="link.open", phase="event", outcome="success")
    assert events.count() == 2
    assert all(str(link.pk) in row.message for row in events)


def test_unusable_link_is_not_counted_as_opened(client, alice, file):
    new = make_link(alice)
    links.link_revoke(actor=as_actor(alice), link=new.link)
    assert client.get(f"/s/{new.token}").status_code == 410
    assert fetch(new).opens == 0 and fetch(new).first_opened_at is None


def test_download_sets_first_and_last_download_times(client, alice, file):
    new = make_link(alice)
    assert client.post(f"/s/{new.token}").status_code == 302
    link = fetch(new)
    first = link.first_downloaded_at
    assert first is not None and link.last_downloaded_at == first and link.downloads == 1
    assert client.post(f"/s/{new.token}").status_code == 302
    link = fetch(new)
    assert link.downloads == 2 and link.first_downloaded_at == first
    assert link.last_downloaded_at > first


def test_refused_download_sets_no_download_time(client, alice, file):
    new = make_link(alice, max_downloads=1)
    assert client.post(f"/s/{new.token}").status_code == 302
    last = fetch(new).last_downloaded_at
    assert client.post(f"/s/{new.token}").status_code == 410
    assert fetch(new).downloads == 1 and fetch(new).last_downloaded_at == last


# --- The state of a recipient ------------------------------------------------------------------


def test_state_of_a_link_never_opened(alice, file):
    state = link_tracking.recipient_state(fetch(make_link(alice)))
    assert (state.state, state.first, state.times) == ("not opened", None, 0)
    assert state.summary == "not opened"


def test_state_after_opening_then_downloading(client, alice, file):
    new = make_link(alice)
    client.get(f"/s/{new.token}")
    state = link_tracking.recipient_state(fetch(new))
    assert (state.state, state.times, state.first) == ("opened", 1, fetch(new).first_opened_at)
    assert state.summary == "opened 1 time"
    client.post(f"/s/{new.token}")
    client.post(f"/s/{new.token}")
    link = fetch(new)
    state = link_tracking.recipient_state(link)
    assert (state.state, state.times, state.opens) == ("downloaded", 2, 1)
    assert (state.first, state.last) == (link.first_downloaded_at, link.last_downloaded_at)
    assert state.summary == "downloaded 2 times"


def test_state_of_a_link_downloaded_before_tracking_began(alice, file):
    new = make_link(alice)
    seen = in_hours(-1)
    ShareLink.objects.filter(pk=new.link.pk).update(downloads=3, last_opened_at=seen)
    state = link_tracking.recipient_state(fetch(new))
    assert (state.state, state.times, state.first, state.last) == ("downloaded", 3, seen, seen)


# --- Batches -----------------------------------------------------------------------------------


def test_links_emailed_at_once_share_one_batch(alice, file):
    first = email_links(alice, ["ann@example.com", "ben@example.org"])
    second = email_links(alice, ["cat@example.net"])
    batches = {fetch(new).batch for new in first}
    assert len(batches) == 1 and None not in batches
    assert fetch(second[0]).batch not in batches
    assert fetch(make_link(alice)).batch is None  # a link made on its own has no batch


# --- The link page -----------------------------------------------------------------------------


def detail_url(new: links.NewLink) -> str:
    return reverse("link_detail", args=[new.link.pk])


def test_link_page_shows_the_link_to_its_creator(client, alice, file):
    new = make_link(alice, max_downloads=5)
    response = client_for(client, alice).get(detail_url(new))
    html = response.content.decode()
    assert response.status_code == 200
    assert "q3.pdf" in html and "active" in html and "of 5 allowed" in html
    assert "not opened" in html
    assert reverse("link_revoke", args=[new.link.pk]) in html
    assert reverse("link_extend", args=[new.link.pk]) in html
    assert 'data-testid="batch-table"' not in html  # not emailed: no batch


def test_link_page_is_404_for_someone_else(client, alice, bob, charlie, file):
    new = make_link(alice)
    for user in (bob, charlie):
        assert client_for(client, user).get(detail_url(new)).status_code == 404
    assert ("link.view", "event", "denied") in audit_rows(action="link.view")


def test_link_page_needs_login_and_takes_no_post(client, alice, file):
    new = make_link(alice)
    response = client.get(detail_url(new))
    assert response.status_code == 302 and reverse("login") in response["Location"]
    assert client_for(client, alice).post(detail_url(new)).status_code == 405


def test_unknown_link_page_is_404(client, alice):
    url = reverse("link_detail", args=["00000000-0000-4000-8000-000000000000"])
    assert client_for(client, alice).get(url).status_code == 404


def test_link_page_lists_the_batch_with_each_recipients_state(client, alice, file):
    ann, ben, cat = email_links(alice, ["ann@example.com", "ben@example.org", "cat@example.net"])
    client.get(f"/s/{ben.token}")
    client.post(f"/s/{cat.token}")
    response = client_for(client, alice).get(detail_url(ann))
    html = response.content.decode()
    table = html[html.index('data-testid="batch-table"') :]
    rows = {
        address: next(row for row in table.split("<tr data-link")[1:] if address in row)
        for address in ("ann@example.com", "ben@example.org", "cat@example.net")
    }
    assert 'data-state="not opened"' in rows["ann@example.com"]
    assert 'data-state="opened"' in rows["ben@example.org"]
    assert 'data-state="downloaded"' in rows["cat@example.net"]
    assert reverse("link_detail", args=[cat.link.pk]) in rows["cat@example.net"]


def test_my_links_rows_lead_to_the_link_page(client, alice, file):
    new = make_link(alice)
    html = client_for(client, alice).get(reverse("link_list")).content.decode()
    assert detail_url(new) in html


# --- Reminders ---------------------------------------------------------------------------------


def due_link(user, **options) -> links.NewLink:
    """Return a link asking for a reminder, made two hours ago, expiring in twelve."""
    new = make_link(user, hours=12, remind_before_expiry=True, **options)
    ShareLink.objects.filter(pk=new.link.pk).update(created_at=in_hours(-2))
    return new


def test_the_form_asks_for_a_reminder(client, alice, file):
    data = {"link-key": KEY, "link-expiry": "1d", "link-remind_before_expiry": "on"}
    response = client_for(client, alice).post(reverse("link_create", args=["team-files"]), data)
    assert response.status_code == 200
    assert ShareLink.objects.get().remind_before_expiry is True


def test_no_reminder_is_kept_for_a_creator_without_email(alice, file):
    alice.email = ""
    alice.save()
    assert fetch(make_link(alice, remind_before_expiry=True)).remind_before_expiry is False


def test_reminders_go_once_and_only_for_due_links(
    client, alice, file, django_capture_on_commit_callbacks
):
    due = due_link(alice)
    downloaded = due_link(alice)
    client.post(f"/s/{downloaded.token}")
    revoked = due_link(alice)
    links.link_revoke(actor=as_actor(alice), link=revoked.link)
    expired = due_link(alice)
    ShareLink.objects.filter(pk=expired.link.pk).update(expires_at=in_hours(-1))
    far = make_link(alice, hours=72, remind_before_expiry=True)
    ShareLink.objects.filter(pk=far.link.pk).update(created_at=in_hours(-2))
    not_asked = make_link(alice, hours=12)
    ShareLink.objects.filter(pk=not_asked.link.pk).update(created_at=in_hours(-2))
    brand_new = make_link(alice, hours=12, remind_before_expiry=True)

    with django_capture_on_commit_callbacks(execute=True):
        assert link_reminders.reminders_send(now=timezone.now()) == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert link_reminders.reminders_send(now=timezone.now()) == 0

    assert fetch(due).reminded_at is not None
    for other in (downloaded, revoked, expired, far, not_asked, brand_new):
        assert fetch(other).reminded_at is None
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@example.com"] and "expires soon" in message.subject
    assert reverse("link_detail", args=[due.link.pk]) in message.body
    assert "not opened" in message.body
    assert audit_rows(action="link.remind") == [("link.remind", "event", "success")]
    assert str(due.link.pk) in AuditEvent.objects.get(action="link.remind").message


def test_one_reminder_email_per_creator(bob, alice, file, django_capture_on_commit_callbacks):
    BucketGrant.objects.filter(user=bob, bucket="team-files").update(role="write")
    first, second = due_link(alice), due_link(alice)
    due_link(bob)
    with django_capture_on_commit_callbacks(execute=True):
        assert link_reminders.reminders_send(now=timezone.now()) == 3
    assert sorted(message.to[0] for message in mail.outbox) == [
        "alice@example.com",
        "bob@example.com",
    ]
    to_alice = next(m for m in mail.outbox if m.to == ["alice@example.com"])
    assert "2 links" in to_alice.subject
    for new in (first, second):
        assert reverse("link_detail", args=[new.link.pk]) in to_alice.body
    assert audit_rows(action="link.remind").count(("link.remind", "event", "success")) == 3


def test_reminders_leave_after_commit(alice, file, django_capture_on_commit_callbacks):
    due_link(alice)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        link_reminders.reminders_send(now=timezone.now())
    assert mail.outbox == [] and audit_rows(action="link.remind") == []
    for callback in callbacks:
        callback()
    assert len(mail.outbox) == 1


def test_a_failed_reminder_is_recorded(alice, file, settings, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 1
    due_link(alice)
    with django_capture_on_commit_callbacks(execute=True):
        assert link_reminders.reminders_send(now=timezone.now()) == 1
    assert audit_rows(action="link.remind") == [("link.remind", "event", "failure")]


def test_the_command_reminds_once(alice, file, django_capture_on_commit_callbacks):
    due_link(alice)
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("links_remind", stdout=out)
    assert out.getvalue().strip() == "1 link reminded."
    assert len(mail.outbox) == 1
    out = io.StringIO()
    call_command("links_remind", stdout=out)
    assert out.getvalue().strip() == "0 links reminded."


def test_the_command_refuses_a_negative_interval(db):
    with pytest.raises(CommandError, match="--every"):
        call_command("links_remind", "--every", "-1")


# --- Admin -------------------------------------------------------------------------------------


def test_admin_shows_the_tracking_fields_read_only(client, admin_user, alice, file):
    new = email_links(alice, ["ann@example.com"], remind_before_expiry=True)[0]
    client.get(f"/s/{new.token}")
    client_for(client, admin_user)
    listing = client.get(reverse("admin:sharing_sharelink_changelist")).content.decode()
    assert "column-opens" in listing and "column-first_downloaded_at" in listing
    page = client.get(reverse("admin:sharing_sharelink_change", args=[new.link.pk]))
    html = page.content.decode()
    for field in ("batch", "opens", "first_opened_at", "last_downloaded_at", "reminded_at"):
        assert f"field-{field}" in html
    assert 'name="opens"' not in html  # shown, not editable
