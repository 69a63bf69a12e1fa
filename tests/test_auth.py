"""Login, logout, throttling, redirects and CSRF."""

import datetime
import time

import pytest
from django.test import Client
from django.urls import reverse

from sharing.models import AuditEvent
from tests.conftest import PASSWORD, audit_rows, client_for


def login(client, username="alice", password=PASSWORD, **extra):
    return client.post(reverse("login"), {"username": username, "password": password, **extra})


def test_login_page_renders_in_portal_look(client, db):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b"Log in" in response.content and b"pico.min.css" in response.content


def test_login_is_audited(client, alice):
    assert login(client).status_code == 302
    assert audit_rows(action="login") == [("login", "event", "success")]


def test_wrong_password_is_audited_and_message_shown(client, alice):
    response = login(client, password="wrong")
    assert response.status_code == 400
    assert b"correct username and password" in response.content
    assert audit_rows(action="login") == [("login", "event", "failure")]


def test_login_is_throttled_per_address(client, alice, bob, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for name in ("alice", "bob", "nobody"):
        login(client, username=name, password="wrong")
    response = login(client)  # even the right password is refused while throttled
    assert response.status_code == 429
    assert b"Too many failed attempts" in response.content
    assert b"correct username and password" not in response.content
    assert audit_rows(action="login")[-1] == ("login", "event", "denied")


def test_login_is_throttled_per_account_whatever_the_address(client, alice, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for number in range(3):
        login(Client(REMOTE_ADDR=f"203.0.113.{number}"), password="wrong")
    response = login(Client(REMOTE_ADDR="198.51.100.7"))
    assert response.status_code == 429
    row = AuditEvent.objects.filter(action="login").order_by("id").last()
    assert (row.outcome, row.actor_name, row.client_ip) == ("denied", "alice", "198.51.100.7")


def test_ones_own_login_does_not_buy_more_guesses_at_another_account(client, alice, bob, settings):
    settings.AXES_FAILURE_LIMIT = 5
    refused = 0
    for _ in range(10):
        for _ in range(4):
            refused += login(Client(), username="alice", password="guess").status_code == 429
        bob_client = Client()
        login(bob_client, username="bob")
        bob_client.post(reverse("logout"))
    assert refused == 36  # the 5th and every later guess at alice's password is refused
    assert login(client).status_code == 429


def test_the_failures_fall_off_after_the_window(client, alice, settings):
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = datetime.timedelta(seconds=1)
    for _ in range(2):
        login(client, password="wrong")
    assert login(client).status_code == 429
    time.sleep(1.1)
    assert login(client).status_code == 302


def test_session_is_rotated_at_login(client, alice):
    client.get(reverse("login"))
    client.cookies["sessionid"] = "attacker-chosen"
    login(client)
    assert client.cookies["sessionid"].value != "attacker-chosen"


@pytest.mark.parametrize(
    "target", ["//evil.com", "https://evil.com", "/\\evil.com", "javascript:alert(1)"]
)
def test_next_only_redirects_to_this_site(client, alice, target):
    response = login(client, next=target)
    assert response.status_code == 302
    assert response["Location"] == reverse("bucket_list")


def test_next_to_this_site_is_followed(client, alice):
    assert login(client, next="/buckets/new/")["Location"] == "/buckets/new/"


def test_logout_ends_session(client, alice):
    client_for(client, alice)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("bucket_list")).status_code == 302
    assert audit_rows(action="logout") == [("logout", "event", "success")]


def test_deactivated_user_loses_session(client, alice):
    client_for(client, alice)
    alice.is_active = False
    alice.save()
    assert client.get(reverse("bucket_list")).status_code == 302


def test_state_changes_need_csrf(alice, moto_s3):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    response = strict.post(reverse("bucket_create"), {"name": "csrf-test"})
    assert response.status_code == 403
    assert b"Form expired" in response.content


def test_admin_login_goes_to_portal_login(client, db):
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_unknown_page_is_friendly_404(client, alice):
    response = client_for(client, alice).get("/no/such/page/")
    assert response.status_code == 404
    assert b"Not found" in response.content


def test_security_headers(client, alice):
    response = client_for(client, alice).get(reverse("login"))
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert "default-src 'self'" in response["Content-Security-Policy"]


def test_a_member_without_admin_access_gets_a_clear_page_not_a_redirect_loop(client, bob):
    response = client_for(client, bob).get("/admin/", follow=True)
    assert response.status_code == 403
    assert len(response.redirect_chain) <= 2
    assert b"no access to the administration site" in response.content


def test_the_admin_sends_people_who_are_not_logged_in_to_the_one_login_page(client, db):
    response = client.get("/admin/", follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == f"{reverse('login')}?next=%2Fadmin%2F"
