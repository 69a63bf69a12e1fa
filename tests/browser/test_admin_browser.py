"""Administrators in the admin site: grants and the read-only audit trail, under our CSP."""

import pytest
from playwright.sync_api import expect

from sharing.models import BucketGrant
from tests.browser.test_buckets_browser import log_in
from tests.conftest import server_client

pytestmark = pytest.mark.browser


def test_admin_grants_a_bucket_and_reads_the_audit_trail(
    page, live_server, admin_user, bob, real_s3
):
    problems = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    server_client(real_s3).create_bucket(Bucket="granted-bucket")
    log_in(page, live_server, "root")
    page.goto(f"{live_server.url}/admin/sharing/bucketgrant/add/")
    page.locator("#id_bucket").select_option("granted-bucket")  # the buckets in the storage
    page.locator("#id_role").select_option("write")
    page.locator(".field-user .select2-selection").click()  # the autocomplete widget
    page.locator(".select2-search__field").fill("bob")
    page.locator(".select2-results__option", has_text="bob").click()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("was added successfully")).to_be_visible()
    assert BucketGrant.objects.get(bucket="granted-bucket").user == bob

    # The grant change is in the trail, found with the action filter the admin offers.
    page.goto(f"{live_server.url}/admin/sharing/auditevent/")
    page.get_by_role("link", name="grant.create").click()
    expect(page.locator("#result_list").get_by_text("granted-bucket")).to_be_visible()
    expect(page.locator(".paginator")).to_contain_text("audit event")
    page.goto(f"{live_server.url}/admin/sharing/auditevent/")
    expect(page.get_by_role("link", name="login").first).to_be_visible()
    expect(page.get_by_text("Add audit event")).to_have_count(0)
    assert not [p for p in problems if "Content Security Policy" in p], problems
