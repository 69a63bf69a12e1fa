"""Share links on moto: creation, the recipient page, downloads, passwords, revocation, emails."""

import datetime
import hashlib
import re
import threading
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import pytest
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.models import Group
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from sharing import s3, services
from sharing.audit import Actor
from sharing.models import AuditEvent, BucketGrant, ShareLink
from sharing.services import link_emails, link_recipients, links, public_access
from sharing.services import objects as object_services
from tests.conftest import audit_rows, client_for

KEY = "docs/plan ü.txt"
BODY = b"the plan, version 3"
UA = "Mozilla/5.0 (Recipient)"


def make_writer(user) -> None:
    BucketGrant.objects.filter(user=user, bucket="team-files").update(role="write")


def raw():
    return boto3.client("s3", region_name="us-east-1")


def as_actor(user, ip: str = "192.0.2.10") -> Actor:
    return Actor(user=user, ip=ip, user_agent="pytest", name=user.username if user else "")


def stranger(ip: str = "198.51.100.7") -> Actor:
    return Actor(ip=ip, user_agent=UA)


def in_hours(hours: float) -> datetime.datetime:
    return timezone.now() + datetime.timedelta(hours=hours)


@pytest.fixture
def file(bucket) -> str:
    raw().put_object(Bucket=bucket, Key=KEY, Body=BODY)
    return KEY


@pytest.fixture
def new_link(alice, file) -> links.NewLink:
    return links.link_create(
        actor=as_actor(alice), bucket="team-files", key=file, expires_at=in_hours(24)
    )


def public_url(token: str) -> str:
    # Built by hand: a reverse() would refuse the malformed tokens the tests try on purpose.
    return f"/s/{token}"


def download(client, token: str, **data):
    return client.post(public_url(token), data, HTTP_USER_AGENT=UA, REMOTE_ADDR="203.0.113.9")


# --- Creation ----------------------------------------------------------------------------------


def test_only_the_tokens_hash_is_stored(new_link):
    token = new_link.token
    assert len(token) >= 43  # 32 random bytes, base64url
    link = ShareLink.objects.get()
    assert link.token_hash == hashlib.sha256(token.encode()).hexdigest()
    stored = " ".join(str(value) for value in ShareLink.objects.values().get().values())
    assert token not in stored
    assert not any(
        token in " ".join(row) for row in AuditEvent.objects.values_list("message", "key")
    )
    assert new_link.url == f"http://127.0.0.1:8000/s/{token}" or new_link.url.endswith(
        f"/s/{token}"
    )


def test_create_is_audited_with_the_link_id(new_link):
    assert audit_rows(action="link.create") == [
        ("link.create", "intent", "pending"),
        ("link.create", "outcome", "success"),
    ]
    outcome = AuditEvent.objects.get(action="link.create", phase="outcome")
    assert str(new_link.link.pk) in outcome.message


def test_tokens_are_unique(alice, file):
    tokens = {
        links.link_create(
            actor=as_actor(alice), bucket="team-files", key=file, expires_at=in_hours(1)
        ).token
        for _ in range(20)
    }
    assert len(tokens) == 20


@pytest.mark.parametrize(
    "expires_at",
    [
        pytest.param(lambda: timezone.now(), id="expiry-0"),
        pytest.param(lambda: timezone.now() - datetime.timedelta(seconds=1), id="expiry-minus-1"),
        pytest.param(lambda: timezone.now() + datetime.timedelta(seconds=604801), id="604801-s"),
        pytest.param(lambda: timezone.now() - datetime.timedelta(days=1), id="yesterday"),
        pytest.param(lambda: datetime.datetime(9999, 12, 31, tzinfo=datetime.UTC), id="year-9999"),
        pytest.param(lambda: None, id="missing"),
    ],
)
def test_bad_expiry_is_refused_with_a_message(alice, file, expires_at):
    with pytest.raises(links.LinkError) as caught:
        links.link_create(
            actor=as_actor(alice), bucket="team-files", key=file, expires_at=expires_at()
        )
    assert caught.value.status == 400 and caught.value.message
    assert not ShareLink.objects.exists()


