"""The download URL signer gives exactly the URL botocore's generate_presigned_url gives."""

from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.exceptions import NoCredentialsError

from sharing import s3
from sharing.s3 import core
from sharing.s3.objects import content_disposition

KEYS = [
    "report.pdf",
    "2026/résumé 2026.txt",
    "a+b&c=d#e?f%g;h",
    "spaces  and ~tilde/x",
    "中文/文件.pdf",
    "quote\"s and 'apostrophes'",
    "trailing.",
]
ENDPOINTS = [
    ("", "path", "us-east-1"),
    ("", "virtual", "eu-west-3"),
    ("http://127.0.0.1:8333", "path", "us-east-1"),
    ("https://s3.example.test", "virtual", "us-east-1"),
    ("https://minio.example.test:9000", "path", "eu-central-1"),
    ("https://minio.example.test:443", "path", "us-east-1"),
    ("http://127.0.0.1:80", "path", "us-east-1"),
]


def botocore_url(bucket: str, key: str, filename: str, seconds: int) -> str:
    return core.presign_client().generate_presigned_url(
        "get_object",
        Params={
            "Bucket": bucket,
            "Key": key,
            "ResponseContentDisposition": content_disposition(filename),
        },
        ExpiresIn=seconds,
    )


def same_second_pair(bucket: str, key: str, filename: str, seconds: int) -> tuple[str, str]:
    # Both sign with the clock: retry in the rare case the second changed between the two.
    for _ in range(5):
        expected = botocore_url(bucket, key, filename, seconds)
        got = s3.presigned_get(bucket, key, filename=filename, seconds=seconds)
        date = parse_qs(urlsplit(expected).query)["X-Amz-Date"]
        if parse_qs(urlsplit(got).query)["X-Amz-Date"] == date:
            return expected, got
    raise AssertionError("the clock kept moving")


@pytest.mark.parametrize(("endpoint", "style", "region"), ENDPOINTS)
@pytest.mark.parametrize("key", KEYS)
def test_download_url_is_botocores_url(settings, endpoint, style, region, key):
    settings.S3_ENDPOINT_URL = endpoint
    settings.S3_ADDRESSING_STYLE = style
    settings.S3_REGION = region
    expected, got = same_second_pair("team-files", key, key.rsplit("/", 1)[-1], 60)
    assert got == expected


def test_download_url_carries_the_session_token(settings):
    settings.S3_SESSION_TOKEN = "FwoGZXIvYXdzE+token/with=chars"
    expected, got = same_second_pair("team-files", "a/b.txt", "b.txt", 3600)
    assert got == expected
    assert parse_qs(urlsplit(got).query)["X-Amz-Security-Token"] == [settings.S3_SESSION_TOKEN]


def test_download_url_uses_the_public_endpoint(settings):
    settings.S3_ENDPOINT_URL = "http://127.0.0.1:8333"
    settings.S3_PUBLIC_ENDPOINT_URL = "https://files.example.test"
    expected, got = same_second_pair("team-files", "a/b.txt", "b.txt", 60)
    assert got == expected
    assert got.startswith("https://files.example.test/team-files/a/b.txt?")


def test_download_url_without_credentials_is_a_clear_error(monkeypatch):
    class NoCredentialsSigner:
        _credentials = None

    monkeypatch.setattr(core.presign_client(), "_request_signer", NoCredentialsSigner())
    with pytest.raises(s3.S3Error) as caught:
        s3.presigned_get("team-files", "a.txt", filename="a.txt", seconds=60)
    assert caught.value.status == 503
    assert caught.value.code == "NoCredentials"
    assert isinstance(caught.value.__cause__, NoCredentialsError)
