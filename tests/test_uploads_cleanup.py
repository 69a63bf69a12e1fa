"""`manage.py uploads_cleanup`: what it aborts, when it asks first, and what it says when the
storage is out of reach (in-process on moto, and from a plain shell as a person runs it)."""

import json
import socket
import subprocess
from pathlib import Path

import boto3
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from sharing.audit import Actor
from sharing.models import AuditEvent, BucketGrant, PendingUpload, Role
from sharing.services import uploads as service
from tests.conftest import audit_rows, manage_from_a_shell

ROOT = Path(__file__).resolve().parent.parent
QUESTION = (
    "Abort 2 unfinished uploads, some started less than an hour ago (they may be in progress)? "
    "[y/N] "
)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # free once closed: nothing listens there


@pytest.fixture
def young(bucket, alice) -> list[str]:
    """Two uploads alice started a moment ago: one multipart (parts in S3), one single PUT."""
    actor = Actor(user=alice, name="alice")
    started = [
        service.upload_create(
            actor=actor,
            bucket=bucket,
            key=key,
            size=size,
            content_type="",
            acl="private",
            overwrite=False,
            multipart=multipart,
        )
        for key, size, multipart in (("big.bin", 12 * 1024**2, True), ("small.txt", 3, False))
    ]
    return [item.upload.upload_id for item in started]


def unfinished(bucket: str) -> list[str]:
    uploads = boto3.client("s3", region_name="us-east-1").list_multipart_uploads(Bucket=bucket)
    return [upload["Key"] for upload in uploads.get("Uploads", [])]


def answering(monkeypatch, answer: str) -> list[str]:
    questions = []

    def ask(question: str) -> str:
        questions.append(question)
        return answer

    monkeypatch.setattr("builtins.input", ask)
    return questions


def test_young_uploads_stay_without_all_and_nothing_is_asked(young, bucket, monkeypatch):
    questions = answering(monkeypatch, "y")
    call_command("uploads_cleanup", "--hours", "1")
    assert questions == []
    assert PendingUpload.objects.count() == 2 and unfinished(bucket) == ["big.bin"]
    assert audit_rows(action="upload.abort") == []


def test_all_asks_then_aborts_young_uploads_with_their_audit_rows(
    young, bucket, monkeypatch, capsys
):
    questions = answering(monkeypatch, "y")
    call_command("uploads_cleanup", "--all")
    assert questions == [QUESTION]
    assert not PendingUpload.objects.exists() and unfinished(bucket) == []
    assert "2 unfinished portal uploads and 0 other multipart uploads aborted." in (
        capsys.readouterr().out
    )
    aborted = AuditEvent.objects.filter(action="upload.abort", phase="outcome", outcome="success")
    assert sorted(aborted.values_list("key", flat=True)) == ["big.bin", "small.txt"]
    assert set(aborted.values_list("actor_name", flat=True)) == {"uploads_cleanup"}
    assert audit_rows(action="upload.abort", key="big.bin") == [
        ("upload.abort", "intent", "pending"),
        ("upload.abort", "outcome", "success"),
    ]


@pytest.mark.parametrize("answer", ["n", "", "no thanks"])
def test_refusing_the_question_aborts_nothing(young, bucket, monkeypatch, answer):
    questions = answering(monkeypatch, answer)
    with pytest.raises(CommandError, match="Cancelled: no upload was aborted"):
        call_command("uploads_cleanup", "--all")
    assert questions == [QUESTION]
    assert PendingUpload.objects.count() == 2 and unfinished(bucket) == ["big.bin"]
    assert audit_rows(action="upload.abort") == []


def test_no_terminal_to_answer_from_aborts_nothing(young, bucket, monkeypatch):
    def no_terminal(question: str) -> str:
        raise EOFError

    monkeypatch.setattr("builtins.input", no_terminal)
    with pytest.raises(CommandError, match="Cancelled"):
        call_command("uploads_cleanup", "--all")
    assert PendingUpload.objects.count() == 2


