"""A forgotten password in the browser: asked on the login page, reset by email, logged in again.

The live server runs in this process, so the reset email is read from Django's locmem outbox."""

import re
import time

import pytest
from django.core import mail
from playwright.sync_api import expect

from tests.browser.test_buckets_browser import log_in
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

NEW_PASSWORD = "a brand new passphrase 42"


def wait_for_email(seconds: float = 10) -> mail.EmailMessage:
    deadline = time.monotonic() + seconds
    while not mail.outbox:
        assert time.monotonic() < deadline, "no reset email was sent"
        time.sleep(0.1)
    return mail.outbox[-1]


def test_forgotten_password_is_reset_by_email_and_the_new_one_logs_in(
    page, live_server, bob, moto_s3, settings
):
    settings.SITE_URL = live_server.url  # the emailed link is built from SITE_URL
    page.goto(f"{live_server.url}/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page.get_by_role("heading", name="Reset your password")).to_be_visible()
    page.get_by_label("Email").fill("bob@example.com")
    page.get_by_role("button", name="Send the reset link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()

    message = wait_for_email()
    assert message.to == ["bob@example.com"]
    link = re.search(rf"{re.escape(live_server.url)}/account/reset/link/\S+/", message.body)
    assert link, message.body
    page.goto(link.group(0))
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    assert "/set-password/" in page.url  # the token is no longer in the address bar
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password confirmation").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set the new password").click()
    expect(page.get_by_role("heading", name="Password set")).to_be_visible()

    page.get_by_test_id("reset-log-in").click()
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Buckets", exact=True)).to_be_visible()

    page.goto(link.group(0))  # used once: it no longer works
    expect(page.get_by_role("heading", name="This reset link does not work")).to_be_visible()


def test_profile_sets_an_email_address(page, live_server, bob, moto_s3):
    bob.email = ""
    bob.save()
    log_in(page, live_server, "bob")
    page.get_by_test_id("nav-profile").click()
    expect(page.get_by_test_id("no-email")).to_be_visible()
    page.get_by_label("Email address").fill("bob@example.org")
    page.get_by_role("button", name="Save").click()
    expect(
        page.get_by_text("To change the email address, enter your current password.")
    ).to_be_visible()
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Profile saved.")).to_be_visible()
    expect(page.get_by_test_id("no-email")).to_have_count(0)
    bob.refresh_from_db()
    assert bob.email == "bob@example.org"
