"""Share links to a folder or a selection, on moto: scope, creation, recipient pages, downloads."""

import datetime
import io
import zipfile
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from sharing.audit import Actor
from sharing.models import AuditEvent, BucketGrant, LinkKind, ShareLink
from sharing.services import link_emails, link_listings, link_scopes, links
from tests.conftest import audit_rows, client_for

UA = "Mozilla/5.0 (Recipient)"
FILES = {
    "photos/a.jpg": b"aaa",
    "photos/b.jpg": b"bbbb",
    "photos/sub/c.jpg": b"ccccc",
    "photos/caf\u00e9.txt": b"nfc",
    "photos-private/secret.txt": b"secret",
    "photos.txt": b"sibling",
    "other/x.txt": b"x",
}
HOSTILE = [
    "a//b",
    "a/./b",
    "a/../b",
    "..",
    "../",
    "../photos-private/secret.txt",
    "%2e%2e/",
    "%2e%2e%2f",
    "%2e%2e/photos-private/secret.txt",
    "%252e%252e/photos-private/secret.txt",
    "/x",
    "/photos-private/secret.txt",
    "\\..\\photos-private\\secret.txt",
    "sub\\..\\..\\photos-private\\secret.txt",
    "./a.jpg",
    "sub/../../photos-private/secret.txt",
    "-private/secret.txt",
    "",
]


def raw():
    return boto3.client("s3", region_name="us-east-1")


def as_actor(user) -> Actor:
    return Actor(user=user, ip="192.0.2.10", user_agent="pytest", name=user.username)


def stranger() -> Actor:
    return Actor(ip="198.51.100.7", user_agent=UA)


def in_hours(hours: float) -> datetime.datetime:
    return timezone.now() + datetime.timedelta(hours=hours)


@pytest.fixture
def files(bucket) -> dict[str, bytes]:
    for key, body in FILES.items():
        raw().put_object(Bucket=bucket, Key=key, Body=body)
    return FILES


@pytest.fixture
def writer(alice):
    return alice  # alice manages team-files, so she may share


def folder_link(alice, **options) -> links.NewLink:
    options.setdefault("expires_at", in_hours(24))
    return links.link_create(
        actor=as_actor(alice), bucket="team-files", key="photos/", kind=LinkKind.FOLDER, **options
    )


def selection_link(alice, keys=("photos/a.jpg", "photos/sub/"), **options) -> links.NewLink:
    options.setdefault("expires_at", in_hours(24))
    return links.link_create(
        actor=as_actor(alice),
        bucket="team-files",
        key="photos/",
        kind=LinkKind.SELECTION,
        keys=list(keys),
        **options,
    )


def recipient() -> Client:
    return Client(enforce_csrf_checks=False, HTTP_USER_AGENT=UA, REMOTE_ADDR="203.0.113.9")


def get_file(client: Client, token: str, name: str):
    return client.post(f"/s/{token}/file", {"name": name})


def get_all(client: Client, token: str, path: str = ""):
    return client.post(f"/s/{token}/all", {"path": path})