@pytest.mark.parametrize("flag", ["--yes", "--no-input", "--noinput"])
def test_yes_aborts_young_uploads_without_asking(young, bucket, monkeypatch, flag):
    questions = answering(monkeypatch, "n")
    call_command("uploads_cleanup", "--all", flag)
    assert questions == []
    assert not PendingUpload.objects.exists() and unfinished(bucket) == []
    assert len(audit_rows(action="upload.abort", phase="outcome", outcome="success")) == 2


def test_all_with_only_old_uploads_does_not_ask(bucket, monkeypatch):
    questions = answering(monkeypatch, "n")
    # moto dates every multipart upload in 2010: an untracked one is old at once.
    boto3.client("s3", region_name="us-east-1").create_multipart_upload(Bucket=bucket, Key="s")
    call_command("uploads_cleanup", "--all")
    assert questions == [] and unfinished(bucket) == []


def test_all_and_hours_are_one_or_the_other(bucket):
    with pytest.raises(CommandError, match="not allowed with"):
        call_command("uploads_cleanup", "--all", "--hours", "2")


# --- Storage out of reach -----------------------------------------------------------------------


def test_unreachable_storage_is_said_plainly(alice, settings):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    settings.S3_EMBEDDED = True
    settings.S3_ENDPOINT_URL = endpoint
    BucketGrant.objects.create(user=alice, bucket="team-files", role=Role.MANAGE)
    with pytest.raises(CommandError) as refused:
        call_command("uploads_cleanup", "--all", "--yes")
    assert str(refused.value) == f"Cannot reach the storage at {endpoint}: is `make run` running?"


def manage(*args: str, var_dir: Path, **env: str) -> subprocess.CompletedProcess:
    """Run manage.py as from a plain shell in the project folder (only VAR_DIR set, to a temp)."""
    return manage_from_a_shell(*args, var_dir=var_dir, env=env)


SHOW_PORTS = (
    "from django.conf import settings; "
    "print(settings.PORT, settings.SITE_URL, settings.S3_PORT, settings.S3_ENDPOINT_URL)"
)


def test_commands_use_the_ports_make_run_recorded(tmp_path):
    (tmp_path / "runtime.json").write_text(json.dumps({"pid": 1, "port": 8123, "s3_port": 9444}))
    shown = manage("shell", "-v", "0", "-c", SHOW_PORTS, var_dir=tmp_path)
    assert shown.stdout.split() == [
        "8123",
        "http://127.0.0.1:8123",
        "9444",
        "http://127.0.0.1:9444",
    ], shown.stderr
    chosen = manage(
        "shell", "-v", "0", "-c", SHOW_PORTS, var_dir=tmp_path, PORT="8200", S3_PORT="9555"
    )
    assert chosen.stdout.split()[::2] == ["8200", "9555"], chosen.stderr
    (tmp_path / "runtime.json").unlink()
    default = manage("shell", "-v", "0", "-c", SHOW_PORTS, var_dir=tmp_path)
    assert default.stdout.split()[::2] == ["8000", "8333"], default.stderr


def test_cleanup_from_a_shell_says_storage_is_unreachable_without_a_traceback(tmp_path):
    s3_port = closed_port()
    (tmp_path / "runtime.json").write_text(json.dumps({"pid": 1, "port": 8000, "s3_port": s3_port}))
    assert manage("migrate", "--no-input", "-v", "0", var_dir=tmp_path).returncode == 0
    grant = (
        "from django.contrib.auth.models import User; from sharing.models import BucketGrant; "
        "BucketGrant.objects.create(user=User.objects.create(username='a'), bucket='files')"
    )
    assert manage("shell", "-c", grant, var_dir=tmp_path).returncode == 0
    result = manage("uploads_cleanup", var_dir=tmp_path)
    assert result.returncode == 1
    expected = f"Cannot reach the storage at http://127.0.0.1:{s3_port}: is `make run` running?"
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