@pytest.mark.parametrize(
    ("amount", "unit", "message"),
    [
        ("0", "minutes", "more than zero"),
        ("-1", "hours", "more than zero"),
        ("10081", "minutes", "at most 7 days"),
        ("8", "days", "at most 7 days"),
        ("", "hours", "Give a number"),
        ("1e9", "days", "Enter a whole number"),
    ],
)
def test_bad_custom_expiry_in_the_form_gives_400(client, alice, file, amount, unit, message):
    response = client_for(client, alice).post(
        reverse("link_create", args=["team-files"]),
        {
            "link-key": file,
            "link-expiry": "custom",
            "link-custom_amount": amount,
            "link-custom_unit": unit,
        },
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ShareLink.objects.exists()


def test_seven_days_exactly_is_allowed(client, alice, file):
    response = client_for(client, alice).post(
        reverse("link_create", args=["team-files"]),
        {
            "link-key": file,
            "link-expiry": "custom",
            "link-custom_amount": "7",
            "link-custom_unit": "days",
        },
    )
    assert response.status_code == 200
    link = ShareLink.objects.get()
    assert abs((link.expires_at - in_hours(168)).total_seconds()) < 60


def test_password_is_hashed_and_needs_a_minimum_length(alice, file, settings):
    settings.LINK_PASSWORD_MIN_LENGTH = 10
    actor = as_actor(alice)
    with pytest.raises(links.LinkError, match="at least 10"):
        links.link_create(
            actor=actor, bucket="team-files", key=file, expires_at=in_hours(1), password="short"
        )
    new = links.link_create(
        actor=actor, bucket="team-files", key=file, expires_at=in_hours(1), password="long enough!"
    )
    stored = ShareLink.objects.get(pk=new.link.pk).password_hash
    assert "long enough!" not in stored and check_password("long enough!", stored)


@pytest.mark.parametrize("limit", [0, -1, 100_001])
def test_download_limit_must_be_sensible(alice, file, limit):
    with pytest.raises(links.LinkError):
        links.link_create(
            actor=as_actor(alice),
            bucket="team-files",
            key=file,
            expires_at=in_hours(1),
            max_downloads=limit,
        )


def test_sharing_needs_write_readers_and_outsiders_may_not(bob, charlie, file):
    with pytest.raises(PermissionDenied):
        links.link_create(
            actor=as_actor(bob), bucket="team-files", key=file, expires_at=in_hours(1)
        )
    assert not ShareLink.objects.exists()
    make_writer(bob)
    assert links.link_create(
        actor=as_actor(bob), bucket="team-files", key=file, expires_at=in_hours(1)
    ).token
    with pytest.raises(Http404):
        links.link_create(
            actor=as_actor(charlie), bucket="team-files", key=file, expires_at=in_hours(1)
        )
    assert ("link.create", "event", "denied") in audit_rows(action="link.create")


def test_link_to_a_missing_file_is_refused(alice, bucket):
    with pytest.raises(links.LinkError) as caught:
        links.link_create(
            actor=as_actor(alice), bucket=bucket, key="nope.txt", expires_at=in_hours(1)
        )
    assert caught.value.status == 404
    assert not ShareLink.objects.exists()


def test_create_view_shows_the_link_once(client, alice, file, settings):
    settings.SITE_URL = "https://portal.example.org"
    settings.ALLOWED_HOSTS = ["testserver", "evil.example.com"]
    response = client_for(client, alice).post(
        reverse("link_create", args=["team-files"]),
        {"link-key": file, "link-expiry": "1h", "link-max_downloads": "3"},
        HTTP_HOST="evil.example.com",
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    url = re.search(r'value="(https://portal\.example\.org/s/[^"]+)"', response.content.decode())
    assert url, "the link is built from SITE_URL, never from the Host header"
    token = url.group(1).rsplit("/", 1)[1]
    assert ShareLink.objects.get().token_hash == links.token_hash(token)
    assert ShareLink.objects.get().max_downloads == 3


def test_create_view_needs_login_post_and_access(client, charlie, file):
    url = reverse("link_create", args=["team-files"])
    data = {"link-key": file, "link-expiry": "1h"}
    assert client.post(url, data).status_code == 302
    client_for(client, charlie)
    assert client.get(url).status_code == 405
    assert client.post(url, data).status_code == 404


def test_create_view_with_storage_down_gives_503(client, alice, file, settings):
    client_for(client, alice)
    settings.S3_ENDPOINT_URL = "http://127.0.0.1:9"
    settings.S3_MAX_ATTEMPTS = 1
    response = client.post(
        reverse("link_create", args=["team-files"]), {"link-key": file, "link-expiry": "1h"}
    )
    assert response.status_code == 503
    assert not ShareLink.objects.exists()


# --- The recipient page ------------------------------------------------------------------------


def test_recipient_page_shows_the_file_without_login(client, new_link):
    response = client.get(public_url(new_link.token))
    html = response.content.decode()
    assert response.status_code == 200
    assert "plan ü.txt" in html and "19\xa0bytes" in html and "alice" in html
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cache-Control"] == "no-store"
    assert "form-action 'self' https://s3.amazonaws.com" in response["Content-Security-Policy"]
    assert ShareLink.objects.get().downloads == 0  # looking is not downloading


def test_recipient_page_is_audited(client, new_link):
    client.get(public_url(new_link.token), HTTP_USER_AGENT=UA)
    row = AuditEvent.objects.get(action="link.open", phase="outcome")
    assert (row.outcome, row.user_agent, row.actor_name) == ("success", UA, "recipient")
    assert row.client_ip == "127.0.0.1"


def changed_tokens(token: str) -> list[str]:
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    return [flipped, token.swapcase(), token + "/", token[:-1], token + "x", "%2e%2e%2f", "a"]


def test_changed_tokens_never_give_the_file(client, new_link):
    for variant in changed_tokens(new_link.token):
        for response in (client.get(f"/s/{variant}"), download(client, variant)):
            assert response.status_code == 404, variant
            assert "plan" not in response.content.decode()
            assert "Location" not in response
    assert ShareLink.objects.get().downloads == 0


def test_download_redirects_to_a_60_second_attachment_url(client, new_link):
    response = download(client, new_link.token)
    assert response.status_code == 302
    assert response["Referrer-Policy"] == "same-origin"
    location = urlsplit(response["Location"])
    query = parse_qs(location.query)
    assert location.path == "/team-files/docs/plan%20%C3%BC.txt"
    assert query["X-Amz-Expires"] == ["60"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    disposition = unquote(query["response-content-disposition"][0])
    assert disposition.startswith("attachment;") and "plan ü.txt" in disposition
    link = ShareLink.objects.get()
    assert link.downloads == 1 and link.last_opened_at is not None
    row = AuditEvent.objects.get(action="link.download", phase="event")
    assert (row.outcome, row.client_ip, row.user_agent) == ("success", "203.0.113.9", UA)
    assert str(link.pk) in row.message and row.actor_name == "recipient"
    # The page was not opened first, so the download itself asked S3 whether the file exists.
    assert audit_rows(action="link.download") == [
        ("link.download", "intent", "pending"),
        ("link.download", "outcome", "success"),
        ("link.download", "event", "success"),
    ]
    assert "X-Amz-Signature" not in " ".join(AuditEvent.objects.values_list("message", flat=True))


def test_download_right_after_the_page_trusts_its_fresh_check(client, new_link):
    assert client.get(public_url(new_link.token)).status_code == 200
    assert download(client, new_link.token).status_code == 302
    assert audit_rows(action="link.open") == [
        ("link.open", "intent", "pending"),
        ("link.open", "outcome", "success"),
        ("link.open", "event", "success"),
    ]
    assert audit_rows(action="link.download") == [("link.download", "event", "success")]


def test_get_never_counts_a_download(client, new_link):
    for _ in range(3):
        client.get(public_url(new_link.token))
    assert ShareLink.objects.get().downloads == 0


def test_download_needs_csrf_and_this_origin(new_link):
    strict = Client(enforce_csrf_checks=True)
    url = public_url(new_link.token)
    assert strict.post(url).status_code == 403
    page = strict.get(url)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())[1]
    with_token = {"csrfmiddlewaretoken": token}
    assert strict.post(url, with_token, HTTP_ORIGIN="null").status_code == 403
    assert strict.post(url, with_token, HTTP_ORIGIN="https://evil.example").status_code == 403
    assert ShareLink.objects.get().downloads == 0
    assert strict.post(url, with_token, HTTP_ORIGIN="http://testserver").status_code == 302
    # Over HTTPS the browser's Origin (sent because the page is not "no-referrer") suffices.
    assert (
        strict.post(url, with_token, HTTP_ORIGIN="https://testserver", secure=True).status_code
        == 302
    )
    assert ShareLink.objects.get().downloads == 2


def test_exhausted_link_gives_410_after_k_downloads(client, alice, file):
    new = links.link_create(
        actor=as_actor(alice),
        bucket="team-files",
        key=file,
        expires_at=in_hours(1),
        max_downloads=2,
    )
    assert [download(client, new.token).status_code for _ in range(4)] == [302, 302, 410, 410]
    assert ShareLink.objects.get().downloads == 2
    gone = client.get(public_url(new.token))
    assert gone.status_code == 410 and "used as many times" in gone.content.decode()
    assert gone["Cache-Control"] == "no-store"
    assert audit_rows(action="link.download")[-1] == ("link.download", "event", "denied")


def test_revoked_link_is_dead_at_once(client, alice, new_link):
    assert download(client, new_link.token).status_code == 302
    assert links.link_revoke(actor=as_actor(alice), link=new_link.link) is True
    for response in (client.get(public_url(new_link.token)), download(client, new_link.token)):
        assert response.status_code == 410
        assert "withdrawn" in response.content.decode()


def test_expired_link_gives_410(client, new_link):
    ShareLink.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    response = download(client, new_link.token)
    assert response.status_code == 410 and "expired" in response.content.decode()
    assert ShareLink.objects.get().downloads == 0


def test_deactivated_creator_stops_their_links(client, alice, new_link):
    alice.is_active = False
    alice.save()
    assert client.get(public_url(new_link.token)).status_code == 410
    assert download(client, new_link.token).status_code == 410


def test_creator_who_lost_access_stops_their_links(client, bob, file):
    make_writer(bob)
    new = links.link_create(
        actor=as_actor(bob), bucket="team-files", key=file, expires_at=in_hours(1)
    )
    BucketGrant.objects.filter(user=bob).delete()
    assert download(client, new.token).status_code == 410


def test_creator_demoted_to_read_stops_their_links(client, bob, file):
    make_writer(bob)
    new = links.link_create(
        actor=as_actor(bob), bucket="team-files", key=file, expires_at=in_hours(1)
    )
    assert client.get(public_url(new.token)).status_code == 200
    BucketGrant.objects.filter(user=bob).update(role="read")
    assert download(client, new.token).status_code == 410
    assert ShareLink.objects.get().downloads == 0


def test_grant_through_a_group_keeps_links_alive_until_it_goes(client, bob, file):
    team = Group.objects.create(name="team")
    bob.groups.add(team)
    BucketGrant.objects.filter(user=bob).delete()
    BucketGrant.objects.create(group=team, bucket="team-files", role="write")
    new = links.link_create(
        actor=as_actor(bob), bucket="team-files", key=file, expires_at=in_hours(1)
    )
    assert download(client, new.token).status_code == 302
    bob.groups.remove(team)
    assert download(client, new.token).status_code == 410
    assert ShareLink.objects.get().downloads == 1


# A download is counted only if the link is still usable when it is counted: each change below,
# made after the recipient page was shown, must stop the link at once.


def _change_revoke(link, alice):
    links.link_revoke(actor=as_actor(alice), link=link)


def _change_expire(link, alice):
    ShareLink.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))


