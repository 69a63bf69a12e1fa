"""Previews on moto: text, tables, Markdown, JSON, media URLs, hostile files, links and the CSP."""

import datetime
import html
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit

import boto3
import pytest
from django.http import Http404
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from sharing import s3
from sharing.audit import Actor
from sharing.middleware import with_sources
from sharing.models import AuditEvent
from sharing.services import links, previews
from tests.conftest import audit_rows, client_for

HOSTILE_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.cookie)" width="10" '
    b'height="10"><script>fetch("/links/")</script><rect width="10" height="10"/></svg>'
)
HOSTILE_HTML = (
    b"<!doctype html><html><body onload=\"alert(1)\"><script>document.title='owned'</script>"
    b"<iframe src='javascript:alert(2)'></iframe><h1>Hello</h1></body></html>"
)
MARKDOWN = b"""# Notes

Some *text* and a [safe link](https://example.com/a).

<script>alert("raw")</script>

<img src=x onerror="alert('img')">

[click me](javascript:alert('js'))

| a | b |
|---|---|
| 1 | 2 |
"""


def raw():
    return boto3.client("s3", region_name="us-east-1")


def put(bucket: str, key: str, body: bytes, content_type: str = "") -> None:
    extra = {"ContentType": content_type} if content_type else {}
    raw().put_object(Bucket=bucket, Key=key, Body=body, **extra)


def page(client, bucket: str, key: str):
    return client.get(f"{reverse('object_detail', args=[bucket])}?{urlencode({'key': key})}")


def preview_of(user, bucket: str, key: str) -> previews.Preview:
    info = s3.head(bucket, key)
    return previews.object_preview(
        actor=Actor(user=user, name=user.username), bucket=bucket, info=info
    )


def elements_of(markup: str) -> tuple[set[str], dict[str, str]]:
    """Return the tags and the attributes (name: value) of an HTML fragment."""
    found: tuple[set[str], dict[str, str]] = (set(), {})

    class Collector(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found[0].add(tag)
            found[1].update((name, value or "") for name, value in attrs)

    Collector().feed(markup)
    return found


def presigned_query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


@pytest.mark.parametrize(
    ("name", "content_type", "kind"),
    [
        ("notes.txt", "", "text"),
        ("main.py", "application/octet-stream", "text"),
        ("data.csv", "", "csv"),
        ("data.tsv", "", "csv"),
        ("README.md", "", "markdown"),
        ("config.json", "", "json"),
        ("photo.JPG", "", "image"),
        ("logo.svg", "", "svg"),
        ("no-extension", "image/svg+xml", "svg"),
        ("page.html", "", "html"),
        ("page.txt", "text/html", "text"),
        ("page", "text/html", "html"),
        ("Makefile", "", "text"),
        (".gitignore", "", "text"),
        ("report.pdf", "", "pdf"),
        ("song.mp3", "", "audio"),
        ("clip.webm", "", "video"),
        ("archive.zip", "application/zip", "none"),
        ("blob", "", "none"),
        ("picture", "image/png", "image"),
    ],
)
def test_kind_comes_from_the_name_then_the_stored_type(name, content_type, kind):
    assert previews.preview_kind(name=name, content_type=content_type).name == kind


def test_text_page_shows_the_escaped_text_with_its_encoding(client, alice, bucket):
    put(bucket, "notes/hello.txt", "Grüße <b>bold</b> & more\n".encode())
    response = page(client_for(client, alice), bucket, "notes/hello.txt")
    assert response.status_code == 200
    text = response.content.decode()
    assert 'data-testid="preview-text"' in text
    assert "Grüße &lt;b&gt;bold&lt;/b&gt; &amp; more" in text
    assert "<b>bold</b>" not in text
    assert "Encoding: utf-8" in text


def test_preview_is_audited_as_a_read(client, alice, bucket):
    put(bucket, "a.txt", b"hello")
    page(client_for(client, alice), bucket, "a.txt")
    assert audit_rows(action="object.preview") == [
        ("object.preview", "intent", "pending"),
        ("object.preview", "outcome", "success"),
    ]


def test_text_head_only_is_read_and_the_page_says_so(client, alice, bucket, settings):
    settings.PREVIEW_TEXT_BYTES = 1000
    put(bucket, "big.log", b"0123456789" * 500)
    preview = preview_of(alice, bucket, "big.log")
    assert preview.read_bytes == 1000 and preview.size == 5000 and preview.truncated
    outcome = AuditEvent.objects.filter(action="object.preview", phase="outcome").get()
    assert outcome.message == "first 1000 of 5000 bytes read."
    assert preview.text == "0123456789" * 100
    text = page(client_for(client, alice), bucket, "big.log").content.decode()
    assert "The first 1000\xa0bytes of 4.9\xa0KB." in text


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Grüße aus Köln — ünïcödé ✓\n" * 20, "utf-8"),
        ("Hello wörld, UTF-16 with a BOM.\n" * 20, "utf-16"),
        ("Café au lait, crème brûlée, déjà vu. Ça va très bien, merci!\n" * 10, "latin-1"),
        ("これは日本語のテキストです。シフトJISで書かれています。東京都\n" * 20, "shift_jis"),
    ],
)
def test_encodings_are_detected(alice, bucket, text, encoding):
    put(bucket, "enc.txt", text.encode(encoding))
    preview = preview_of(alice, bucket, "enc.txt")
    assert preview.text == text
    assert preview.encoding


