"""`uploads_cleanup --all` on the real embedded server, whose uploads carry their real start time
(moto dates every multipart upload in 2010, so only here is an untracked upload young)."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from sharing import services
from sharing.audit import Actor
from tests.conftest import audit_rows, server_client

pytestmark = pytest.mark.integration

BUCKET = "cleanup-young"


@pytest.fixture
def young_stray(real_s3, alice) -> str:
    """A multipart upload started a moment ago in a known bucket, outside the portal."""
    services.bucket_create(actor=Actor(user=alice, name="alice"), name=BUCKET)
    server_client(real_s3).create_multipart_upload(Bucket=BUCKET, Key="stray.bin")
    return "stray.bin"


def unfinished(real_s3) -> list[str]:
    uploads = server_client(real_s3).list_multipart_uploads(Bucket=BUCKET)
    return [upload["Key"] for upload in uploads.get("Uploads", [])]


def test_young_stray_stays_unless_all_is_confirmed(real_s3, young_stray, monkeypatch):
    call_command("uploads_cleanup", "--hours", "1")
    assert unfinished(real_s3) == [young_stray]

    questions = []
    monkeypatch.setattr("builtins.input", lambda question: questions.append(question) or "n")
    with pytest.raises(CommandError, match="Cancelled"):
        call_command("uploads_cleanup", "--all")
    assert questions == [
        "Abort 1 unfinished upload, started less than an hour ago (it may be in progress)? [y/N] "
    ]
    assert unfinished(real_s3) == [young_stray]
    assert audit_rows(action="upload.abort") == []

    call_command("uploads_cleanup", "--all", "--yes")
    assert unfinished(real_s3) == []
    assert audit_rows(action="upload.abort", key=young_stray) == [
        ("upload.abort", "intent", "pending"),
        ("upload.abort", "outcome", "success"),
    ]
