"""Login, logout, throttling, redirects and CSRF."""

import pytest
from django.test import Client
from django.urls import reverse

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


def test_login_is_throttled_per_address(client, alice, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        login(client, password="wrong")
    response = login(client)  # even the right password is refused while throttled
    assert response.status_code == 429
    assert b"Too many failed attempts" in response.content
    assert audit_rows(action="login")[-1] == ("login", "event", "denied")


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
