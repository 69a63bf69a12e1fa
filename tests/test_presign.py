"""Download URLs: botocore's SigV4 presigned GETs that save the file under its own name."""

from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from sharing import s3


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


@pytest.mark.parametrize(
    ("key", "filename"),
    [
        ("report.pdf", "report.pdf"),
        ("2026/résumé 2026.txt", "résumé 2026.txt"),
        ("a+b&c=d#e?f", "a+b&c=d#e?f"),
    ],
)
def test_download_url_saves_the_file_under_its_name(key, filename):
    url = s3.presigned_get("team-files", key, filename=filename, seconds=60)
    query = query_of(url)
    assert unquote(urlsplit(url).path) == f"/team-files/{key}"
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["60"]
    disposition = query["response-content-disposition"][0]
    assert disposition.startswith("attachment; ")
    assert unquote(disposition.split("filename*=UTF-8''", 1)[1]) == filename


def test_download_url_carries_the_session_token(settings):
    settings.S3_SESSION_TOKEN = "FwoGZXIvYXdzE+token/with=chars"
    url = s3.presigned_get("team-files", "a/b.txt", filename="b.txt", seconds=3600)
    assert query_of(url)["X-Amz-Security-Token"] == [settings.S3_SESSION_TOKEN]
    assert s3.uses_temporary_credentials() is True


def test_long_lived_keys_are_not_temporary():
    assert s3.uses_temporary_credentials() is False


def test_download_url_uses_the_public_endpoint(settings):
    settings.S3_ENDPOINT_URL = "http://127.0.0.1:8333"
    settings.S3_PUBLIC_ENDPOINT_URL = "https://files.example.test"
    url = s3.presigned_get("team-files", "a/b.txt", filename="b.txt", seconds=60)
    assert url.startswith("https://files.example.test/team-files/a/b.txt?")
    assert s3.download_origin("team-files", "a/b.txt") == "https://files.example.test"


@pytest.mark.parametrize("seconds", [0, 7 * 24 * 3600 + 1])
def test_download_url_beyond_sigv4_limits_is_refused(seconds):
    with pytest.raises(s3.S3Error) as caught:
        s3.presigned_get("team-files", "a.txt", filename="a.txt", seconds=seconds)
    assert caught.value.status == 400


def test_download_url_without_credentials_is_a_clear_error(settings, monkeypatch, tmp_path):
    settings.S3_ACCESS_KEY_ID = settings.S3_SECRET_ACCESS_KEY = ""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    # Nothing for boto3's default chain to find: no files, no instance metadata service.
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(s3.S3Error) as caught:
        s3.presigned_get("team-files", "a.txt", filename="a.txt", seconds=60)
    assert caught.value.status == 503
    assert caught.value.code == "NoCredentials"
