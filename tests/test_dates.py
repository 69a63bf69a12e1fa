"""Dates: one short form on every page, in the viewer's time zone, the full moment on hover."""

import datetime
import re

import boto3
import pytest
from django.template import engines
from django.urls import reverse
from django.utils import timezone

from sharing.audit import Actor
from sharing.models import AuditEvent, ShareLink
from sharing.services import links
from sharing.templatetags.dates import when_full, when_html, when_text
from tests.conftest import client_for

MOMENT = datetime.datetime(2026, 12, 2, 13, 5, 9, tzinfo=datetime.UTC)


def render(source: str, **context) -> str:
    return engines["django"].from_string("{% load dates %}" + source).render(context)


def test_when_shows_the_short_form_with_the_full_moment_on_hover():
    html = render("{% when moment %}", moment=MOMENT)
    assert html == (
        '<time datetime="2026-12-02T13:05:09+00:00" '
        'title="Wednesday 2 December 2026, 13:05:09 UTC (UTC+0000)">2 Dec 2026, 13:05</time>'
    )
    assert when_text(MOMENT) == "2 Dec 2026, 13:05"
    assert render("{% when nothing %}") == ""


def test_when_is_in_the_active_time_zone(settings):
    settings.TIME_ZONE = "UTC"
    with timezone.override("Asia/Kolkata"):
        html = str(when_html(MOMENT))
        assert when_text(MOMENT) == "2 Dec 2026, 18:35"
    assert 'datetime="2026-12-02T18:35:09+05:30"' in html
    assert "Asia/Kolkata (UTC+0530)" in html


def test_when_relative_says_how_far_without_breaking_words():
    soon = timezone.now() + datetime.timedelta(days=6, hours=23, minutes=30)
    assert re.search(r"\(in 6\xa0days, 23\xa0hours\)</span>$", str(when_html(soon, relative=True)))
    past = timezone.now() - datetime.timedelta(minutes=3, seconds=10)
    assert str(when_html(past, relative=True)).endswith("(3\xa0minutes ago)</span>")
    assert str(when_html(timezone.now(), relative=True)).endswith("(just now)</span>")


@pytest.fixture
def link_page(client, alice, bucket):
    boto3.client("s3", region_name="us-east-1").put_object(Bucket=bucket, Key="a.txt", Body=b"x")
    links.link_create(
        actor=Actor(user=alice, name="alice"),
        bucket=bucket,
        key="a.txt",
        expires_at=timezone.now() + datetime.timedelta(hours=5),
    )
    client_for(client, alice)
    return reverse("link_list")


def offsets(html: str) -> set[str]:
    return set(re.findall(r'<time datetime="[^"]+([+-]\d\d:\d\d)"', html))


def test_pages_follow_the_tz_cookie(client, link_page):
    client.cookies["tz"] = "America/New_York"
    html = client.get(link_page).content.decode()
    assert offsets(html) == {"-05:00"} and "America/New_York" in html


@pytest.mark.parametrize(
    "cookie", ["", "Nowhere/City", "../../etc/passwd", "/etc/localtime", "Europe", "x" * 5000]
)
def test_a_bad_tz_cookie_is_ignored(client, link_page, settings, cookie):
    settings.TIME_ZONE = "UTC"
    client.cookies["tz"] = cookie
    response = client.get(link_page)
    assert response.status_code == 200
    assert offsets(response.content.decode()) == {"+00:00"}


def test_the_zone_is_not_kept_for_the_next_request(client, link_page, settings):
    settings.TIME_ZONE = "UTC"
    client.cookies["tz"] = "Asia/Tokyo"
    client.get(link_page)
    assert timezone.get_current_timezone_name() == "UTC"
    del client.cookies["tz"]
    assert offsets(client.get(link_page).content.decode()) == {"+00:00"}


def test_the_admin_shows_the_same_form_in_the_viewer_zone(client, admin_user, link_page):
    client_for(client, admin_user)
    client.cookies["tz"] = "Asia/Kolkata"
    html = client.get(reverse("admin:sharing_auditevent_changelist")).content.decode()
    assert offsets(html) == {"+05:30"}
    assert re.search(r">\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d</time>", html)
    row = AuditEvent.objects.order_by("id").first()
    detail = client.get(reverse("admin:sharing_auditevent_change", args=[row.pk])).content.decode()
    with timezone.override("Asia/Kolkata"):
        assert when_full(row.created_at) in detail  # to the second, with the zone
    assert "Asia/Kolkata (UTC+0530)" in detail


def test_an_extended_link_message_uses_the_same_form(client, alice, link_page):
    link = ShareLink.objects.get()
    client.cookies["tz"] = "Asia/Kolkata"
    response = client.post(
        reverse("link_extend", args=[link.pk]), {"expiry": "1d", "next": link_page}, follow=True
    )
    link.refresh_from_db()
    with timezone.override("Asia/Kolkata"):
        expected = when_text(link.expires_at)
    assert "now expires <time" in response.content.decode()
    assert f">{expected}</time>." in response.content.decode()