def _change_use_up(link, alice):
    ShareLink.objects.update(max_downloads=0)


def _change_deactivate_creator(link, alice):
    alice.is_active = False
    alice.save()


def _change_drop_grant(link, alice):
    BucketGrant.objects.filter(user=alice).delete()


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        (_change_revoke, 410, "withdrawn"),
        (_change_expire, 410, "expired"),
        (_change_use_up, 410, "used as many times"),
        (_change_deactivate_creator, 410, "no longer works"),
        (_change_drop_grant, 410, "no longer works"),
    ],
)
def test_changes_after_the_page_stop_the_download_at_once(
    client, alice, new_link, change, status, words
):
    assert client.get(public_url(new_link.token)).status_code == 200
    change(new_link.link, alice)
    response = download(client, new_link.token)
    assert response.status_code == status and words in response.content.decode()
    assert "Location" not in response
    assert ShareLink.objects.get().downloads == 0
    assert audit_rows(action="link.download") == [("link.download", "event", "denied")]


def test_password_set_after_the_page_is_still_asked_for(client, new_link):
    assert client.get(public_url(new_link.token)).status_code == 200
    ShareLink.objects.update(password_hash=make_password("correct horse battery"))
    assert download(client, new_link.token).status_code == 403
    assert download(client, new_link.token, password="correct horse battery").status_code == 302
    assert ShareLink.objects.get().downloads == 1


