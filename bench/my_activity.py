"""Benchmark: My activity at 1,000,000 audit rows against the same pages at 1,000 rows.

Run from the repository root: .venv/bin/python bench/my_activity.py [--rows 1000000] [--small 1000]
    [--requests 15]

Makes two SQLite databases in a temporary folder, fills one with --small and one with --rows audit
rows (admin_audit.py's actors, buckets and actions, through the audit writer's own row maker; here
every row names its user, and half the rows are downloads so that the filtered pages are full at
both sizes), serves each with gunicorn as admin_audit.py does, logs in over HTTP as a member
(user-07: a fifth of the rows are theirs, read on bucket-07) and as a manager (user-12: manage on
bucket-07, which holds a fifth of the rows), and asks both servers, alternately, for the first page
and pages filtered by action, by dates and by a name search. Prints the median time of each page at each size and their ratio
(target <= 2).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from admin_audit import ACTIONS, PASSWORD, Server, environment, pick, write_rows

TARGET = 2.0
PEOPLE = {"member": "user-07", "manager": "user-12"}
FREQUENT_ACTION = "object.download"
PAGES = {
    "first page": "",
    "by action": f"?action={FREQUENT_ACTION}",
    # Two thirds of the year and a name search: both still fill a page at 1,000 rows.
    "by dates": "?since=2026-03-01&until=2026-10-31",
    "by name": "?key=7",
}


def fill(rows: int) -> None:
    """In a child process: migrate, make 40 users, the two grants and `rows` audit rows."""
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from sharing.models import BucketGrant, Role

    call_command("migrate", verbosity=0)
    ids = {}
    for number in range(40):
        name = f"user-{number:02d}"
        password = PASSWORD if name in PEOPLE.values() else None
        ids[name] = User.objects.create_user(username=name, password=password).pk
    BucketGrant.objects.create(user_id=ids[PEOPLE["member"]], bucket="bucket-07", role=Role.READ)
    BucketGrant.objects.create(user_id=ids[PEOPLE["manager"]], bucket="bucket-07", role=Role.MANAGE)

    def fields(generator: random.Random, number: int) -> dict:
        actor = pick(generator, "user-07", 40)
        action = FREQUENT_ACTION if generator.random() < 0.5 else generator.choice(ACTIONS)
        return {
            "action": action,
            "outcome": "success" if generator.random() < 0.9 else "failure",
            "actor_id": ids[actor],
            "actor_name": actor,
            "bucket": pick(generator, "bucket-07", 20),
        }

    write_rows(rows, fields)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=15, help="per page, person and size")
    args = parser.parse_args()
    sizes = {"small": args.small, "large": args.rows}
    servers: dict[tuple[str, str], Server] = {}
    with tempfile.TemporaryDirectory(prefix="s3portal-bench-activity-") as work:
        try:
            for size, rows in sizes.items():
                var_dir = Path(work, size)
                var_dir.mkdir()
                url = f"sqlite:///{var_dir / 'db.sqlite3'}"
                began = time.monotonic()
                command = [sys.executable, __file__, "--fill-only", str(rows)]
                subprocess.run(command, env=environment(url, str(var_dir)), check=True)  # noqa: S603
                print(f"{rows:>9,} rows written in {time.monotonic() - began:.0f} s", flush=True)
                for person, username in PEOPLE.items():
                    server = Server(f"{size} {person}", url, str(var_dir), username)
                    servers[size, person] = server
            for server in servers.values():
                server.log_in()
            measure(servers, sizes, args.requests)
        finally:
            for server in servers.values():
                server.stop()


def measure(servers: dict[tuple[str, str], Server], sizes: dict, requests: int) -> None:
    base = "/activity/"
    for server in servers.values():  # warm: imports, templates, the first connection
        for query in PAGES.values():
            server.timed_get(base + query)
    times: dict[tuple[str, str, str], list[float]] = {
        (person, page, size): [] for person in PEOPLE for page in PAGES for size in sizes
    }
    for turn in range(requests):
        for person in PEOPLE:
            for page, query in PAGES.items():
                order = list(sizes) if turn % 2 == 0 else list(reversed(sizes))
                for size in order:
                    elapsed = servers[size, person].timed_get(base + query)
                    times[person, page, size].append(elapsed)
    print(
        f"\nSQLite; {requests} requests per page, person and size, alternating; "
        f"load {os.getloadavg()[0]:.2f}"
    )
    print(f"{'page':<24}{sizes['small']:>12,} rows{sizes['large']:>14,} rows{'ratio':>9}")
    for person in PEOPLE:
        for page in PAGES:
            small = statistics.median(times[person, page, "small"])
            large = statistics.median(times[person, page, "large"])
            ratio = large / small
            verdict = "meets" if ratio <= TARGET else "misses"
            print(
                f"{person + ', ' + page:<24}{small * 1000:>14.1f} ms{large * 1000:>16.1f} ms"
                f"{ratio:>8.2f}  ({verdict} <= {TARGET:g})"
            )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--fill-only"]:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        fill(int(sys.argv[2]))
    else:
        main()