def test_a_character_cut_at_the_end_of_the_head_is_dropped(alice, bucket, settings):
    put(bucket, "cut.txt", ("é" * 200).encode())  # 2 bytes each: the 101st byte starts the 51st
    settings.PREVIEW_TEXT_BYTES = 101
    preview = preview_of(alice, bucket, "cut.txt")
    assert preview.text == "é" * 50


def test_empty_file_previews_as_empty_text(alice, bucket):
    put(bucket, "empty.txt", b"")
    preview = preview_of(alice, bucket, "empty.txt")
    assert preview.kind == "text" and preview.text == "" and not preview.truncated


def test_html_file_is_shown_only_as_escaped_source(client, alice, bucket):
    put(bucket, "site/index.html", HOSTILE_HTML, "text/html")
    response = page(client_for(client, alice), bucket, "site/index.html")
    text = response.content.decode()
    assert response.status_code == 200
    assert "HTML is shown as its source text, never as a page." in text
    assert "<script>document.title" not in text
    assert "&lt;script&gt;document.title=&#x27;owned&#x27;&lt;/script&gt;" in text
    assert "<iframe" not in text  # neither the file's nor a preview frame
    assert "s3.amazonaws.com" not in response["Content-Security-Policy"]


def test_hostile_svg_is_only_an_img_and_escaped_source(client, alice, bucket):
    put(bucket, "logo.svg", HOSTILE_SVG, "image/svg+xml")
    response = page(client_for(client, alice), bucket, "logo.svg")
    text = response.content.decode()
    assert "<svg" not in text and "onload=" not in text.replace("onload=&quot;", "")
    assert "&lt;script&gt;fetch(&quot;/links/&quot;)&lt;/script&gt;" in text
    preview = preview_of(alice, bucket, "logo.svg")
    assert preview.kind == "svg"
    assert f'<img src="{html.escape(preview.url)}"'.split("X-Amz-Date")[0] in text
    query = presigned_query(preview.url)
    assert query["response-content-type"] == "image/svg+xml"
    assert query["response-content-disposition"].startswith("inline;")
    assert int(query["X-Amz-Expires"]) <= 60
    assert urlsplit(preview.url).netloc == "s3.amazonaws.com"  # S3's origin, not the portal's


def test_no_portal_response_serves_an_svg_inline(client, alice, bucket):
    put(bucket, "logo.svg", HOSTILE_SVG, "image/svg+xml")
    download = client_for(client, alice).get(
        f"{reverse('object_download', args=[bucket])}?key=logo.svg"
    )
    assert download.status_code == 302  # the portal hands out S3 URLs, never the bytes
    assert presigned_query(download["Location"])["response-content-disposition"].startswith(
        "attachment;"
    )
    shown = page(client, bucket, "logo.svg")
    assert shown["Content-Type"].startswith("text/html")
    assert HOSTILE_SVG not in shown.content


def test_csv_is_a_table_with_its_delimiter_sniffed(client, alice, bucket):
    put(bucket, "semi.csv", b"name;city;age\nAda;London;36\nAlan;Wilmslow;41\n")
    put(bucket, "tabs.tsv", b"name\tcity\nGrace\tNew York\n")
    semi = preview_of(alice, bucket, "semi.csv")
    assert semi.kind == "csv"
    assert semi.header == ["name", "city", "age"]
    assert semi.rows == [["Ada", "London", "36"], ["Alan", "Wilmslow", "41"]]
    tabs = preview_of(alice, bucket, "tabs.tsv")
    assert tabs.header == ["name", "city"] and tabs.rows == [["Grace", "New York"]]
    text = page(client_for(client, alice), bucket, "semi.csv").content.decode()
    assert '<th scope="col">city</th>' in text and "<td>Wilmslow</td>" in text