def test_download_after_the_page_is_counted_with_its_audit_row(client, new_link):
    assert client.get(public_url(new_link.token)).status_code == 200
    response = download(client, new_link.token)
    assert response.status_code == 302 and "X-Amz-Signature=" in response["Location"]
    row = AuditEvent.objects.get(action="link.download", phase="event")
    assert (row.outcome, row.actor_name, row.client_ip) == ("success", "recipient", "203.0.113.9")
    assert str(new_link.link.pk) in row.message


@pytest.mark.parametrize("creator", ["group member", "superuser without grants"])
def test_page_then_downloads_work_for_every_kind_of_creator(client, bob, admin_user, file, creator):
    user = admin_user
    if creator == "group member":
        team = Group.objects.create(name="team")
        bob.groups.add(team)
        BucketGrant.objects.filter(user=bob).delete()
        BucketGrant.objects.create(group=team, bucket="team-files", role="write")
        user = bob
    new = links.link_create(
        actor=as_actor(user), bucket="team-files", key=file, expires_at=in_hours(1)
    )
    assert client.get(public_url(new.token)).status_code == 200
    assert [download(client, new.token).status_code for _ in range(3)] == [302, 302, 302]
    assert ShareLink.objects.get().downloads == 3
    assert audit_rows(action="link.download") == [("link.download", "event", "success")] * 3


def test_deleted_file_gives_410_and_keeps_the_download(client, alice, file):
    new = links.link_create(
        actor=as_actor(alice),
        bucket="team-files",
        key=file,
        expires_at=in_hours(1),
        max_downloads=1,
    )
    raw().delete_object(Bucket="team-files", Key=file)
    response = download(client, new.token)
    assert response.status_code == 410 and "no longer exists" in response.content.decode()
    assert ShareLink.objects.get().downloads == 0


def test_storage_down_during_download_gives_503_and_keeps_the_download(client, new_link, settings):
    settings.S3_ENDPOINT_URL = "http://127.0.0.1:9"
    settings.S3_MAX_ATTEMPTS = 1
    response = download(client, new_link.token)
    assert response.status_code == 503
    assert response["Cache-Control"] == "no-store"
    assert ShareLink.objects.get().downloads == 0
    row = AuditEvent.objects.filter(action="link.download", phase="outcome").get()
    assert row.outcome == "failure"


def test_other_methods_are_refused(client, new_link):
    assert client.put(public_url(new_link.token)).status_code == 405
    assert client.delete(public_url(new_link.token)).status_code == 405


# --- Passwords ---------------------------------------------------------------------------------


@pytest.fixture
def locked(alice, file) -> links.NewLink:
    return links.link_create(
        actor=as_actor(alice),
        bucket="team-files",
        key=file,
        expires_at=in_hours(1),
        password="open sesame",
    )


def test_password_page_hides_the_file_until_unlocked(client, locked):
    html = client.get(public_url(locked.token)).content.decode()
    assert 'type="password"' in html and "plan" not in html and "bytes" not in html
    assert download(client, locked.token).status_code == 403
    assert download(client, locked.token, password="wrong password").status_code == 403
    assert download(client, locked.token, password="open sesame").status_code == 302


def test_twenty_wrong_passwords_are_throttled(client, locked):
    codes = [download(client, locked.token, password=f"guess {n}").status_code for n in range(20)]
    assert codes == [403] * 5 + [429] * 15
    throttled = download(client, locked.token, password="open sesame")
    assert throttled.status_code == 429 and "Too many wrong passwords" in throttled.content.decode()
    assert ShareLink.objects.get().downloads == 0
    assert audit_rows(action="link.password").count(("link.password", "event", "failure")) == 5


def test_throttle_is_per_link_and_per_address(alice, file, locked):
    other = links.link_create(
        actor=as_actor(alice),
        bucket="team-files",
        key=file,
        expires_at=in_hours(1),
        password="another one",
    )
    for n in range(5):
        with pytest.raises(links.LinkPasswordError):
            link_recipients.link_download(
                actor=stranger("198.51.100.1"), token=locked.token, password=f"x{n}"
            )
    with pytest.raises(links.LinkPasswordError) as caught:  # same link, new address
        link_recipients.link_download(
            actor=stranger("198.51.100.2"), token=locked.token, password="open sesame"
        )
    assert caught.value.status == 429
    with pytest.raises(links.LinkPasswordError) as caught:  # same address, other link
        link_recipients.link_download(
            actor=stranger("198.51.100.1"), token=other.token, password="another one"
        )
    assert caught.value.status == 429
    url = link_recipients.link_download(
        actor=stranger("198.51.100.3"), token=other.token, password="another one"
    )
    assert "X-Amz-Signature" in url


# --- Revoke, extend, my links, admin ----------------------------------------------------------


