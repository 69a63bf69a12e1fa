"""`make run` (runportal) from a person's side: commands from a plain shell in the project folder
reach the servers it started on other ports, and Ctrl-C stops it within seconds, mid-request too."""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sharing.embedded import free_s3_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent.parent
STOPPED_WITHIN = 15  # gunicorn's graceful timeout, the sealer and the embedded server's stop
IDLE_STOPPED_WITHIN = 6  # nothing to wait for but the embedded server's stop


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def plain_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a plain shell: none of the portal's variables but VAR_DIR (a temp)."""
    dropped = ("S3_", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE", "VAR_DIR", "PORT", "SITE_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    # Compressing every static file takes minutes on a fresh var/; serving them is not tested here.
    env.update(STATICFILES_BACKEND="django.contrib.staticfiles.storage.StaticFilesStorage")
    return {**env, **extra, "VAR_DIR": str(var_dir)}


def manage(*args: str, var_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=plain_env(var_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )


def wait_for_port(port: int, process: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"runportal did not serve on {port} (exit code {process.poll()})")


def request_in_flight(port: int) -> socket.socket:
    """Start a request whose body arrives a byte every half second (a slow upload)."""
    slow = socket.create_connection(("127.0.0.1", port))
    slow.sendall(
        b"POST /login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n\r\nusername="
    )

    def trickle() -> None:
        try:
            for _ in range(120):
                slow.sendall(b"a")
                time.sleep(0.5)
        except OSError:
            pass  # the server went away: what this test waits for

    threading.Thread(target=trickle, daemon=True).start()
    time.sleep(1)
    return slow


SHELL = """
from django.conf import settings
from django.contrib.auth.models import User
from sharing import s3
from sharing.models import BucketGrant
s3.create_bucket("from-a-shell")
BucketGrant.objects.create(user=User.objects.create(username="shell"), bucket="from-a-shell")
print(settings.S3_ENDPOINT_URL, settings.SITE_URL)
"""


def start_portal(var_dir: Path, port: int, s3_port: int, log) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "runportal"],
        cwd=ROOT,
        env=plain_env(var_dir, PORT=str(port), S3_PORT=str(s3_port)),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )


def ctrl_c(portal: subprocess.Popen) -> float:
    """Send Ctrl-C to the portal's process group; return the seconds it took to stop."""
    started = time.monotonic()
    os.killpg(portal.pid, signal.SIGINT)
    portal.wait(60)
    return time.monotonic() - started


def test_commands_reach_make_run_and_ctrl_c_stops_it_promptly(tmp_path):
    port, s3_port = free_port(), free_s3_port()
    log = (tmp_path / "runportal.log").open("w")
    portal = start_portal(tmp_path, port, s3_port, log)
    try:
        wait_for_port(port, portal, 240)
        recorded = json.loads((tmp_path / "runtime.json").read_text())
        assert (recorded["port"], recorded["s3_port"]) == (port, s3_port)

        shell = manage("shell", "-v", "0", "-c", SHELL, var_dir=tmp_path)
        assert shell.stdout.split() == [
            f"http://127.0.0.1:{s3_port}",
            f"http://127.0.0.1:{port}",
        ], shell.stderr
        cleanup = manage("uploads_cleanup", var_dir=tmp_path)
        assert cleanup.returncode == 0, cleanup.stderr
        assert "0 unfinished portal uploads and 0 other multipart uploads aborted." in (
            cleanup.stdout
        )

        slow = request_in_flight(port)
        took = ctrl_c(portal)
        slow.close()
    finally:
        if portal.poll() is None:
            portal.terminate()  # runportal stops what it started, the embedded server included
            portal.wait(60)
        log.close()
    output = (tmp_path / "runportal.log").read_text()
    assert took < STOPPED_WITHIN, output
    assert "Stopped in " in output
    assert not (tmp_path / "runtime.json").exists()


def test_ctrl_c_on_an_idle_portal_stops_it_at_once_every_time(tmp_path):
    # Once it took 30 s and gunicorn killed its workers ("was sent SIGKILL! Perhaps out of
    # memory?"): an idle browser connection may not hold a worker past Ctrl-C, on the first
    # start or a later one.
    port, s3_port = free_port(), free_s3_port()
    for attempt in range(2):
        with (tmp_path / f"runportal-{attempt}.log").open("w") as log:
            portal = start_portal(tmp_path, port, s3_port, log)
            try:
                wait_for_port(port, portal, 240)
                # A browser left open: its keep-alive connection stays idle after a page.
                browser = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                browser.request("GET", "/login/")
                assert browser.getresponse().read()
                time.sleep(1)
                took = ctrl_c(portal)
                browser.close()
            finally:
                if portal.poll() is None:
                    portal.terminate()
                    portal.wait(60)
        output = (tmp_path / f"runportal-{attempt}.log").read_text()
        assert took < IDLE_STOPPED_WITHIN, output
        assert "SIGKILL" not in output and "Stopped in " in output
