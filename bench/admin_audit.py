"""Benchmark: the admin's audit changelist at 1,000,000 rows against the same page at 1,000 rows.

Run from the repository root: .venv/bin/python bench/admin_audit.py [--rows 1000000] [--small 1000]
    [--requests 15]

Makes two new PostgreSQL databases on 127.0.0.1:5432 (dropped at the end), fills one with --small
and one with --rows audit rows (through the audit writer's own row maker: fields, MAC; inserted
in batches, spread over a year, 40 actors, 20 buckets, 12 actions; the actor and the bucket that
the filtered pages ask for hold a fifth of the rows, so that every page shows 100 rows at both
sizes), serves each with gunicorn as production does, logs in as a superuser over HTTP and then asks both servers, one request after
the other, for three pages of the changelist: the default page, filtered by bucket and filtered
by actor. Prints the median time of each page at each size and their ratio (target <= 2).
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_SERVER = "postgres://postgres@127.0.0.1:5432"
TARGET = 2.0
PASSWORD = "bench-admin-password-0123"
PAGES = {
    "default page": "",
    "by bucket": "?bucket=bucket-07",
    "by actor": "?actor=user-07",
}
ACTIONS = [
    "object.head", "object.list", "object.copy", "object.delete", "upload.complete",
    "link.open", "link.download", "link.create", "bucket.list", "auth.login", "auth.logout",
    "object.presign",
]  # fmt: skip


def environment(database_url: str, var_dir: str) -> dict[str, str]:
    Path(var_dir, "static").mkdir(exist_ok=True)  # WhiteNoise warns about a missing STATIC_ROOT
    return dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="s3portal.settings",
        DATABASE_URL=database_url,
        VAR_DIR=var_dir,
        S3_EMBEDDED="false",
        S3_ENDPOINT_URL="http://127.0.0.1:9",
        S3_ACCESS_KEY_ID="bench",
        S3_SECRET_ACCESS_KEY="bench",
        ALLOWED_HOSTS="127.0.0.1",
        STATICFILES_BACKEND="django.contrib.staticfiles.storage.StaticFilesStorage",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )


def pick(generator: random.Random, frequent: str, spread: int) -> str:
    if generator.random() < 0.2:
        return frequent
    return f"{frequent.rsplit('-', 1)[0]}-{generator.randrange(spread):02d}"


def write_rows(rows: int, fields: Callable[[random.Random, int], dict]) -> None:
    """Write `rows` audit rows through the audit writer's own row maker, spread over 2026 in the
    order they were written; `fields(generator, number)` gives each row's action, actor, bucket."""
    from sharing.audit.trail import new_row
    from sharing.models import AuditEvent

    generator = random.Random(7)
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    batch = []
    for number in range(rows):
        row = new_row(
            {
                "phase": "event",
                "key": f"reports/{number % 977}/file-{number}.pdf",
                "client_ip": "198.51.100.7",
                **fields(generator, number),
            }
        )
        row.created_at = start + datetime.timedelta(seconds=number * 31_536_000 / rows)
        batch.append(row)
        if len(batch) == 5000:
            AuditEvent.objects.bulk_create(batch)
            batch = []
    AuditEvent.objects.bulk_create(batch)