def test_only_owner_or_admin_may_revoke(client, alice, bob, admin_user, new_link):
    with pytest.raises(Http404):
        links.link_revoke(actor=as_actor(bob), link=new_link.link)
    assert ("link.revoke", "event", "denied") in audit_rows(action="link.revoke")
    assert ShareLink.objects.get().revoked_at is None
    response = client_for(client, bob).post(reverse("link_revoke", args=[new_link.link.pk]))
    assert response.status_code == 404
    assert links.link_revoke(actor=as_actor(admin_user), link=new_link.link) is True
    assert links.link_revoke(actor=as_actor(alice), link=new_link.link) is False  # idempotent


def test_revoke_view(client, alice, new_link):
    url = reverse("link_revoke", args=[new_link.link.pk])
    assert client.post(url).status_code == 302 and ShareLink.objects.get().revoked_at is None
    client_for(client, alice)
    assert client.get(url).status_code == 405
    response = client.post(url, {"next": "//evil.example.com/"})
    assert response.status_code == 302 and response["Location"] == reverse("link_list")
    assert ShareLink.objects.get().revoked_at is not None
    again = client.post(url, follow=True)
    assert "already withdrawn" in again.content.decode()


def test_extend_at_most_seven_days(client, alice, bob, new_link):
    ShareLink.objects.update(expires_at=timezone.now() - datetime.timedelta(hours=1))
    links.link_extend(actor=as_actor(alice), link=new_link.link, expires_at=in_hours(48))
    assert download(client, new_link.token).status_code == 302
    with pytest.raises(links.LinkError, match="at most 7 days"):
        links.link_extend(actor=as_actor(alice), link=new_link.link, expires_at=in_hours(24 * 8))
    with pytest.raises(Http404):
        links.link_extend(actor=as_actor(bob), link=new_link.link, expires_at=in_hours(1))
    links.link_revoke(actor=as_actor(alice), link=new_link.link)
    with pytest.raises(links.LinkError, match="withdrawn"):
        links.link_extend(actor=as_actor(alice), link=new_link.link, expires_at=in_hours(1))


def test_extend_view(client, alice, new_link):
    client_for(client, alice)
    response = client.post(
        reverse("link_extend", args=[new_link.link.pk]), {"expiry": "7d"}, follow=True
    )
    assert "now expires" in response.content.decode()
    assert ShareLink.objects.get().expires_at > in_hours(167)
    response = client.post(
        reverse("link_extend", args=[new_link.link.pk]),
        {"expiry": "custom", "custom_amount": "9", "custom_unit": "days"},
        follow=True,
    )
    assert "at most 7 days" in response.content.decode()


def test_my_links_lists_only_mine_with_status(client, alice, bob, file, new_link):
    make_writer(bob)
    links.link_create(actor=as_actor(bob), bucket="team-files", key=file, expires_at=in_hours(1))
    links.link_revoke(actor=as_actor(alice), link=new_link.link)
    response = client_for(client, alice).get(reverse("link_list"))
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('data-testid="link-status"') == 1 and ">revoked<" in html
    assert "anyone with the link" in html
    assert '>docs/</span><wbr><span class="key-part">plan ü.txt<' in html  # wraps after "/" only
    assert 'data-testid="nav-links"' in html
    assert client.logout() is None
    assert client.get(reverse("link_list")).status_code == 302


def test_admin_sees_links_without_tokens_and_revokes_through_the_service(
    client, admin_user, new_link
):
    client_for(client, admin_user)
    page = client.get(reverse("admin:sharing_sharelink_changelist"))
    assert page.status_code == 200 and "team-files" in page.content.decode()
    detail = client.get(reverse("admin:sharing_sharelink_change", args=[new_link.link.pk]))
    assert new_link.link.token_hash not in detail.content.decode()
    assert new_link.token not in detail.content.decode()
    assert client.get(reverse("admin:sharing_sharelink_add")).status_code == 403
    response = client.post(
        reverse("admin:sharing_sharelink_changelist"),
        {"action": "revoke", "_selected_action": [str(new_link.link.pk)]},
    )
    assert response.status_code == 302
    assert ShareLink.objects.get().revoked_at is not None
    assert audit_rows(action="link.revoke") == [("link.revoke", "event", "success")]


def _make_links_of_every_status(alice, file) -> dict[str, ShareLink]:
    made = {}
    for status in ("active", "revoked", "expired", "used up"):
        made[status] = links.link_create(
            actor=as_actor(alice), bucket="team-files", key=file, expires_at=in_hours(1)
        ).link
    ShareLink.objects.filter(pk=made["revoked"].pk).update(revoked_at=timezone.now())
    ShareLink.objects.filter(pk=made["expired"].pk).update(expires_at=in_hours(-1))
    ShareLink.objects.filter(pk=made["used up"].pk).update(max_downloads=2, downloads=2)
    return made


def test_one_status_for_the_download_my_links_and_the_admin_filter(client, alice, admin_user, file):
    made = _make_links_of_every_status(alice, file)
    now = timezone.now()
    assert set(ShareLink.objects.usable(now)) == {made["active"]}
    statuses = dict(ShareLink.objects.with_status(now).values_list("id", "status"))
    assert statuses == {link.pk: status for status, link in made.items()}
    html = client_for(client, alice).get(reverse("link_list")).content.decode()
    for status in made:
        assert f'data-testid="link-status">{status}<' in html
    client_for(client, admin_user)
    changelist = reverse("admin:sharing_sharelink_changelist")
    for status, link in made.items():
        page = client.get(changelist, {"status": status})
        assert [row.pk for row in page.context["cl"].result_list] == [link.pk]
    # The creator loses the bucket: every link of theirs is disabled, everywhere at once.
    BucketGrant.objects.filter(user=alice).delete()
    page = client.get(changelist, {"status": "disabled"})
    assert len(page.context["cl"].result_list) == 4 - 3  # revoked/expired/used up come first
    assert not ShareLink.objects.usable(timezone.now()).exists()


