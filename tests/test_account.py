"""One's own account: profile, password change, password reset by email, download notices."""

import re

import boto3
import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from sharing.models import AuditEvent, BucketGrant, Role, ShareLink
from tests.conftest import PASSWORD, audit_rows, client_for

NEW_PASSWORD = "a brand new passphrase 42"
KEY = "docs/report.txt"
SENT = "a link to choose a new password is on its way"


def log_in(client, username: str, password: str):
    return client.post(reverse("login"), {"username": username, "password": password})


def reset_link(message) -> str:
    match = re.search(r"https?://\S+/account/reset/link/\S+/", message.body)
    assert match, message.body
    return match.group(0)


def ask_reset(client, email: str):
    return client.post(reverse("password_reset"), {"email": email}, follow=True)


# --- Profile -----------------------------------------------------------------------------------


def test_profile_needs_login(client, db):
    response = client.get(reverse("profile"))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_profile_shows_username_roles_and_password_link(client, bob):
    BucketGrant.objects.create(user=bob, bucket="team-files", role=Role.READ)
    response = client_for(client, bob).get(reverse("profile"))
    page = response.content.decode()
    assert response.status_code == 200
    assert "bob" in page and "team-files</a>: read" in page
    assert reverse("password_change") in page
    assert 'value="bob@example.com"' in page


def test_profile_link_is_in_the_nav(client, bob):
    page = client_for(client, bob).get(reverse("bucket_list")).content.decode()
    assert f'href="{reverse("profile")}"' in page


def test_profile_saves_name_and_email_and_audits(client, bob):
    response = client_for(client, bob).post(
        reverse("profile"),
        {
            "first_name": "Bob",
            "last_name": "Builder",
            "email": "Bob@Example.ORG",
            "current_password": PASSWORD,
        },
        follow=True,
    )
    assert response.status_code == 200 and "Profile saved." in response.content.decode()
    bob.refresh_from_db()
    assert (bob.first_name, bob.last_name, bob.email) == ("Bob", "Builder", "Bob@example.org")
    row = AuditEvent.objects.get(action="account.profile")
    assert row.outcome == "success" and row.actor_name == "bob"
    assert "bob@example.com" in row.message and "Bob@example.org" in row.message


def test_changing_the_email_address_needs_the_current_password(client, bob):
    client = client_for(client, bob)
    for password in ("", "wrong password"):
        response = client.post(
            reverse("profile"), {"email": "thief@example.com", "current_password": password}
        )
        assert response.status_code == 400
        assert "To change the email address, enter your current password." in (
            response.content.decode()
        )
    bob.refresh_from_db()
    assert bob.email == "bob@example.com"
    rows = AuditEvent.objects.filter(action="account.profile")
    assert [row.outcome for row in rows] == ["refused", "refused"]
    assert not any("wrong password" in row.message for row in rows)


def test_the_name_changes_without_the_password(client, bob):
    response = client_for(client, bob).post(
        reverse("profile"), {"first_name": "Robert", "email": "bob@example.com"}
    )
    assert response.status_code == 302
    bob.refresh_from_db()
    assert (bob.first_name, bob.email) == ("Robert", "bob@example.com")


def test_profile_refuses_a_bad_email_address(client, bob):
    response = client_for(client, bob).post(
        reverse("profile"), {"first_name": "", "last_name": "", "email": "not an address"}
    )
    assert response.status_code == 400
    assert "Enter a valid email address." in response.content.decode()
    bob.refresh_from_db()
    assert bob.email == "bob@example.com"
    assert audit_rows(action="account.profile") == [("account.profile", "event", "refused")]


def test_profile_answers_405_to_other_methods(client, bob):
    assert client_for(client, bob).put(reverse("profile")).status_code == 405


def test_profile_post_needs_csrf(bob):
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    response = client.post(reverse("profile"), {"email": "evil@example.com"})
    assert response.status_code == 403
    bob.refresh_from_db()
    assert bob.email == "bob@example.com"


