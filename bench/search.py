"""Benchmark: bucket search at 1,000,000 indexed keys against the same query at 1,000 keys.

Run from the repository root: .venv/bin/python bench/search.py [--rows 1000000] [--small 1000]
    [--requests 15] [--databases sqlite,postgres]

For each database (SQLite always; PostgreSQL on 127.0.0.1:5432 when it answers, in databases of
its own, dropped at the end), makes two databases and fills one bucket's index in each with
--small and --rows keys by bulk inserts (keys spread over departments, projects and years, as
`dept-03/project-0042/2025/report-0001234.csv`); both hold the same 200 invoices
(`…/Invoice-2026-0123.pdf`), so that the query "invoice-2026" finds 200 keys at both sizes.
Serves each database with gunicorn (admin_audit.py's Server), logs in as a superuser over HTTP and
asks the servers, alternately, for the first page of results (50 rows) of:
  - "invoice-2026" (200 hits, the target: <= 3x the small bucket's time, and <= 50 ms on
    PostgreSQL, <= 200 ms on SQLite at --rows);
  - "-0042/" (one project in a hundred: 1 % of the keys), for information;
  - "q3" (2 characters: matched without the index over at most 20,000 names), for information.
Prints the median of each page at each size and their ratio.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from admin_audit import PASSWORD, POSTGRES_SERVER, Server, environment

BUCKET = "bench-search"
INVOICES = 200
QUERIES = {"invoice-2026 (200 hits)": "INVOICE-2026", "-0042/ (1 %)": "-0042/", "q3 (short)": "q3"}
TARGET_RATIO = 3.0
TARGET_MS = {"sqlite": 200.0, "postgres": 50.0}
EXTENSIONS = ["csv", "txt", "jpg", "xlsx", "docx", "png", "json", "mp4"]


def keys(rows: int):
    """Yield `rows` keys: the 200 invoices first, then the others (none contains 'invoice')."""
    for number in range(INVOICES):
        yield f"dept-{number % 20:02d}/finance/{2020 + number % 7}/Invoice-2026-{number:04d}.pdf"
    for number in range(rows - INVOICES):
        dept, project = number % 20, (number // 20) % 100
        year, quarter = 2019 + number % 7, "q" + str(1 + number % 4)
        ext = EXTENSIONS[number % len(EXTENSIONS)]
        yield f"dept-{dept:02d}/project-{project:04d}/{year}/{quarter}/report-{number:07d}.{ext}"


def fill(rows: int) -> None:
    """In a child process: migrate, make the superuser and `rows` index rows in bulk."""
    import django

    django.setup()
    import datetime

    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import transaction
    from django.utils import timezone

    from sharing.models import BucketIndex, IndexedObject
    from sharing.services.search_index import file_kind

    call_command("migrate", verbosity=0)
    User.objects.create_superuser(username="bench", email="", password=PASSWORD)
    now = timezone.now()
    batch: list[IndexedObject] = []
    for number, key in enumerate(keys(rows)):
        modified = now - datetime.timedelta(minutes=number % 500_000)
        batch.append(
            IndexedObject(
                bucket=BUCKET, key=key, size=1000 + number % 100_000, last_modified=modified,
                kind=file_kind(key), etag="0" * 32, seen_at=now,
            )
        )  # fmt: skip
        if len(batch) == 20_000:
            with transaction.atomic():
                IndexedObject.objects.bulk_create(batch)
            batch = []
    with transaction.atomic():
        IndexedObject.objects.bulk_create(batch)
    BucketIndex.objects.create(bucket=BUCKET, files=rows, walk_finished_at=now)
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE sharing_indexedobject")


def postgres_answers() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5432), 2).close()
    except OSError:
        return False
    return True


def admin_sql(statement: str) -> None:
    import psycopg

    with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as connection:
        connection.execute(statement)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=15, help="per query, size and database")
    default = "sqlite,postgres" if postgres_answers() else "sqlite"
    parser.add_argument("--databases", default=default, help=f"default: {default}")
    args = parser.parse_args()
    databases = [name.strip() for name in args.databases.split(",") if name.strip()]
    sizes = {"small": args.small, "large": args.rows}
    servers: dict[tuple[str, str], Server] = {}
    dropped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="s3portal-bench-search-") as work:
        try:
            for database in databases:
                for size, rows in sizes.items():
                    var_dir = Path(work, f"{database}-{size}")
                    var_dir.mkdir()
                    if database == "postgres":
                        name = f"bench_search_{size}"
                        admin_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                        admin_sql(f"CREATE DATABASE {name}")
                        dropped.append(name)
                        url = f"{POSTGRES_SERVER}/{name}"
                    else:
                        url = f"sqlite:///{var_dir / 'db.sqlite3'}"
                    began = time.monotonic()
                    command = [sys.executable, __file__, "--fill-only", str(rows)]
                    subprocess.run(command, env=environment(url, str(var_dir)), check=True)  # noqa: S603
                    print(
                        f"{database}: {rows:>9,} keys indexed in {time.monotonic() - began:.0f} s",
                        flush=True,
                    )
                    servers[database, size] = Server(f"{database} {size}", url, str(var_dir))
            for server in servers.values():
                server.log_in()
            measure(servers, databases, sizes, args.requests)
        finally:
            for server in servers.values():
                server.stop()
            for name in dropped:
                admin_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def measure(servers, databases: list[str], sizes: dict[str, int], requests: int) -> None:
    paths = {label: f"/b/{BUCKET}/search/?q={quote(q)}" for label, q in QUERIES.items()}
    for server in servers.values():  # warm: imports, templates, the first connection
        for path in paths.values():
            server.timed_get(path)
    times = {
        (database, label, size): []
        for database in databases
        for label in QUERIES
        for size in sizes
    }  # fmt: skip
    for turn in range(requests):
        for database in databases:
            for label, path in paths.items():
                order = list(sizes) if turn % 2 == 0 else list(reversed(sizes))
                for size in order:
                    times[database, label, size].append(servers[database, size].timed_get(path))
    print(f"\n{requests} requests per query, size and database, alternating; "
          f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")  # fmt: skip
    print(
        f"{'database, query':<34}{sizes['small']:>10,} keys{sizes['large']:>12,} keys{'ratio':>8}"
    )
    for database in databases:
        for label in QUERIES:
            small = statistics.median(times[database, label, "small"]) * 1000
            large = statistics.median(times[database, label, "large"]) * 1000
            ratio = large / small
            verdict = ""
            if label == next(iter(QUERIES)):
                met = ratio <= TARGET_RATIO and large <= TARGET_MS[database]
                verdict = (
                    f"  {'PASS' if met else 'FAIL'} (<= {TARGET_RATIO:g}x and "
                    f"<= {TARGET_MS[database]:g} ms)"
                )
            print(
                f"{database + ', ' + label:<34}{small:>12.1f} ms{large:>14.1f} ms{ratio:>8.2f}"
                + verdict
            )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--fill-only"]:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        fill(int(sys.argv[2]))
    else:
        main()