# --- Raw presigned URL -------------------------------------------------------------------------


def test_raw_presigned_url_with_warning(client, alice, file):
    client_for(client, alice)
    response = client.post(
        reverse("object_presign", args=["team-files"]),
        {
            "raw-key": file,
            "raw-expiry": "custom",
            "raw-custom_amount": "2",
            "raw-custom_unit": "hours",
        },
    )
    html = response.content.decode()
    assert response.status_code == 200 and "cannot be withdrawn, limited or counted" in html
    assert "X-Amz-Expires=7200" in html
    assert ("object.presign", "event", "success") in audit_rows(action="object.presign")


def test_raw_presigned_url_over_seven_days_is_refused(client, alice, file):
    response = client_for(client, alice).post(
        reverse("object_presign", args=["team-files"]),
        {
            "raw-key": file,
            "raw-expiry": "custom",
            "raw-custom_amount": "169",
            "raw-custom_unit": "hours",
        },
    )
    assert response.status_code == 400 and "at most 7 days" in response.content.decode()
    with pytest.raises(links.LinkError):
        links.object_presign(actor=as_actor(alice), bucket="team-files", key=file, seconds=604801)


def test_temporary_credentials_are_warned_about(client, alice, file, settings):
    settings.S3_SESSION_TOKEN = "session-token"
    html = (
        client_for(client, alice)
        .get(reverse("object_detail", args=["team-files"]), {"key": file})
        .content.decode()
    )
    assert 'data-testid="temporary-credentials"' in html


def test_outsider_gets_no_presigned_url(charlie, file):
    with pytest.raises(Http404):
        links.object_presign(actor=as_actor(charlie), bucket="team-files", key=file, seconds=60)


def test_reader_cannot_make_public_but_gets_403_not_500(client, bob, file):
    response = client_for(client, bob).post(
        reverse("object_public", args=["team-files"]), {"key": file, "public": "1", "confirm": "on"}
    )
    assert response.status_code == 403
    with pytest.raises(PermissionDenied):
        public_access.object_set_public(
            actor=as_actor(bob), bucket="team-files", key=file, public=True
        )


# --- Emails ------------------------------------------------------------------------------------


def email_links(actor, file, recipients, **extra):
    return link_emails.links_email(
        actor=actor,
        bucket="team-files",
        key=file,
        recipients=recipients,
        message=extra.pop("message", "Here is the plan."),
        expires_at=in_hours(24),
        **extra,
    )


def test_one_link_per_recipient_sent_after_commit(
    alice, file, settings, django_capture_on_commit_callbacks
):
    settings.SITE_URL = "https://portal.example.org"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        created = email_links(as_actor(alice), file, ["ann@example.com", "ben@example.org"])
        assert mail.outbox == []  # nothing leaves before the commit
    for callback in callbacks:
        callback()
    assert [m.to for m in mail.outbox] == [["ann@example.com"], ["ben@example.org"]]
    assert {new.link.recipient_email for new in created} == {"ann@example.com", "ben@example.org"}
    assert len({new.token for new in created}) == 2
    for message, new in zip(mail.outbox, created, strict=True):
        assert new.url.startswith("https://portal.example.org/s/")
        assert new.url in message.body and new.url in message.alternatives[0][0]
        assert "plan ü.txt" in message.body and "19\xa0bytes" in message.body
        assert "Here is the plan." in message.body
        assert message.reply_to == ["alice@example.com"]
    assert audit_rows(action="link.email").count(("link.email", "event", "success")) == 2


def test_email_escapes_names_in_html(alice, file, django_capture_on_commit_callbacks):
    evil = "<img src=x onerror=alert(1)>.txt"
    raw().put_object(Bucket="team-files", Key=evil, Body=b"x")
    alice.first_name, alice.last_name = "<b>Alice", "& Co</b>"
    alice.save()
    with django_capture_on_commit_callbacks(execute=True):
        email_links(as_actor(alice), evil, ["ann@example.com"], message="<script>x</script>")
    message = mail.outbox[0]
    html = message.alternatives[0][0]
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;.txt" in html
    assert "<script>" not in html and "&lt;b&gt;Alice &amp; Co&lt;/b&gt;" in html
    assert evil in message.body  # plain text stays plain
    assert "\n" not in message.subject


def test_link_in_email_ignores_the_request_host(
    client, alice, file, settings, django_capture_on_commit_callbacks
):
    settings.SITE_URL = "https://portal.example.org"
    settings.ALLOWED_HOSTS = ["testserver", "evil.example.com"]
    client_for(client, alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("links_email", args=["team-files"]),
            {"email-key": file, "email-expiry": "1d", "email-recipients": "ann@example.com"},
            HTTP_HOST="evil.example.com",
        )
    assert response.status_code == 302
    assert "https://portal.example.org/s/" in mail.outbox[0].body
    assert "evil.example.com" not in mail.outbox[0].body


@pytest.mark.parametrize(
    "recipient",
    ["a@b.com\nBcc: x@y", "a@b.com\r\nBcc: x@y.com", "a@b.com\rx", "not an address", "a@b.com\x00"],
)
def test_header_injection_and_bad_addresses_are_refused(alice, file, recipient):
    with pytest.raises(links.LinkError):
        email_links(as_actor(alice), file, [recipient])
    assert not ShareLink.objects.exists() and mail.outbox == []