def zip_names(response) -> dict[str, bytes]:
    body = b"".join(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def presigned_key(response) -> str:
    location = response["Location"]
    assert "X-Amz-Expires=60" in location or parse_qs(urlsplit(location).query)
    return urlsplit(location).path.split("/", 2)[-1]


# --- The scope rule ------------------------------------------------------------------------------


@pytest.mark.parametrize("relative", HOSTILE)
def test_hostile_names_never_reach_outside_a_folder_link(files, alice, relative):
    link = folder_link(alice).link
    try:
        key = link_scopes.scope_key(link, relative)
    except links.LinkError as error:
        assert error.status == 404
        return
    # Whatever is accepted stays inside the folder, as a plain name.
    assert key.startswith("photos/") and ".." not in key.split("/") and "//" not in key


@pytest.mark.parametrize("relative", HOSTILE)
def test_hostile_paths_never_list_outside(files, alice, relative):
    link = folder_link(alice).link
    try:
        prefix = link_scopes.scope_folder(link, relative)
    except links.LinkError:
        return
    assert prefix.startswith("photos/")
    assert ".." not in prefix.split("/") and "//" not in prefix and "\\" not in prefix


def test_a_folder_link_never_reaches_a_sibling_with_the_same_start(files, alice):
    link = folder_link(alice).link
    assert link_scopes.link_reaches(link, "photos/a.jpg")
    assert link_scopes.link_reaches(link, "photos/sub/c.jpg")
    assert not link_scopes.link_reaches(link, "photos-private/secret.txt")
    assert not link_scopes.link_reaches(link, "photos")
    assert not link_scopes.link_reaches(link, "photos.txt")
    assert not link_scopes.link_reaches(link, "photos/../photos-private/secret.txt")
    assert not link_scopes.folder_reaches(link, "photos-private/")


def test_nfd_names_are_normalised_once_to_nfc(files, alice):
    link = folder_link(alice).link
    nfd = "cafe\u0301.txt"
    assert link_scopes.scope_key(link, nfd) == "photos/caf\u00e9.txt"
    assert not link_scopes.link_reaches(link, "photos/" + nfd)  # only the stored NFC form


def test_a_selection_reaches_its_keys_and_under_its_folders_only(files, alice):
    link = selection_link(alice).link
    assert link_scopes.link_reaches(link, "photos/a.jpg")
    assert link_scopes.link_reaches(link, "photos/sub/c.jpg")
    assert not link_scopes.link_reaches(link, "photos/b.jpg")
    assert not link_scopes.link_reaches(link, "photos/sub")
    assert link_scopes.folder_reaches(link, "photos/sub/")
    with pytest.raises(links.LinkError):
        link_scopes.scope_folder(link, "other/")
    with pytest.raises(links.LinkError):
        link_scopes.scope_key(link, "b.jpg")


def test_a_file_link_reaches_its_one_file(files, alice):
    link = links.link_create(
        actor=as_actor(alice), bucket="team-files", key="photos/a.jpg", expires_at=in_hours(1)
    ).link
    assert link_scopes.scope_key(link, "") == "photos/a.jpg"
    assert not link_scopes.link_reaches(link, "photos/b.jpg")
    with pytest.raises(links.LinkError):
        link_scopes.scope_key(link, "../b.jpg")


# --- Creating ------------------------------------------------------------------------------------


def test_folder_link_is_created_and_audited(files, alice):
    new = folder_link(alice, max_downloads=3, password="correct horse")
    link = ShareLink.objects.get()
    assert (link.kind, link.key, link.keys, link.max_downloads) == ("folder", "photos/", [], 3)
    assert audit_rows(action="link.create") == [
        ("link.create", "intent", "pending"),
        ("link.create", "outcome", "success"),
    ]
    assert new.token not in " ".join(AuditEvent.objects.values_list("message", flat=True))


@pytest.mark.parametrize(
    "kind, key, keys",
    [
        ("folder", "photos", []),  # no trailing slash
        ("folder", "photos/../", []),
        ("selection", "photos/", []),
        ("selection", "photos/", ["other/x.txt"]),  # not in the folder
        ("selection", "photos/", ["photos/sub/c.jpg"]),  # deeper than the folder
        ("selection", "photos/", ["photos/../other/x.txt"]),
        ("bogus", "photos/", []),
    ],
)
def test_bad_targets_are_refused_with_a_reason(files, alice, kind, key, keys):
    with pytest.raises(links.LinkError) as refused:
        links.link_create(
            actor=as_actor(alice), bucket="team-files", key=key, kind=kind, keys=keys,
            expires_at=in_hours(1),
        )  # fmt: skip
    assert refused.value.status == 400 and refused.value.message
    assert ShareLink.objects.count() == 0
    assert ("link.create", "event", "refused") in audit_rows(action="link.create")


def test_a_missing_selected_file_or_empty_folder_is_a_404(files, alice):
    with pytest.raises(links.LinkError) as refused:
        selection_link(alice, keys=["photos/gone.jpg"])
    assert refused.value.status == 404
    with pytest.raises(links.LinkError):
        links.link_create(
            actor=as_actor(alice), bucket="team-files", key="empty/", kind="folder",
            expires_at=in_hours(1),
        )  # fmt: skip
    assert ShareLink.objects.count() == 0


def test_the_same_option_checks_apply(files, alice):
    with pytest.raises(links.LinkError):
        folder_link(alice, expires_at=in_hours(24 * 8))
    with pytest.raises(links.LinkError):
        folder_link(alice, password="short")
    assert ShareLink.objects.count() == 0


def test_a_reader_may_not_share_a_folder(files, bob):
    with pytest.raises(PermissionDenied):
        folder_link(bob)


def test_share_folder_page_and_create_by_form(files, alice, client):
    client_for(client, alice)
    page = client.get(reverse("folder_share", args=["team-files"]), {"prefix": "photos/"})
    assert page.status_code == 200
    assert b"a.jpg" in page.content and b"counts as one download" in page.content
    response = client.post(
        reverse("folder_link_create", args=["team-files"]),
        {"link-kind": "folder", "link-key": "photos/", "link-expiry": "1d"},
    )
    assert response.status_code == 200
    assert b"Back to the folder" in response.content
    assert ShareLink.objects.get().kind == "folder"


def test_the_selection_toolbar_opens_the_share_page(files, alice, client):
    client_for(client, alice)
    page = client.post(
        reverse("folder_share", args=["team-files"]),
        {"prefix": "photos/", "keys": ["photos/a.jpg", "photos/sub/"]},
    )
    assert page.status_code == 200 and ShareLink.objects.count() == 0
    assert b"Share 2 items" in page.content
    response = client.post(
        reverse("folder_link_create", args=["team-files"]),
        {
            "link-kind": "selection",
            "link-key": "photos/",
            "link-keys": ["photos/a.jpg", "photos/sub/"],
            "link-expiry": "1h",
        },
    )
    assert response.status_code == 200
    assert ShareLink.objects.get().keys == ["photos/a.jpg", "photos/sub/"]


def test_share_pages_404_for_outsiders_403_for_readers_405_for_get(files, charlie, bob, client):
    url = reverse("folder_share", args=["team-files"])
    assert client_for(client, charlie).get(url, {"prefix": "photos/"}).status_code == 404
    assert client_for(Client(), bob).get(url, {"prefix": "photos/"}).status_code == 403
    create = reverse("folder_link_create", args=["team-files"])
    assert client_for(Client(), bob).get(create).status_code == 405
    assert Client().post(create).status_code == 302  # to login


def test_a_bad_form_is_a_400_with_its_reason(files, alice, client):
    client_for(client, alice)
    response = client.post(
        reverse("folder_link_create", args=["team-files"]),
        {"link-kind": "selection", "link-key": "photos/", "link-expiry": "1d"},
    )
    assert response.status_code == 400
    assert b"Select at least one" in response.content
    assert ShareLink.objects.count() == 0


def test_emailing_a_folder_sends_one_link_per_recipient(
    files, alice, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        created = link_emails.links_email(
            actor=as_actor(alice), bucket="team-files", key="photos/", kind="folder",
            recipients=["one@example.com", "two@example.com"], expires_at=in_hours(2),
        )  # fmt: skip
    assert len(created) == 2 and len({new.token for new in created}) == 2
    assert {link.kind for link in ShareLink.objects.all()} == {"folder"}
    assert len(mail.outbox) == 2
    for message, new in zip(mail.outbox, created, strict=True):
        assert "shared a folder with you" in message.body
        assert new.url in message.body and message.to == [new.link.recipient_email]
    with django_capture_on_commit_callbacks(execute=True):
        link_emails.links_email(
            actor=as_actor(alice), bucket="team-files", key="photos/", kind="selection",
            keys=["photos/a.jpg", "photos/b.jpg"], recipients=["three@example.com"],
            expires_at=in_hours(2),
        )  # fmt: skip
    assert "shared 2 files with you" in mail.outbox[-1].body


# --- The recipient's side ------------------------------------------------------------------------


def test_recipient_sees_the_folder_as_it_is_now(files, alice):
    new = folder_link(alice)
    client = recipient()
    page = client.get(f"/s/{new.token}")
    assert page.status_code == 200
    body = page.content.decode()
    assert "a.jpg" in body and "b.jpg" in body and "sub/" in body
    assert "secret" not in body and "photos.txt" not in body
    raw().put_object(Bucket="team-files", Key="photos/new.jpg", Body=b"n")
    raw().delete_object(Bucket="team-files", Key="photos/b.jpg")
    body = client.get(f"/s/{new.token}").content.decode()
    assert "new.jpg" in body and "b.jpg" not in body
    sub = client.get(f"/s/{new.token}", {"path": "sub/"}).content.decode()
    assert "c.jpg" in sub and "a.jpg" not in sub


@pytest.mark.parametrize("path", ["../", "..", "%2e%2e/", "/x", "a//b/", "sub/../../", "\\.."])
def test_hostile_paths_on_the_recipient_page_are_404(files, alice, path):
    new = folder_link(alice)
    response = recipient().get(f"/s/{new.token}", {"path": path})
    assert response.status_code == 404
    assert b"secret" not in response.content


def test_percent_encoded_dots_in_the_url_are_refused(files, alice):
    new = folder_link(alice)
    response = recipient().get(f"/s/{new.token}?path=%2e%2e%2f")
    assert response.status_code == 404


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_file_names_download_nothing_outside(files, alice, name):
    new = folder_link(alice)
    response = get_file(recipient(), new.token, name)
    if response.status_code == 302:
        assert presigned_key(response).startswith("photos/")
    else:
        assert response.status_code == 404
    assert ShareLink.objects.get().downloads == (1 if response.status_code == 302 else 0)


def test_download_one_file_is_counted_and_audited(files, alice):
    new = folder_link(alice)
    response = get_file(recipient(), new.token, "sub/c.jpg")
    assert response.status_code == 302
    assert presigned_key(response) == "photos/sub/c.jpg"
    assert "X-Amz-Expires=60" in response["Location"]
    assert ShareLink.objects.get().downloads == 1
    rows = AuditEvent.objects.filter(action="link.download", outcome="success")
    counted = [row for row in rows if "download counted" in row.message]
    assert [row.key for row in counted] == ["photos/sub/c.jpg"]


def test_a_file_gone_from_the_folder_is_a_404_and_the_link_lives(files, alice):
    new = folder_link(alice)
    raw().delete_object(Bucket="team-files", Key="photos/a.jpg")
    assert get_file(recipient(), new.token, "a.jpg").status_code == 404
    link = ShareLink.objects.get()
    assert link.file_deleted_at is None and link.downloads == 0
    assert recipient().get(f"/s/{new.token}").status_code == 200


def test_download_all_streams_a_zip_counted_once(files, alice):
    new = folder_link(alice)
    response = get_all(recipient(), new.token)
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert zip_names(response) == {
        "a.jpg": b"aaa",
        "b.jpg": b"bbbb",
        "sub/c.jpg": b"ccccc",
        "caf\u00e9.txt": b"nfc",
    }
    assert ShareLink.objects.get().downloads == 1
    sub = get_all(recipient(), new.token, "sub/")
    assert zip_names(sub) == {"c.jpg": b"ccccc"}
    assert ShareLink.objects.get().downloads == 2


def test_download_all_of_a_selection_holds_only_what_is_still_chosen(files, alice):
    new = selection_link(alice, keys=["photos/a.jpg", "photos/b.jpg", "photos/sub/"])
    raw().delete_object(Bucket="team-files", Key="photos/b.jpg")
    assert zip_names(get_all(recipient(), new.token)) == {"a.jpg": b"aaa", "sub/c.jpg": b"ccccc"}
    page = recipient().get(f"/s/{new.token}").content.decode()
    assert "a.jpg" in page and "b.jpg" not in page and "caf" not in page


def test_the_selection_page_shows_only_chosen_keys(files, alice):
    new = selection_link(alice)
    body = recipient().get(f"/s/{new.token}").content.decode()
    assert "a.jpg" in body and "sub/" in body and "b.jpg" not in body
    assert get_file(recipient(), new.token, "b.jpg").status_code == 404
    assert get_all(recipient(), new.token, "../").status_code == 404


def test_the_download_limit_counts_files_and_zips_alike(files, alice):
    new = folder_link(alice, max_downloads=2)
    assert get_file(recipient(), new.token, "a.jpg").status_code == 302
    assert get_all(recipient(), new.token).status_code == 200
    assert get_file(recipient(), new.token, "b.jpg").status_code == 410
    assert get_all(recipient(), new.token).status_code == 410
    assert recipient().get(f"/s/{new.token}").status_code == 410
    assert ShareLink.objects.get().downloads == 2


def test_revoked_and_expired_links_are_gone(files, alice):
    new = folder_link(alice)
    links.link_revoke(actor=as_actor(alice), link=new.link)
    for response in (
        recipient().get(f"/s/{new.token}"),
        get_file(recipient(), new.token, "a.jpg"),
        get_all(recipient(), new.token),
    ):
        assert response.status_code == 410
    other = folder_link(alice)
    ShareLink.objects.filter(pk=other.link.pk).update(expires_at=timezone.now())
    assert recipient().get(f"/s/{other.token}").status_code == 410
    assert get_all(recipient(), other.token).status_code == 410


def test_a_password_hides_the_names_until_given(files, alice):
    new = folder_link(alice, password="correct horse")
    client = recipient()
    page = client.get(f"/s/{new.token}")
    assert page.status_code == 200 and b"a.jpg" not in page.content
    assert get_file(client, new.token, "a.jpg").status_code == 403
    assert get_all(client, new.token).status_code == 403
    wrong = client.post(f"/s/{new.token}/unlock", {"password": "wrong horse"})
    assert wrong.status_code == 403 and b"a.jpg" not in wrong.content
    assert ("link.password", "event", "failure") in audit_rows(action="link.password")
    right = client.post(f"/s/{new.token}/unlock", {"password": "correct horse"})
    assert right.status_code == 302
    assert b"a.jpg" in client.get(f"/s/{new.token}").content
    assert get_file(client, new.token, "a.jpg").status_code == 302
    assert get_file(recipient(), new.token, "a.jpg").status_code == 403  # another browser
    assert ShareLink.objects.get().downloads == 1


def test_pages_of_200(files, alice, bucket):
    for index in range(205):
        raw().put_object(Bucket=bucket, Key=f"photos/many/{index:03}.txt", Body=b".")
    new = folder_link(alice)
    link = ShareLink.objects.get()
    first = link_listings.link_listing(actor=stranger(), link=link, path="many/")
    assert len(first.files) == 200 and first.next_token
    second = link_listings.link_listing(
        actor=stranger(), link=link, path="many/", token=first.next_token
    )
    assert len(second.files) == 5 and not second.next_token
    page = recipient().get(f"/s/{new.token}", {"path": "many/"})
    assert b'data-testid="next-page"' in page.content


def test_first_download_notice_for_a_folder(files, alice, django_capture_on_commit_callbacks):
    alice.email = "alice@example.com"
    alice.save()
    new = folder_link(alice, notify_on_download=True)
    with django_capture_on_commit_callbacks(execute=True):
        get_all(recipient(), new.token)
        get_file(recipient(), new.token, "a.jpg")
    assert [message.to for message in mail.outbox] == [["alice@example.com"]]


def test_recipient_posts_need_post(files, alice):
    new = folder_link(alice)
    assert recipient().get(f"/s/{new.token}/file").status_code == 405
    assert recipient().get(f"/s/{new.token}/all").status_code == 405
    assert recipient().post("/s/not-a-token/file", {"name": "a.jpg"}).status_code == 404


def test_my_links_shows_the_kind(files, alice, client):
    folder_link(alice)
    selection_link(alice, keys=["photos/a.jpg", "photos/b.jpg"])
    page = client_for(client, alice).get(reverse("link_list")).content.decode()
    assert "Folder" in page and "2 files" in page
    assert "prefix=photos%2F" in page


def test_a_grant_taken_away_disables_the_folder_link(files, alice, bob):
    BucketGrant.objects.filter(user=bob, bucket="team-files").update(role="write")
    new = folder_link(bob)
    BucketGrant.objects.filter(user=bob, bucket="team-files").delete()
    assert recipient().get(f"/s/{new.token}").status_code == 410
    assert get_all(recipient(), new.token).status_code == 410


def storage_down(settings) -> None:
    settings.S3_ENDPOINT_URL = "http://127.0.0.1:9"
    settings.S3_MAX_ATTEMPTS = 1


def test_storage_down_gives_503_and_counts_nothing(files, alice, client, settings):
    new = folder_link(alice)
    storage_down(settings)
    assert recipient().get(f"/s/{new.token}").status_code == 503
    assert get_file(recipient(), new.token, "a.jpg").status_code == 503
    assert get_all(recipient(), new.token).status_code == 503
    assert ShareLink.objects.get().downloads == 0
    create = client_for(client, alice).post(
        reverse("folder_link_create", args=["team-files"]),
        {"link-kind": "folder", "link-key": "photos/", "link-expiry": "1h"},
    )
    assert create.status_code == 503
    assert ShareLink.objects.count() == 1


def test_email_view_sends_links_and_returns_to_the_folder(
    files, alice, client, django_capture_on_commit_callbacks
):
    client_for(client, alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("folder_links_email", args=["team-files"]),
            {
                "email-kind": "selection",
                "email-key": "photos/",
                "email-keys": ["photos/a.jpg"],
                "email-recipients": "one@example.com, two@example.com",
                "email-expiry": "1d",
            },
        )
    assert response.status_code == 302 and "prefix=photos%2F" in response["Location"]
    assert sorted(message.to[0] for message in mail.outbox) == [
        "one@example.com",
        "two@example.com",
    ]
    assert "shared 1 file with you" in mail.outbox[0].body


def test_the_admin_shows_the_kind(files, alice, admin_user, client):
    folder_link(alice)
    page = client_for(client, admin_user).get(reverse("admin:sharing_sharelink_changelist"))
    assert page.status_code == 200 and b"Folder" in page.content
