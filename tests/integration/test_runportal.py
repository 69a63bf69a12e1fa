"""The portal as `make run` serves it (runportal: gunicorn, its workers and threads), black-box:
a stalled storage, login throttling across workers, database connections closed by the server."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import requests

from sharing.embedded import EmbeddedS3, free_s3_port
from tests.conftest import server_client

BASE_DIR = Path(__file__).resolve().parents[2]
PAGES_IN_FLIGHT = 20
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Portal:
    base: str
    server: EmbeddedS3
    admin_password: str

    def session(self, username: str = "admin", password: str = "") -> requests.Session:
        session = requests.Session()
        response = self.login(session, username, password or self.admin_password)
        assert response.status_code == 200 and "/buckets/" in response.url
        return session

    def login(self, session: requests.Session, username: str, password: str) -> requests.Response:
        session.get(f"{self.base}/login/", timeout=5)
        return session.post(
            f"{self.base}/login/",
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            headers={"Referer": f"{self.base}/login/"},
            timeout=10,
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout} s")


@contextlib.contextmanager
def running_portal(tmp_path: Path, **env_extra: str) -> Iterator[Portal]:
    """Serve the portal by `manage.py runportal` on its own SeaweedFS, in a fresh VAR_DIR."""
    server = EmbeddedS3(tmp_path / "s3", s3_port=free_s3_port())
    server.start()
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("S3_", "AWS_"))}
    env.pop("DATABASE_URL", None)
    env.update(
        VAR_DIR=str(tmp_path / "var"),
        PORT=str(port),
        S3_EMBEDDED="false",
        S3_ENDPOINT_URL=server.endpoint_url,
        S3_ACCESS_KEY_ID=server.credentials.access_key,
        S3_SECRET_ACCESS_KEY=server.credentials.secret_key,
        STATICFILES_BACKEND="django.contrib.staticfiles.storage.StaticFilesStorage",
        **env_extra,
    )
    log = (tmp_path / "portal.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and fixed arguments)
        [sys.executable, str(BASE_DIR / "manage.py"), "runportal"],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{base}/login/", timeout=90)
        password = (tmp_path / "var" / "first-admin-password.txt").read_text().strip()
        yield Portal(base=base, server=server, admin_password=password)
    finally:
        if server.pid:
            os.kill(server.pid, signal.SIGCONT)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        server.stop()


def _timed_get(url: str, cookies: dict[str, str]) -> tuple[int, float]:
    started = time.monotonic()
    response = requests.get(url, cookies=cookies, timeout=60)
    return response.status_code, time.monotonic() - started


def test_a_paused_storage_gives_quick_503s_and_database_pages_keep_answering(tmp_path):
    with running_portal(tmp_path) as portal:
        cookies = portal.session().cookies.get_dict()
        server_client(portal.server).create_bucket(Bucket="stall-test")
        bucket_page = f"{portal.base}/b/stall-test/"
        assert _timed_get(bucket_page, cookies)[0] == 200
        os.kill(portal.server.pid, signal.SIGSTOP)
        with ThreadPoolExecutor(PAGES_IN_FLIGHT) as pool:
            pages = [pool.submit(_timed_get, bucket_page, cookies) for _ in range(PAGES_IN_FLIGHT)]
            time.sleep(0.5)
            status, my_links_time = _timed_get(f"{portal.base}/links/", cookies)
            results = [page.result() for page in pages]
        assert status == 200
        assert my_links_time < 1, f"My links took {my_links_time:.1f} s with storage stalled"
        assert [code for code, _ in results] == [503] * PAGES_IN_FLIGHT
        slowest = max(elapsed for _, elapsed in results)
        assert slowest < 6, f"the slowest bucket page took {slowest:.1f} s to give up"
        print(f"stalled storage: slowest 503 {slowest:.2f} s, My links {my_links_time:.2f} s")

        os.kill(portal.server.pid, signal.SIGCONT)
        resumed = time.monotonic()
        while _timed_get(bucket_page, cookies)[0] != 200:
            assert time.monotonic() - resumed < 15, "the portal did not recover within 15 s"
            time.sleep(0.5)
        print(f"back {time.monotonic() - resumed:.1f} s after the storage resumed")


def test_login_failures_are_counted_by_all_workers_together(tmp_path):
    with running_portal(tmp_path, LOGIN_FAILURE_LIMIT="5") as portal:
        answers = []
        for _ in range(12):  # each on a new connection: gunicorn's two workers take turns
            session = requests.Session()
            answers.append(portal.login(session, "admin", "wrong password").status_code)
        assert answers[:4] == [400] * 4
        assert answers[4:] == [429] * 8, answers
        assert portal.login(requests.Session(), "admin", portal.admin_password).status_code == 429


@pytest.fixture
def postgres_database():
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=2)
    except psycopg.OperationalError:
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    name = f"s3portal_stale_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin, name
    finally:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name]
        )
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


def test_connections_the_database_closed_are_replaced_not_a_500(tmp_path, postgres_database):
    admin, name = postgres_database
    url = f"postgres://postgres@127.0.0.1:5432/{name}"
    with running_portal(tmp_path, DATABASE_URL=url) as portal:
        cookies = portal.session().cookies.get_dict()
        links = f"{portal.base}/links/"
        with ThreadPoolExecutor(8) as pool:  # warm several threads' kept connections
            assert {
                code for code, _ in pool.map(lambda _: _timed_get(links, cookies), range(40))
            } == {200}
        closed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        ).fetchone()[0]
        assert closed >= 2
        with ThreadPoolExecutor(8) as pool:
            codes = [code for code, _ in pool.map(lambda _: _timed_get(links, cookies), range(40))]
        assert codes == [200] * 40