def test_email_form_refuses_injection_with_400(client, alice, file):
    response = client_for(client, alice).post(
        reverse("links_email", args=["team-files"]),
        {"email-key": file, "email-expiry": "1d", "email-recipients": "a@b.com\nBcc: x@y"},
    )
    assert response.status_code == 400
    assert "not a valid email address" in response.content.decode()
    assert not ShareLink.objects.exists() and mail.outbox == []


def test_too_many_recipients_are_refused(alice, file, settings):
    settings.LINK_EMAIL_MAX_RECIPIENTS = 3
    with pytest.raises(links.LinkError, match="At most 3"):
        email_links(as_actor(alice), file, [f"p{n}@example.com" for n in range(4)])


def test_file_name_with_line_breaks_cannot_break_the_subject(
    alice, file, django_capture_on_commit_callbacks
):
    nasty = "a\r\nBcc: x@y.com.txt"
    raw().put_object(Bucket="team-files", Key=nasty, Body=b"x")
    with django_capture_on_commit_callbacks(execute=True):
        email_links(as_actor(alice), nasty, ["ann@example.com"])
    message = mail.outbox[0]
    assert message.recipients() == ["ann@example.com"]
    assert "\n" not in message.subject and "\r" not in message.subject
    assert "Bcc" not in str(message.message()["Bcc"] or "")