def test_csv_shows_its_first_rows_only(alice, bucket, settings):
    settings.PREVIEW_CSV_ROWS = 10
    put(bucket, "long.csv", b"n,square\n" + b"".join(b"%d,%d\n" % (n, n * n) for n in range(50)))
    preview = preview_of(alice, bucket, "long.csv")
    assert len(preview.rows) + 1 == 10 and preview.more_rows


@pytest.mark.parametrize(
    "body",
    [
        b"a,b,c\n1,2\n3,4,5,6,7\n\n8\n",  # ragged rows
        b'a,b\n"unclosed,2\n3,4\n"x"y",5\n',  # bad quotes
        b"a,b\n1,\x00\x01\xff\xfe\n\x80\x81,2\n",  # binary bytes, a NUL among them
        b"\xff\xd8\xff\xe0" + bytes(range(256)) * 20,  # not text at all
        b"x" * 200_000 + b",y\n",  # a field longer than the csv module takes
    ],
)
def test_broken_csv_gives_a_table_or_a_clear_message(client, alice, bucket, body):
    put(bucket, "broken.csv", body)
    response = page(client_for(client, alice), bucket, "broken.csv")
    assert response.status_code == 200
    text = response.content.decode()
    assert 'data-testid="preview-table"' in text or "could not be read as a table" in text


def test_ragged_rows_are_padded_into_one_table(alice, bucket):
    put(bucket, "ragged.csv", b"a,b,c\n1,2\n3,4,5,6\n")
    preview = preview_of(alice, bucket, "ragged.csv")
    assert preview.kind == "csv"
    assert preview.header == ["a", "b", "c", ""]
    assert preview.rows == [["1", "2", "", ""], ["3", "4", "5", "6"]]


def test_csv_the_csv_module_refuses_falls_back_to_text(alice, bucket):
    put(bucket, "huge-field.csv", b"a,b\n" + b"x" * 200_000 + b",y\n")  # over csv's field limit
    preview = preview_of(alice, bucket, "huge-field.csv")
    assert preview.kind == "text"
    assert preview.note.startswith("This file could not be read as a table")


def test_markdown_is_rendered_and_sanitised(client, alice, bucket):
    put(bucket, "README.md", MARKDOWN)
    preview = preview_of(alice, bucket, "README.md")
    rendered = str(preview.html)
    assert "<h1>Notes</h1>" in rendered and "<em>text</em>" in rendered
    assert '<a href="https://example.com/a" rel="noopener noreferrer nofollow">' in rendered
    assert "<table>" in rendered
    tags, attributes = elements_of(rendered)
    assert not {"script", "img", "iframe"} & tags
    assert not [name for name in attributes if name.startswith("on")]
    assert not [value for value in attributes.values() if "javascript:" in value]
    assert "&lt;script&gt;" in rendered  # raw HTML is shown as text, not passed through
    text = page(client_for(client, alice), bucket, "README.md").content.decode()
    assert 'data-testid="preview-markdown"' in text and "<script>alert" not in text


def test_json_is_pretty_printed(alice, bucket):
    put(bucket, "c.json", b'{"name":"Ada","tags":["x","y"],"n":1}')
    preview = preview_of(alice, bucket, "c.json")
    assert preview.kind == "json"
    assert preview.text == '{\n  "name": "Ada",\n  "tags": [\n    "x",\n    "y"\n  ],\n  "n": 1\n}'


def test_invalid_json_falls_back_to_text_with_a_note(client, alice, bucket):
    put(bucket, "bad.json", b'{"name": "Ada",, }')
    preview = preview_of(alice, bucket, "bad.json")
    assert preview.kind == "text" and preview.text == '{"name": "Ada",, }'
    assert preview.note.startswith("This is not valid JSON")
    text = page(client_for(client, alice), bucket, "bad.json").content.decode()
    assert "This is not valid JSON" in text


def test_truncated_json_says_the_part_read_is_incomplete(alice, bucket, settings):
    settings.PREVIEW_TEXT_BYTES = 20
    put(bucket, "long.json", b'{"items": [' + b'"abc", ' * 20 + b'"z"]}')
    preview = preview_of(alice, bucket, "long.json")
    assert preview.kind == "text" and preview.note.startswith("The part read is not complete")