# --- Password change ---------------------------------------------------------------------------


def test_password_change_needs_login(client, db):
    for name in ("password_change", "password_change_done"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and reverse("login") in response["Location"]


def test_password_change_works_keeps_the_session_and_audits(client, bob):
    client = client_for(client, bob)
    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        follow=True,
    )
    assert response.status_code == 200 and "Password changed" in response.content.decode()
    assert client.get(reverse("profile")).status_code == 200  # still logged in
    bob.refresh_from_db()
    assert bob.check_password(NEW_PASSWORD) and not bob.check_password(PASSWORD)
    assert audit_rows(action="password.change") == [("password.change", "event", "success")]


def test_wrong_old_password_gives_the_form_error_and_is_audited(client, bob):
    response = client_for(client, bob).post(
        reverse("password_change"),
        {"old_password": "wrong", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 400
    assert "Your old password was entered incorrectly" in response.content.decode()
    bob.refresh_from_db()
    assert bob.check_password(PASSWORD)
    row = AuditEvent.objects.get(action="password.change")
    assert row.outcome == "refused" and "old_password" in row.message
    assert "wrong" not in row.message and NEW_PASSWORD not in row.message


def test_password_pages_answer_405_to_other_methods(client, bob):
    assert client.put(reverse("password_reset")).status_code == 405
    assert client_for(client, bob).put(reverse("password_change")).status_code == 405
    bob.refresh_from_db()
    assert bob.check_password(PASSWORD)


# --- Password reset ----------------------------------------------------------------------------


def test_login_page_offers_the_reset(client, db):
    page = client.get(reverse("login")).content.decode()
    assert "Forgot your password?" in page and reverse("password_reset") in page


def test_reset_sends_one_email_built_from_site_url(client, bob, settings):
    settings.SITE_URL = "https://portal.example.org"
    settings.ALLOWED_HOSTS = ["*"]  # even a Host header let through does not build the link
    response = client.post(
        reverse("password_reset"), {"email": "BOB@example.com"}, HTTP_HOST="evil.example.com"
    )
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_done")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["bob@example.com"] and "password" in message.subject.lower()
    assert reset_link(message).startswith("https://portal.example.org/account/reset/link/")
    assert "evil.example.com" not in message.body and "bob" in message.body
    row = AuditEvent.objects.get(action="password.reset_request")
    assert row.outcome == "success" and "1 account" in row.message


def test_reset_for_an_unknown_address_sends_nothing_and_says_the_same(client, bob, charlie):
    charlie.is_active = False
    charlie.save()
    known = ask_reset(client, "bob@example.com")
    mail.outbox.clear()
    for email in ("nobody@example.com", "charlie@example.com"):  # unknown; inactive account
        unknown = ask_reset(client, email)
        assert unknown.status_code == known.status_code == 200
        assert unknown.redirect_chain == known.redirect_chain
        assert unknown.content == known.content and SENT in unknown.content.decode()
    assert mail.outbox == []


def test_reset_needs_a_usable_password(client, bob):
    bob.set_unusable_password()
    bob.save()
    ask_reset(client, "bob@example.com")
    assert mail.outbox == []


def test_reset_refuses_a_malformed_address_with_a_message(client, db):
    response = client.post(reverse("password_reset"), {"email": "no at sign"})
    assert response.status_code == 400
    assert "Enter a valid email address." in response.content.decode()
    assert audit_rows(action="password.reset_request")[-1][2] == "refused"


def test_reset_link_sets_a_new_password_once_and_the_old_one_stops_working(client, bob):
    ask_reset(client, "bob@example.com")
    link = reset_link(mail.outbox[0])
    page = client.get(link, follow=True)
    assert page.status_code == 200 and "Choose a new password" in page.content.decode()
    assert "/set-password/" in page.redirect_chain[-1][0]  # the token leaves the address bar
    done = client.post(
        page.redirect_chain[-1][0],
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        follow=True,
    )
    assert "Password set" in done.content.decode()
    assert log_in(client, "bob", PASSWORD).status_code == 400
    assert log_in(client, "bob", NEW_PASSWORD).status_code == 302
    client.post(reverse("logout"))
    again = client.get(link, follow=True)
    assert "This reset link does not work" in again.content.decode()
    assert audit_rows(action="password.reset") == [
        ("password.reset", "event", "success"),
        ("password.reset", "event", "denied"),
    ]
    assert AuditEvent.objects.filter(action="password.reset", actor_name="bob").count() == 2


def test_reset_with_mismatched_passwords_shows_the_error(client, bob):
    ask_reset(client, "bob@example.com")
    page = client.get(reset_link(mail.outbox[0]), follow=True)
    response = client.post(
        page.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": "other"}
    )
    assert response.status_code == 400
    assert "The two password fields didn" in response.content.decode()
    bob.refresh_from_db()
    assert bob.check_password(PASSWORD)


def test_a_made_up_reset_link_does_not_work(client, bob):
    response = client.get("/account/reset/link/abc-123/Mg/")
    assert response.status_code == 200
    assert "This reset link does not work" in response.content.decode()
    assert audit_rows(action="password.reset") == [("password.reset", "event", "denied")]


# --- "Email me on the first download" ----------------------------------------------------------


@pytest.fixture
def shared_file(bucket) -> str:
    boto3.client("s3", region_name="us-east-1").put_object(Bucket=bucket, Key=KEY, Body=b"x")
    return KEY


def sharing_panel(client) -> str:
    url = reverse("object_sharing", args=["team-files"]) + f"?key={KEY}"
    return client.get(url).content.decode()


def create_link(client, **extra):
    data = {"link-key": KEY, "link-expiry": "1h", "link-notify_on_download": "on", **extra}
    return client.post(reverse("link_create", args=["team-files"]), data)


def test_without_an_email_address_the_notice_option_says_why_and_is_off(client, alice, shared_file):
    alice.email = ""
    alice.save()
    client = client_for(client, alice)
    page = sharing_panel(client)
    assert "Your account has no email address: " in page
    assert re.search(r'<input type="checkbox" name="link-notify_on_download"[^>]* disabled', page)
    assert f'href="{reverse("profile")}"' in page
    response = create_link(client)  # submitted anyway
    assert response.status_code == 200
    assert "no first-download notice can be sent" in response.content.decode()
    assert ShareLink.objects.get().notify_on_download is False


def test_with_an_email_address_the_owner_gets_the_notice(
    client, alice, shared_file, django_capture_on_commit_callbacks
):
    client = client_for(client, alice)
    page = sharing_panel(client)
    assert "Your account has no email address" not in page
    response = create_link(client)
    assert "no first-download notice" not in response.content.decode()
    token = re.search(r"/s/([A-Za-z0-9_-]{43})", response.content.decode()).group(1)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/s/{token}")
    assert [message.to for message in mail.outbox] == [["alice@example.com"]]
    assert "was downloaded" in mail.outbox[0].subject


def test_a_reset_does_not_lift_a_login_lockout(client, bob, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        log_in(client, "bob", "wrong")
    ask_reset(client, "bob@example.com")
    page = client.get(reset_link(mail.outbox[0]), follow=True)
    client.post(
        page.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    bob.refresh_from_db()
    assert bob.check_password(NEW_PASSWORD)
    assert log_in(client, "bob", NEW_PASSWORD).status_code == 429  # the lockout runs its course


def test_emailed_links_without_an_email_address_warn_too(client, alice, shared_file):
    alice.email = ""
    alice.save()
    data = {
        "email-key": KEY,
        "email-expiry": "1h",
        "email-recipients": "ann@example.com",
        "email-notify_on_download": "on",
    }
    response = client_for(client, alice).post(
        reverse("links_email", args=["team-files"]), data, follow=True
    )
    page = response.content.decode()
    assert "Sent 1 link" in page and "no first-download notice can be sent" in page
    assert ShareLink.objects.get().notify_on_download is False