def test_failed_send_is_audited_as_failure(
    alice, file, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "tests.test_links.BrokenBackend"
    with django_capture_on_commit_callbacks(execute=True):
        email_links(as_actor(alice), file, ["ann@example.com"])
    assert audit_rows(action="link.email") == [
        ("link.email", "intent", "pending"),
        ("link.email", "outcome", "success"),
        ("link.email", "event", "failure"),
    ]


class BrokenBackend:
    def __init__(self, *args, **kwargs) -> None:
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("smtp down")


def test_creator_is_told_about_the_first_download_only(
    client, alice, file, django_capture_on_commit_callbacks
):
    new = links.link_create(
        actor=as_actor(alice),
        bucket="team-files",
        key=file,
        expires_at=in_hours(1),
        notify_on_download=True,
    )
    with django_capture_on_commit_callbacks(execute=True):
        download(client, new.token)
        download(client, new.token)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@example.com"] and "was downloaded" in message.subject
    assert "203.0.113.9" in message.body and "/links/" in message.body
    assert ShareLink.objects.get().notified_at is not None
    assert audit_rows(action="link.notify") == [("link.notify", "event", "success")]


# --- Concurrency (each database the suite runs on) ---------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_k_downloads_under_n_parallel_requests_give_exactly_k(moto_s3, alice):
    services.bucket_create(actor=as_actor(alice), name="team-files")
    raw().put_object(Bucket="team-files", Key=KEY, Body=BODY)
    allowed, parallel = 5, 50
    new = links.link_create(
        actor=as_actor(alice),
        bucket="team-files",
        key=KEY,
        expires_at=in_hours(1),
        max_downloads=allowed,
    )
    start = threading.Barrier(parallel)
    results: list[str] = []
    lock = threading.Lock()

    def attempt(index: int) -> None:
        try:
            start.wait()
            try:
                link_recipients.link_download(
                    actor=stranger(f"198.51.100.{index + 1}"), token=new.token
                )
                outcome = "redirect"
            except links.LinkGoneError as error:
                outcome = error.reason
            with lock:
                results.append(outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(parallel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("redirect") == allowed
    assert results.count("used up") == parallel - allowed
    assert ShareLink.objects.get().downloads == allowed
    assert (
        AuditEvent.objects.filter(action="link.download", phase="event", outcome="success").count()
        == allowed
    )


# --- Every view: login, 405, outsiders, storage down -------------------------------------------

BUCKET_POSTS = {
    "link_create": {"link-key": KEY, "link-expiry": "1h"},
    "links_email": {"email-key": KEY, "email-expiry": "1h", "email-recipients": "a@example.com"},
    "object_public": {"key": KEY, "public": "0"},
    "object_presign": {"raw-key": KEY, "raw-expiry": "1h"},
}


@pytest.mark.parametrize("name", sorted(BUCKET_POSTS))
def test_bucket_views_need_login_post_and_a_grant(client, charlie, file, name):
    url = reverse(name, args=["team-files"])
    response = client.post(url, BUCKET_POSTS[name])
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    client_for(client, charlie)
    assert client.get(url).status_code == 405
    assert client.post(url, BUCKET_POSTS[name]).status_code == 404
    assert not ShareLink.objects.exists()


@pytest.mark.parametrize("name", ["links_email", "object_presign", "object_public"])
def test_bucket_views_answer_503_when_storage_is_down(client, alice, file, settings, name):
    client_for(client, alice)
    settings.S3_ENDPOINT_URL = "http://127.0.0.1:9"
    settings.S3_MAX_ATTEMPTS = 1
    response = client.post(reverse(name, args=["team-files"]), BUCKET_POSTS[name])
    assert response.status_code == 503
    assert mail.outbox == [] and not ShareLink.objects.exists()


@pytest.mark.parametrize("name", ["link_revoke", "link_extend"])
def test_link_views_need_login_post_and_ownership(client, charlie, new_link, name):
    url = reverse(name, args=[new_link.link.pk])
    assert client.post(url, {"expiry": "1d"}).status_code == 302
    client_for(client, charlie)
    assert client.get(url).status_code == 405
    assert client.post(url, {"expiry": "1d"}).status_code == 404
    unknown = reverse(name, args=["00000000-0000-0000-0000-000000000000"])
    assert client.post(unknown, {"expiry": "1d"}).status_code == 404
    link = ShareLink.objects.get()
    assert link.revoked_at is None and link.expires_at < in_hours(25)


def test_recipient_page_with_storage_down_is_a_clear_503(client, new_link, settings):
    settings.S3_ENDPOINT_URL = "http://127.0.0.1:9"
    settings.S3_MAX_ATTEMPTS = 1
    response = client.get(public_url(new_link.token))
    assert response.status_code == 503
    assert "cannot be reached" in response.content.decode()
    assert response["Cache-Control"] == "no-store"


def test_sharing_page_tells_a_reader_that_sharing_needs_write(client, bob, file):
    response = client_for(client, bob).get(
        reverse("object_sharing", args=["team-files"]), {"key": file}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="create-link"' not in html and 'data-testid="no-sharing"' in html
    assert 'data-testid="raw-presign"' not in html


def test_a_dead_links_page_answers_while_storage_is_out_of_reach(client, alice, new_link, settings):
    links.link_revoke(actor=as_actor(alice), link=new_link.link)
    settings.S3_ENDPOINT_URL = "http://127.0.0.1:9"  # nothing listens: every S3 call fails
    settings.S3_BREAKER_FAILURES = 1
    with pytest.raises(s3.S3Error):
        s3.list_buckets()
    assert s3.breaker_is_open()
    assert client.get(public_url(new_link.token)).status_code == 410
    assert download(client, new_link.token).status_code == 410


# --- Links to deleted files --------------------------------------------------------------------


def test_deleting_a_shared_file_shows_file_deleted_everywhere(client, alice, admin_user, new_link):
    response = client_for(client, alice).post(
        reverse("objects_delete", args=["team-files"]), {"keys": [KEY], "prefix": "docs/"}
    )
    assert response.status_code == 302
    link = ShareLink.objects.with_status(timezone.now()).get()
    assert link.status == "file deleted" and link.file_deleted_at is not None
    assert not ShareLink.objects.usable(timezone.now()).exists()
    html = client.get(reverse("link_list")).content.decode()
    assert 'data-testid="link-status">file deleted<' in html
    assert 'data-testid="link-status">active<' not in html
    assert audit_rows(action="link.file_deleted") == [("link.file_deleted", "event", "success")]
    # The recipient, who needs no login.
    recipient = Client()
    page = recipient.get(public_url(new_link.token))
    assert page.status_code == 410 and "no longer exists" in page.content.decode()
    assert download(recipient, new_link.token).status_code == 410
    # The admin's status filter offers the status, and finds the link by it.
    changelist = client_for(client, admin_user).get(
        reverse("admin:sharing_sharelink_changelist"), {"status": "file deleted"}
    )
    assert [row.pk for row in changelist.context["cl"].result_list] == [new_link.link.pk]
    assert "?status=file+deleted" in changelist.content.decode()


def test_a_new_file_under_the_same_name_does_not_revive_the_link(client, alice, new_link):
    object_services.objects_delete(actor=as_actor(alice), bucket="team-files", keys=[KEY])
    raw().put_object(Bucket="team-files", Key=KEY, Body=b"someone else's plan")
    assert Client().get(public_url(new_link.token)).status_code == 410
    link = ShareLink.objects.with_status(timezone.now()).get()
    assert link.status == "file deleted"
    # The new file's page lists the old link, dead, in its panel.
    page = client_for(client, alice).get(
        reverse("object_detail", args=["team-files"]), {"key": KEY}
    )
    assert 'data-testid="link-status">file deleted<' in page.content.decode()


def test_moving_a_shared_file_marks_its_links(alice, new_link):
    object_services.object_copy(
        actor=as_actor(alice),
        bucket="team-files",
        key=KEY,
        dst_bucket="team-files",
        dst_key="moved/plan.txt",
        move=True,
    )
    assert ShareLink.objects.with_status(timezone.now()).get().status == "file deleted"


def test_file_deleted_outside_the_portal_is_marked_when_a_recipient_finds_it_gone(
    client, alice, new_link
):
    other = links.link_create(
        actor=as_actor(alice), bucket="team-files", key=KEY, expires_at=in_hours(2)
    )
    raw().delete_object(Bucket="team-files", Key=KEY)
    assert ShareLink.objects.usable(timezone.now()).count() == 2  # nobody knows yet
    response = Client().get(public_url(new_link.token))
    assert response.status_code == 410 and "no longer exists" in response.content.decode()
    statuses = set(ShareLink.objects.with_status(timezone.now()).values_list("status", flat=True))
    assert statuses == {"file deleted"}  # every link to the file, not only the one opened
    html = client_for(client, alice).get(reverse("link_list")).content.decode()
    assert html.count('data-testid="link-status">file deleted<') == 2
    assert Client().get(public_url(other.token)).status_code == 410
    row = AuditEvent.objects.filter(action="link.open", outcome="denied").last()
    assert row.message.endswith(": file deleted.")


def test_emptying_and_deleting_a_bucket_marks_its_links(alice, new_link):
    services.bucket_delete(actor=as_actor(alice), name="team-files", empty_first=True)
    assert ShareLink.objects.get().file_deleted_at is not None


def test_a_link_to_a_deleted_file_cannot_be_extended(alice, new_link):
    object_services.objects_delete(actor=as_actor(alice), bucket="team-files", keys=[KEY])
    link = ShareLink.objects.get()
    with pytest.raises(links.LinkError, match="deleted"):
        links.link_extend(actor=as_actor(alice), link=link, expires_at=in_hours(48))
