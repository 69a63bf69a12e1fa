"""No secrets in logs: share tokens, upload tokens and passwords stay out of every log line and
error report, while the path prefix is kept so a line still says what was asked."""

import http.client
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core import mail
from django.test import Client
from django.urls import get_resolver

from sharing.logs import redact
from sharing.management.commands.runportal import gunicorn_command
from sharing.services import link_recipients

ROOT = Path(__file__).resolve().parent.parent
TOKEN = secrets.token_urlsafe(32)
QUERY_TOKEN = secrets.token_urlsafe(32)
PASSWORD = "Hunter2-" + secrets.token_hex(8)
UPLOAD_TOKEN = "eyJiIjoidGVhbSJ9:1uXyZa:" + secrets.token_urlsafe(32)
SECRETS = (TOKEN, QUERY_TOKEN, PASSWORD, UPLOAD_TOKEN)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_no_secrets(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text
    assert PASSWORD[8:] not in text  # not even part of it


# --- gunicorn, as `make run` starts it -------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """gunicorn with runportal's options on a free port, SQLite in a temporary VAR_DIR, S3 on a
    closed port."""
    var_dir = tmp_path_factory.mktemp("var")
    dropped = ("S3_", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE", "VAR_DIR", "PORT", "DEBUG")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env.update(
        VAR_DIR=str(var_dir),
        S3_EMBEDDED="false",
        S3_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        S3_ACCESS_KEY_ID="testing",
        S3_SECRET_ACCESS_KEY="testing",
        STATICFILES_BACKEND="django.contrib.staticfiles.storage.StaticFilesStorage",
    )
    manage = [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"]
    subprocess.run(manage, cwd=ROOT, env=env, check=True, timeout=120)
    port = free_port()
    out, err = (var_dir / "stdout.log").open("wb"), (var_dir / "stderr.log").open("wb")
    web = subprocess.Popen(
        gunicorn_command(port=port, workers=1), cwd=ROOT, env=env, stdout=out, stderr=err
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if web.poll() is not None or time.monotonic() > deadline:
                web.kill()
                pytest.fail((var_dir / "stderr.log").read_text())
            time.sleep(0.1)
    yield port, var_dir
    web.terminate()
    web.wait(30)
    out.close()
    err.close()


def request(port: int, method: str, path: str, body: str = "", **headers: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    if body:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    connection.request(method, path, body=body or None, headers=headers)
    status = connection.getresponse().status
    connection.close()
    return status


@pytest.fixture(scope="module")
def gunicorn_logs(served) -> tuple[str, str]:
    """gunicorn's stdout and stderr after requests that carry every kind of secret."""
    port, var_dir = served
    site = f"http://127.0.0.1:{port}"
    assert request(port, "GET", f"/s/{TOKEN}/") == 404
    link = request(port, "GET", f"/s/{TOKEN}?password={PASSWORD}&token={QUERY_TOKEN}")
    assert link in (404, 410)  # no such link
    assert request(port, "POST", f"/s/{TOKEN}", body=f"password={PASSWORD}") == 403  # no CSRF
    assert request(port, "GET", "/static/missing.css", Referer=f"{site}/s/{TOKEN}") == 404
    proxied = request(port, "PUT", f"/uploads/proxy/{UPLOAD_TOKEN}/", body="x")
    assert proxied in (302, 401, 403)  # not logged in
    time.sleep(0.5)  # the access log line is written after the response
    return (var_dir / "stdout.log").read_text(), (var_dir / "stderr.log").read_text()


def test_gunicorn_access_log_has_the_path_prefix_but_no_token(gunicorn_logs):
    access, _ = gunicorn_logs
    assert f'"GET /s/{TOKEN[:4]}' in access
    assert f'"PUT /uploads/proxy/{UPLOAD_TOKEN[:4]}' in access
    assert "/static/missing.css" in access
    assert_no_secrets(access)


def test_django_lines_in_gunicorn_error_log_have_no_token(gunicorn_logs):
    _, errors = gunicorn_logs
    assert f"Not Found: /s/{TOKEN[:4]}" in errors
    assert f"Forbidden (CSRF cookie not set.): /s/{TOKEN[:4]}" in errors
    assert_no_secrets(errors)


# --- Django's loggers and error reports -------------------------------------------------------


def test_not_found_log_has_no_token(client, db, caplog):
    client.get(f"/s/{TOKEN}/", {"password": PASSWORD, "token": QUERY_TOKEN})
    client.get(f"/s/{TOKEN}")
    assert f"/s/{TOKEN[:4]}" in caplog.text
    assert_no_secrets(caplog.text)


def test_csrf_refusal_log_has_no_token(db, caplog):
    response = Client(enforce_csrf_checks=True).post(f"/s/{TOKEN}", {"password": PASSWORD})
    assert response.status_code == 403
    assert "django.security.csrf" in [record.name for record in caplog.records]
    assert f"/s/{TOKEN[:4]}" in caplog.text
    assert_no_secrets(caplog.text)


@pytest.fixture
def failing_link(monkeypatch):
    def crash(**kwargs):
        raise RuntimeError("the link service broke")

    monkeypatch.setattr(link_recipients, "link_open", crash)
    monkeypatch.setattr(link_recipients, "link_download", crash)


@pytest.mark.parametrize("method", ["get", "post"])
def test_error_email_has_no_token_nor_password(db, settings, failing_link, caplog, method):
    settings.ADMINS = [("Ops", "ops@example.com")]
    client = Client(raise_request_exception=False)
    query = f"?password={PASSWORD}&token={QUERY_TOKEN}"
    response = getattr(client, method)(
        f"/s/{TOKEN}{query}", {"password": PASSWORD}, HTTP_REFERER=f"https://x.example/s/{TOKEN}"
    )
    assert response.status_code == 500
    [email] = mail.outbox
    assert "the link service broke" in email.body  # the report is there, with its traceback
    assert f"/s/{TOKEN[:4]}" in email.subject
    assert "link_public" in email.body
    assert_no_secrets(email.subject + email.body)
    assert f"Internal Server Error: /s/{TOKEN[:4]}" in caplog.text
    assert_no_secrets(caplog.text)


def test_debug_page_has_no_token_nor_password(db, settings, failing_link):
    settings.DEBUG = True
    client = Client(raise_request_exception=False)
    response = client.post(f"/s/{TOKEN}?token={QUERY_TOKEN}", {"password": PASSWORD})
    assert response.status_code == 500
    page = response.content.decode()
    assert "the link service broke" in page and f"/s/{TOKEN[:4]}" in page
    assert_no_secrets(page)


# --- Every route that carries a token is covered ----------------------------------------------


def routes(patterns=None, prefix: str = ""):
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(entry.pattern)
        if hasattr(entry, "url_patterns"):
            yield from routes(entry.url_patterns, route)
        else:
            yield route


def test_every_route_with_a_token_is_redacted():
    with_token = [route for route in routes() if re.search(r"<(?:\w+:)?\w*token>", route)]
    assert "s/<str:token>" in with_token
    for route in with_token:
        path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: TOKEN if "token" in m[1] else "x", route)
        assert TOKEN not in redact(f"GET {path} HTTP/1.1"), route
        assert TOKEN not in redact(f"Referer: http://127.0.0.1:8000{path}"), route