def test_image_gets_a_short_inline_url_and_the_csp_names_s3_for_images_only(client, alice, bucket):
    put(bucket, "photo.png", b"\x89PNG\r\n\x1a\n not really", "application/octet-stream")
    response = page(client_for(client, alice), bucket, "photo.png")
    policy = response["Content-Security-Policy"]
    assert "img-src 'self' data: https://s3.amazonaws.com;" in policy
    assert "media-src" not in policy and "frame-src" not in policy
    preview = preview_of(alice, bucket, "photo.png")
    query = presigned_query(preview.url)
    assert query["response-content-type"] == "image/png"  # the portal's type, not the stored one
    assert query["response-content-disposition"].startswith('inline; filename="photo.png"')
    assert 'data-testid="preview-image"' in response.content.decode()


@pytest.mark.parametrize(
    ("key", "directive", "testid"),
    [("song.mp3", "media-src", "preview-audio"), ("clip.mp4", "media-src", "preview-video"),
     ("doc.pdf", "frame-src", "preview-pdf")],
)  # fmt: skip
def test_media_pages_name_s3_in_the_directive_they_need(
    client, alice, bucket, key, directive, testid
):
    put(bucket, key, b"\x00" * 100)
    response = page(client_for(client, alice), bucket, key)
    policy = response["Content-Security-Policy"]
    assert f"{directive} 'self' https://s3.amazonaws.com" in policy
    assert "img-src 'self' data:;" in policy
    assert f'data-testid="{testid}"' in response.content.decode()


def test_pages_without_a_media_preview_keep_the_default_policy(client, alice, bucket, settings):
    put(bucket, "a.txt", b"text")
    policy = page(client_for(client, alice), bucket, "a.txt")["Content-Security-Policy"]
    assert policy == settings.CONTENT_SECURITY_POLICY.format(s3="https:")
    assert client.get(reverse("bucket_list"))["Content-Security-Policy"] == policy


def test_with_sources_adds_to_a_directive_or_starts_a_missing_one():
    policy = "default-src 'self'; img-src 'self' data:; object-src 'none'"
    assert with_sources(policy, {"img-src": ["https://s3.example"]}) == (
        "default-src 'self'; img-src 'self' data: https://s3.example; object-src 'none'"
    )
    assert with_sources(policy, {"media-src": ["https://s3.example"]}).endswith(
        "object-src 'none'; media-src 'self' https://s3.example"
    )


def test_large_images_get_no_preview(client, alice, bucket, settings):
    settings.PREVIEW_MEDIA_MAX_BYTES = 10
    put(bucket, "big.png", b"\x89PNG" * 10)
    response = page(client_for(client, alice), bucket, "big.png")
    assert "too large to preview" in response.content.decode()
    assert "s3.amazonaws.com" not in response["Content-Security-Policy"]


def test_unknown_files_say_there_is_no_preview(client, alice, bucket):
    put(bucket, "data.bin", b"\x00\x01", "application/octet-stream")
    text = page(client_for(client, alice), bucket, "data.bin").content.decode()
    assert "No preview for this kind of file" in text
    assert audit_rows(action="object.preview") == []


def test_storage_failure_shows_a_message_not_an_error_page(client, alice, bucket, monkeypatch):
    put(bucket, "a.txt", b"text")

    def fail(*args, **kwargs):
        raise s3.S3Error("The storage service cannot be reached right now.", status=503)

    monkeypatch.setattr(s3, "read_head", fail)
    response = page(client_for(client, alice), bucket, "a.txt")
    assert response.status_code == 200
    assert "The preview could not be loaded" in response.content.decode()
    assert audit_rows(action="object.preview")[-1] == ("object.preview", "outcome", "failure")


def test_reader_gets_a_preview_and_charlie_gets_none(client, bob, charlie, bucket):
    put(bucket, "a.txt", b"secret plans")
    assert "secret plans" in page(client_for(client, bob), bucket, "a.txt").content.decode()
    other = Client()
    response = page(client_for(other, charlie), bucket, "a.txt")
    assert response.status_code == 404 and b"secret plans" not in response.content
    info = s3.head(bucket, "a.txt")
    with pytest.raises(Http404):
        previews.object_preview(actor=Actor(user=charlie, name="charlie"), bucket=bucket, info=info)
    assert audit_rows(action="object.preview", actor_id=charlie.pk) == [
        ("object.preview", "event", "denied")
    ]


