"""Personas and storage fixtures: alice owns, bob reads, charlie has nothing."""

import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from moto import mock_aws

from sharing import services
from sharing.audit import Actor
from sharing.embedded import EmbeddedS3, free_s3_port
from sharing.models import AuditEvent, BucketGrant, BucketSettings, Role

# Playwright's sync API keeps an event loop in the main thread; Django must not refuse DB access.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.S3_EMBEDDED = False
    settings.S3_ENDPOINT_URL = ""
    settings.S3_PUBLIC_ENDPOINT_URL = ""
    settings.S3_ACCESS_KEY_ID = "testing"
    settings.S3_SECRET_ACCESS_KEY = "testing"
    settings.S3_SESSION_TOKEN = ""
    settings.S3_REGION = "us-east-1"
    settings.S3_ADDRESSING_STYLE = "path"
    settings.S3_MAX_ATTEMPTS = 2
    settings.S3_MAX_KEY_SEGMENT_BYTES = 0
    settings.S3_CONNECT_TIMEOUT = 2
    settings.S3_READ_TIMEOUT = 5
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": str(tmp_path),
        },
        "local": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"local-{tmp_path}",
        },
    }


@pytest.fixture
def moto_s3():
    """Run the test against moto's in-memory S3."""
    with mock_aws():
        yield


def make_user(username: str, **extra) -> User:
    return User.objects.create_user(
        username=username, email=f"{username}@example.com", password=PASSWORD, **extra
    )


@pytest.fixture
def alice(db) -> User:
    user = make_user("alice")
    user.user_permissions.add(Permission.objects.get(codename="create_bucket"))
    return user


@pytest.fixture
def bob(db) -> User:
    return make_user("bob")


@pytest.fixture
def charlie(db) -> User:
    return make_user("charlie")


@pytest.fixture
def admin_user(db) -> User:
    return User.objects.create_superuser(
        username="root", email="root@example.com", password=PASSWORD
    )


@pytest.fixture
def bucket(moto_s3, alice, bob) -> str:
    """A bucket alice created (manage), with public files allowed, and bob was granted read on."""
    services.bucket_create(actor=Actor(user=alice, name="alice"), name="team-files")
    BucketGrant.objects.create(user=bob, bucket="team-files", role=Role.READ)
    BucketSettings.objects.create(bucket="team-files", public_files=True)
    return "team-files"


def client_for(client, user):
    client.force_login(user)
    return client


def audit_rows(**filters) -> list[tuple[str, str, str]]:
    """Return (action, phase, outcome) of matching audit rows, oldest first."""
    rows = AuditEvent.objects.filter(**filters).order_by("id")
    return [(row.action, row.phase, row.outcome) for row in rows]


@pytest.fixture(scope="session")
def embedded_s3(tmp_path_factory):
    """One real SeaweedFS server for the whole run, on free ports in a temporary folder."""
    server = EmbeddedS3(tmp_path_factory.mktemp("embedded-s3"), s3_port=free_s3_port())
    server.start()
    yield server
    server.stop()


def server_client(server: EmbeddedS3):
    """Return a boto3 client of the test's own, with the server's keys (independent of settings)."""
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=server.credentials.access_key,
        aws_secret_access_key=server.credentials.secret_key,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def _remove_all_buckets(server: EmbeddedS3) -> None:
    client = server_client(server)
    for bucket in client.list_buckets().get("Buckets", []):
        name = bucket["Name"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=name, Key=item["Key"])
        for upload in client.list_multipart_uploads(Bucket=name).get("Uploads", []):
            client.abort_multipart_upload(
                Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        client.delete_bucket(Bucket=name)


@pytest.fixture
def real_s3(embedded_s3, settings):
    """Point the portal at the embedded server; every bucket is removed afterwards."""
    settings.S3_ENDPOINT_URL = embedded_s3.endpoint_url
    settings.S3_ACCESS_KEY_ID = embedded_s3.credentials.access_key
    settings.S3_SECRET_ACCESS_KEY = embedded_s3.credentials.secret_key
    settings.S3_ADDRESSING_STYLE = "path"
    settings.S3_MAX_KEY_SEGMENT_BYTES = 255
    # Storages built before (the thumbnails' S3Storage) are built anew, on this endpoint.
    settings.STORAGES = {**settings.STORAGES}
    yield embedded_s3
    _remove_all_buckets(embedded_s3)


def manage_from_a_shell(
    *args: str, var_dir: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run manage.py as from a plain shell in the project folder: only VAR_DIR and `env` set."""
    dropped = ("S3_", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE", "VAR_DIR", "PORT", "SITE_URL")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    clean.update(env or {}, VAR_DIR=str(var_dir))
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=Path(__file__).resolve().parent.parent,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def run_tasks(transactional_db):
    """Return a function that runs every queued task with the real worker (django-tasks-db's
    `db_worker --batch`), as `make run` does. The worker opens its own connections, so the test
    runs outside a wrapping transaction."""

    def run() -> None:
        call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)

    return run
