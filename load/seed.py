"""What the load starts from: accounts, buckets they may write, folders of files (via the services).

Files are stored the way the portal stores an upload of one request (start, PUT to the presigned
URL, complete), so the seed is audited like anything else. The plan returned is what
load/locustfile.py reads: who logs in, where to browse and upload, which files exist.
"""

from __future__ import annotations

import functools
import random
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import urllib3

BUCKETS = ("load-team", "load-archive")
FOLDERS = ("docs/", "photos/2026/", "reports/q1/")
FILES_PER_FOLDER = 12
FILES_AT_TOP = 5
SIZES = (100, 2_000, 30_000, 250_000, 900_000)
CONTENT_TYPE = "application/octet-stream"
SEED_THREADS = 8
HTTP = urllib3.PoolManager(maxsize=SEED_THREADS, timeout=30, retries=False)


def _store(*, actor: Any, bucket: str, key: str, size: int) -> None:
    """Store one file as the upload panel does for a small file: start, PUT, complete."""
    from sharing.services import uploads

    started = uploads.upload_create(
        actor=actor, bucket=bucket, key=key, size=size, content_type=CONTENT_TYPE,
        acl="private", overwrite=False, multipart=False,
    )  # fmt: skip
    response = HTTP.request(
        "PUT", started.url, body=random.randbytes(size), headers={"Content-Type": CONTENT_TYPE}
    )
    if response.status != 200:
        raise RuntimeError(f"PUT of {bucket}/{key}: {response.status} {response.data[:300]!r}")
    uploads.upload_complete(actor=actor, upload_id=started.upload.upload_id)


def _store_all(actor: Any, files: list[tuple[str, str, int]]) -> None:
    from django.db import connection

    try:
        for bucket, key, size in files:
            _store(actor=actor, bucket=bucket, key=key, size=size)
    finally:
        connection.close()  # this thread's own connection, before the database is dropped


def seed(*, users: int, s3_endpoint: str, site_url: str) -> dict[str, Any]:
    """Create the accounts, buckets, grants and files; return the plan for locust."""
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User

    from sharing import services
    from sharing.audit import Actor
    from sharing.models import Role
    from sharing.services import grants

    admin = User.objects.create_superuser(username="load-admin", email="", password=None)
    actor = Actor(user=admin, name=admin.username)
    password = secrets.token_urlsafe(16)
    hashed = make_password(password)  # one hash for all: each costs half a second of CPU
    people = User.objects.bulk_create(
        [User(username=f"load{number:02d}", password=hashed) for number in range(users)]
    )
    files, folders = [], []
    for bucket in BUCKETS:
        services.bucket_create(actor=actor, name=bucket)
        for person in people:
            grants.grant_set(actor=actor, bucket=bucket, role=Role.WRITE, user=person)
        folders += [(bucket, ""), (bucket, "photos/"), *((bucket, f) for f in FOLDERS)]
        keys = [f"readme-{n}.txt" for n in range(FILES_AT_TOP)] + [
            f"{folder}file-{n:03d}.dat" for folder in FOLDERS for n in range(FILES_PER_FOLDER)
        ]
        files += [(bucket, key, random.choice(SIZES)) for key in keys]
    # Side by side: one by one, a busy machine takes half a minute for these.
    with ThreadPoolExecutor(SEED_THREADS) as pool:
        list(
            pool.map(
                functools.partial(_store_all, actor),
                [files[n::SEED_THREADS] for n in range(SEED_THREADS)],
            )
        )
    return {
        "accounts": [{"username": person.username} for person in people],
        "password": password,
        "s3": s3_endpoint,
        "site_url": site_url,
        "folders": folders,
        "upload_folders": [(bucket, folder) for bucket in BUCKETS for folder in FOLDERS],
        "files": files,
    }