# Share links: the preview comes after every check, and never gives more than the link allows.


def make_link(alice, key: str, **options) -> links.NewLink:
    expires = options.pop("expires_at", timezone.now() + datetime.timedelta(days=1))
    return links.link_create(
        actor=Actor(user=alice, name="alice"), bucket="team-files", key=key, expires_at=expires,
        **options,
    )  # fmt: skip


def test_link_page_shows_the_preview(alice, bucket):
    put(bucket, "share/table.csv", b"a,b\n1,2\n")
    new = make_link(alice, "share/table.csv")
    response = Client().get(f"/s/{new.token}")
    text = response.content.decode()
    assert response.status_code == 200
    assert '<th scope="col">a</th>' in text and "<td>2</td>" in text
    assert audit_rows(action="link.preview") == [
        ("link.preview", "intent", "pending"),
        ("link.preview", "outcome", "success"),
    ]


def test_link_image_preview_names_s3_in_img_src_and_keeps_form_action(alice, bucket):
    put(bucket, "share/photo.png", b"\x89PNG")
    new = make_link(alice, "share/photo.png")
    response = Client().get(f"/s/{new.token}")
    policy = response["Content-Security-Policy"]
    assert "img-src 'self' data: https://s3.amazonaws.com" in policy
    assert "form-action 'self' https://s3.amazonaws.com" in policy
    assert 'data-testid="preview-image"' in response.content.decode()


def test_link_preview_url_never_outlives_the_link(alice, bucket):
    put(bucket, "share/song.mp3", b"ID3")
    new = make_link(
        alice, "share/song.mp3", expires_at=timezone.now() + datetime.timedelta(seconds=90)
    )
    page_ = links.LinkPage(link=new.link, size=3, sender="alice", needs_password=False)
    preview = previews.link_preview(actor=Actor(), page=page_)
    assert int(presigned_query(preview.url)["X-Amz-Expires"]) <= 90


@pytest.mark.parametrize(
    ("options", "reason"),
    [({"max_downloads": 3}, "limited number of downloads"),
     ({"notify_on_download": True}, "asked to be told")],
)  # fmt: skip
def test_link_that_limits_or_reports_downloads_shows_no_preview(alice, bucket, options, reason):
    put(bucket, "share/plan.txt", b"the secret plan")
    new = make_link(alice, "share/plan.txt", **options)
    response = Client().get(f"/s/{new.token}")
    text = response.content.decode()
    assert response.status_code == 200
    assert reason in text and "the secret plan" not in text
    assert audit_rows(action="link.preview") == []


def test_link_preview_only_after_the_password(alice, bucket):
    put(bucket, "share/plan.txt", b"the secret plan")
    new = make_link(alice, "share/plan.txt", password="open sesame 42")
    visitor = Client()
    locked = visitor.get(f"/s/{new.token}").content.decode()
    assert "the secret plan" not in locked and "plan.txt" not in locked
    assert 'data-testid="unlock-preview"' in locked
    wrong = visitor.post(reverse("link_unlock", args=[new.token]), {"password": "nope"})
    assert wrong.status_code == 403
    assert "Wrong password." in wrong.content.decode()
    assert 'data-testid="recipient-page"' in wrong.content.decode()
    assert "the secret plan" not in wrong.content.decode()
    unlocked = visitor.post(
        reverse("link_unlock", args=[new.token]), {"password": "open sesame 42"}
    )
    assert unlocked.status_code == 302 and unlocked["Location"].endswith(f"/s/{new.token}")
    shown = visitor.get(f"/s/{new.token}").content.decode()
    assert "the secret plan" in shown and 'data-testid="file-name"' in shown
    assert 'name="password"' not in shown
    download = visitor.post(f"/s/{new.token}")  # no password again: the session knows it
    assert download.status_code == 302
    assert "s3.amazonaws.com" in download["Location"]
    assert "the secret plan" not in Client().get(f"/s/{new.token}").content.decode()


def test_password_page_of_a_limited_link_offers_no_preview(alice, bucket):
    put(bucket, "share/plan.txt", b"the secret plan")
    new = make_link(alice, "share/plan.txt", password="open sesame 42", max_downloads=1)
    assert 'data-testid="unlock-preview"' not in Client().get(f"/s/{new.token}").content.decode()