def fill(rows: int) -> None:
    """In a child process: migrate, make the superuser and `rows` audit rows."""
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    User.objects.create_superuser(username="bench", email="", password=PASSWORD)

    def fields(generator: random.Random, number: int) -> dict:
        return {
            "action": generator.choice(ACTIONS),
            "outcome": "success" if generator.random() < 0.9 else "failure",
            # The filtered pages' actor and bucket hold a fifth of the rows at either size, so
            # that both sizes show full pages of 100 and only the table's size differs.
            "actor_name": pick(generator, "user-07", 40),
            "bucket": pick(generator, "bucket-07", 20),
        }

    write_rows(rows, fields)
    call_command("dbshell", "--", "-c", "VACUUM ANALYZE")  # as autovacuum would have by now


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn serving one database, and a logged-in session on it (the superuser's by default)."""

    def __init__(self, name: str, database_url: str, var_dir: str, username: str = "bench") -> None:
        self.name, self.port, self.username = name, free_port(), username
        self.env = environment(database_url, var_dir)
        self.cookies: dict[str, str] = {}
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "s3portal.wsgi", "--chdir", str(ROOT),
                "--bind", f"127.0.0.1:{self.port}", "--workers", "1", "--threads", "2",
                "--worker-class", "gthread", "--no-control-socket", "--log-level", "warning",
            ],
            env=self.env,
        )  # fmt: skip

    def request(self, method: str, path: str, body: str = "") -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if body:
            headers.update(
                {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Origin": f"http://127.0.0.1:{self.port}",
                }
            )
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        response.text = response.read().decode(errors="replace")
        for header in response.headers.get_all("Set-Cookie") or []:
            name, value = header.split(";", 1)[0].split("=", 1)
            self.cookies[name] = value
        connection.close()
        return response

    def log_in(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                page = self.request("GET", "/login/")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{self.name}: gunicorn did not answer") from None
                time.sleep(0.3)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
        form = {"csrfmiddlewaretoken": token, "username": self.username, "password": PASSWORD}
        answer = self.request("POST", "/login/", urlencode(form))
        if answer.status != 302:
            raise SystemExit(f"{self.name}: login answered {answer.status}")

    def timed_get(self, path: str) -> float:
        began = time.perf_counter()
        response = self.request("GET", path)
        elapsed = time.perf_counter() - began
        if response.status != 200:
            raise SystemExit(f"{self.name}: GET {path} answered {response.status}")
        return elapsed

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=15, help="per page and size (default 15)")
    args = parser.parse_args()
    import psycopg

    def admin(statement: str) -> None:
        with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as connection:
            connection.execute(statement)

    sizes = {"small": args.small, "large": args.rows}
    names = {size: f"bench_admin_audit_{size}" for size in sizes}
    servers: dict[str, Server] = {}
    with tempfile.TemporaryDirectory(prefix="s3portal-bench-admin-") as var_dir:
        try:
            for size, rows in sizes.items():
                admin(f"DROP DATABASE IF EXISTS {names[size]} WITH (FORCE)")
                admin(f"CREATE DATABASE {names[size]}")
                url = f"{POSTGRES_SERVER}/{names[size]}"
                began = time.monotonic()
                command = [sys.executable, __file__, "--fill-only", str(rows)]
                subprocess.run(command, env=environment(url, var_dir), check=True)  # noqa: S603
                print(f"{rows:>9,} rows written in {time.monotonic() - began:.0f} s", flush=True)
                servers[size] = Server(size, url, var_dir)
            for server in servers.values():
                server.log_in()
            measure(servers, sizes, args.requests)
        finally:
            for server in servers.values():
                server.stop()
            for name in names.values():
                admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def measure(servers: dict[str, Server], sizes: dict[str, int], requests: int) -> None:
    base = "/admin/sharing/auditevent/"
    for server in servers.values():  # warm: imports, templates, the first connection
        for query in PAGES.values():
            server.timed_get(base + query)
    times = {(page, size): [] for page in PAGES for size in sizes}
    for turn in range(requests):
        for page, query in PAGES.items():
            order = list(sizes) if turn % 2 == 0 else list(reversed(sizes))
            for size in order:
                times[page, size].append(servers[size].timed_get(base + query))
    print(
        f"\nPostgreSQL; {requests} requests per page and size, alternating; load {os.getloadavg()[0]:.2f}"
    )
    print(f"{'page':<14}{sizes['small']:>12,} rows{sizes['large']:>14,} rows{'ratio':>9}")
    for page in PAGES:
        small = statistics.median(times[page, "small"])
        large = statistics.median(times[page, "large"])
        ratio = large / small
        verdict = "meets" if ratio <= TARGET else "misses"
        print(
            f"{page:<14}{small * 1000:>14.1f} ms{large * 1000:>16.1f} ms{ratio:>8.2f}  "
            f"({verdict} <= {TARGET:g})"
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--fill-only"]:
        sys.path.insert(0, str(ROOT))
        fill(int(sys.argv[2]))
    else:
        main()
