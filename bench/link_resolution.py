"""Benchmark: share-link downloads (/s/<token>) against a bare redirect view, under gunicorn.

Run from the repository root: .venv/bin/python bench/link_resolution.py [--rounds N] [--seconds S]
    [--clients C] [--workers W] [--threads T] [--links L] [--database sqlite|postgres]

Starts its own SeaweedFS under /tmp, a fresh database (SQLite beside the server, as `make run` has
it, or with --database postgres a new database on 127.0.0.1:5432, dropped at the end) and gunicorn
as `make run` does (gthread, W workers x T threads) with bench/settings_bare.py, whose URLconf adds
/bench/bare/: a view that returns a redirect and does nothing else. Both are POSTs carrying the CSRF
cookie and token, through the whole middleware stack, on the same server and database.

L links (default 200) to L files are made, each for its own recipient, as emails make them. Every
recipient page is opened first, as a browser does, so S3 was asked moments before whether the file
exists. A download then reads the link with its status (ShareLink.objects.with_status), counts it
by one conditional ORM update of a usable link and writes its audit row (one insert with its MAC)
in the same transaction, and answers 302 to a 60 s presigned URL from botocore. The audit sealer
runs beside gunicorn every 2 s, as `make run` has it. Each client thread walks through the links
in its own order. Each round runs both for the same time with the same C client threads
(http.client, keep-alive), the order alternating; figures are medians over the rounds. Run it with
--clients 1 for the cost of one request without contention, and with the default 8 for throughput.
Target (issue 9): download throughput / bare throughput >= 0.5 on PostgreSQL.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlencode

import _support as bench

TARGET = 0.5
KEY = "reports/2026/summary.pdf"
BUCKET = "bench-links"
BARE_TARGET = "http://127.0.0.1:9/"
POSTGRES_SERVER = "postgres://postgres@127.0.0.1:5432"
POSTGRES_DATABASE = "bench_link_resolution"


@dataclass
class Phase:
    """One timed run of one endpoint: how many answers of which status, and their latencies."""

    name: str
    seconds: float = 0.0
    statuses: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    bad_locations: int = 0

    @property
    def ok(self) -> int:
        return self.statuses[302]

    @property
    def throughput(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(port: int, workers: int, threads: int, log_path: str) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings_bare",
        ALLOWED_HOSTS="127.0.0.1",
        SITE_URL=f"http://127.0.0.1:{port}",
        PYTHONPATH=str(bench.ROOT),
    )
    log = open(log_path, "wb")  # noqa: SIM115 — kept open for the server's lifetime
    return subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "s3portal.wsgi",
            "--chdir", str(bench.ROOT),
            "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread",
            "--no-control-socket", "--log-level", "warning",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip


def csrf_pair(port: int, path: str) -> tuple[str, str]:
    """Return (cookie, form token) as a browser gets them from the recipient page."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path)
    response = connection.getresponse()
    html = response.read().decode()
    if response.status != 200:
        raise SystemExit(f"GET {path} answered {response.status}")
    cookie = re.search(r"csrftoken=([^;]+)", response.getheader("Set-Cookie") or "")[1]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)[1]
    return cookie, token


def run_phase(
    name: str, port: int, paths: list[str], body: str, headers: dict, clients: int, seconds: float,
    location_prefix: str,
) -> Phase:  # fmt: skip
    """Let `clients` threads POST to the paths (each thread in turn from its own start) for `seconds`."""
    phase = Phase(name)
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        statuses: Counter = Counter()
        latencies: list[float] = []
        bad = 0
        turn = index * 7919  # spread the threads over the links
        start.wait()
        while time.perf_counter() < stop_at[0]:
            path = paths[turn % len(paths)]
            turn += 1
            began = time.perf_counter()
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                statuses["error"] += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            latencies.append(time.perf_counter() - began)
            statuses[response.status] += 1
            if response.status == 302 and not (response.getheader("Location") or "").startswith(
                location_prefix
            ):
                bad += 1
            if response.will_close:
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.close()
        with lock:
            phase.statuses.update(statuses)
            phase.latencies.extend(latencies)
            phase.bad_locations += bad

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    start.wait()
    for thread in threads:
        thread.join()
    phase.seconds = time.perf_counter() - began
    return phase


def start_sealer(log_path: str) -> subprocess.Popen:
    """Run the audit sealer as `make run` does, with the same settings as gunicorn."""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="bench.settings_bare", PYTHONPATH=str(bench.ROOT))
    log = open(log_path, "ab")  # noqa: SIM115 — kept open for the sealer's lifetime
    command = [sys.executable, str(bench.ROOT / "manage.py"), "audit_seal", "--every", "2"]
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def open_pages(port: int, paths: list[str]) -> None:
    """Open every recipient page, as each recipient's browser does before downloading.

    Each page is opened on new connections, so that every gunicorn worker shows it (a worker
    remembers for 30 s that S3 has the file; the download then need not ask S3 again)."""
    for path in paths:
        for _ in range(4):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", path, headers={"Connection": "close"})
            response = connection.getresponse()
            response.read()
            connection.close()
            if response.status != 200:
                raise SystemExit(f"GET {path} answered {response.status}")


def measure(args, server, link_paths: list[str]) -> None:
    """Serve, open the recipient pages, run the rounds, and print the figures."""
    from django.db import connections

    from sharing.models import AuditEvent, ShareLink

    connections.close_all()  # gunicorn's workers are the only users of the database now
    port = free_port()
    log_path = str(bench.work_dir(server) / "gunicorn.log")
    web = start_gunicorn(port, args.workers, args.threads, log_path)
    sealer = start_sealer(log_path)
    try:
        bench.wait_ready(port, web)
        cookie, token = csrf_pair(port, link_paths[0])
        body = urlencode({"csrfmiddlewaretoken": token})
        headers = {
            "Cookie": f"csrftoken={cookie}",
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "bench/link_resolution",
            "Origin": f"http://127.0.0.1:{port}",
        }
        print(
            f"\n== {connections['default'].vendor}\n"
            f"gunicorn gthread {args.workers} workers x {args.threads} threads on :{port}; "
            f"{args.clients} client threads; {len(link_paths)} links; "
            f"{args.rounds} rounds of {args.seconds:g} s each; "
            f"{bench.load_average()}"
        )
        # Warm both paths (imports, connection pools, the first S3 connection).
        run_phase("warm", port, link_paths, body, headers, 2, 1.0, server.endpoint_url)
        run_phase("warm", port, ["/bench/bare/"], body, headers, 2, 1.0, BARE_TARGET)
        downloads_before = sum(ShareLink.objects.values_list("downloads", flat=True))
        rows_before = AuditEvent.objects.filter(
            action="link.download", phase="event", outcome="success"
        ).count()
        rounds: list[tuple[Phase, Phase]] = []
        for index in range(args.rounds):
            order = ["bare", "link"] if index % 2 == 0 else ["link", "bare"]
            done = {}
            for name in order:
                if name == "link":
                    open_pages(port, link_paths)  # as each recipient does, moments before
                paths, prefix = (
                    (["/bench/bare/"], BARE_TARGET)
                    if name == "bare"
                    else (link_paths, server.endpoint_url)
                )
                done[name] = run_phase(
                    name, port, paths, body, headers, args.clients, args.seconds, prefix
                )
            rounds.append((done["bare"], done["link"]))
    finally:
        bench.stop_process(web)
        bench.stop_process(sealer)
    counted = sum(ShareLink.objects.values_list("downloads", flat=True)) - downloads_before
    rows = (
        AuditEvent.objects.filter(action="link.download", phase="event", outcome="success").count()
        - rows_before
    )
    report(rounds, counted, rows, log_path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both (default 3)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per phase (default 5)")
    parser.add_argument("--clients", type=int, default=8, help="client threads (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (default 4)")
    parser.add_argument("--links", type=int, default=200, help="links, one per file (default 200)")
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help=f"SQLite (the default, as make run has it) or a new database on {POSTGRES_SERVER}",
    )
    args = parser.parse_args()

    with bench.embedded_server("links") as server, database(args.database) as database_url:
        bench.setup_django(server, database_url=database_url)
        import datetime

        from django.contrib.auth.models import Permission, User
        from django.db import connections
        from django.utils import timezone

        from sharing import services
        from sharing.audit import Actor
        from sharing.models import ShareLink
        from sharing.services import links

        user = User.objects.create_user(username="alice", email="alice@example.com")
        user.user_permissions.add(Permission.objects.get(codename="create_bucket"))
        actor = Actor(user=user, name="alice")
        services.bucket_create(actor=actor, name=BUCKET)
        raw = bench.raw_client(server)
        paths = []
        for index in range(args.links):
            key = KEY.replace("summary", f"summary-{index:04d}")
            raw.put_object(Bucket=BUCKET, Key=key, Body=b"%PDF-1.7\n" * 1000)
            new = links.link_create(
                actor=actor,
                bucket=BUCKET,
                key=key,
                expires_at=timezone.now() + datetime.timedelta(days=6),
            )
            ShareLink.objects.filter(pk=new.link.pk).update(
                recipient_email=f"recipient{index}@example.com"
            )
            paths.append(f"/s/{new.token}")
        measure(args, server, paths)
        connections.close_all()  # before the PostgreSQL database is dropped


@contextlib.contextmanager
def database(kind: str) -> Iterator[str]:
    """Yield the DATABASE_URL to use: none for SQLite, else a new PostgreSQL database, then drop it."""
    if kind == "sqlite":
        yield ""
        return
    import psycopg

    def run(statement: str) -> None:
        with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as admin:
            admin.execute(statement)

    run(f"DROP DATABASE IF EXISTS {POSTGRES_DATABASE}")
    run(f"CREATE DATABASE {POSTGRES_DATABASE}")
    try:
        yield f"{POSTGRES_SERVER}/{POSTGRES_DATABASE}"
    finally:
        run(f"DROP DATABASE IF EXISTS {POSTGRES_DATABASE} WITH (FORCE)")


def report(rounds, counted: int, download_rows: int, log_path: str) -> None:
    rows = []
    for index, (bare, link) in enumerate(rounds, 1):
        for phase in (bare, link):
            others = {k: v for k, v in phase.statuses.items() if k != 302}
            rows.append(
                [
                    f"round {index}: {'bare redirect view' if phase is bare else '/s/<token> download'}",
                    f"{phase.ok}",
                    f"{phase.throughput:.0f}/s",
                    bench.ms(phase.percentile(0.5)),
                    bench.ms(phase.percentile(0.95)),
                    ", ".join(f"{k}: {v}" for k, v in others.items()) or "-",
                ]
            )
    print(bench.table(["run", "302s", "throughput", "p50", "p95", "other answers"], rows))
    bare = statistics.median(b.throughput for b, _ in rounds)
    link = statistics.median(k.throughput for _, k in rounds)
    bare_p50 = statistics.median(b.percentile(0.5) for b, _ in rounds)
    link_p50 = statistics.median(k.percentile(0.5) for _, k in rounds)
    total_302 = sum(k.ok for _, k in rounds)
    bad = sum(k.bad_locations + b.bad_locations for b, k in rounds)
    print()
    print(f"median throughput: bare {bare:.0f}/s, link download {link:.0f}/s")
    print(f"median latency p50: bare {bench.ms(bare_p50)}, link download {bench.ms(link_p50)}")
    print(
        f"link downloads answered 302: {total_302}; counter moved by {counted}; "
        f"link.download success rows: {download_rows}; redirects to a wrong place: {bad}"
    )
    ratio = link / bare if bare else 0.0
    print(f"ratio link/bare = {ratio:.2f}  {bench.verdict(ratio, TARGET, higher_is_better=True)}")
    errors = sum(k.statuses["error"] + b.statuses["error"] for b, k in rounds)
    if errors or any(k.statuses.keys() - {302} for _, k in rounds):
        print(f"some requests failed ({errors} connection errors); gunicorn log: {log_path}")
        with open(log_path, errors="replace") as log:
            tail = log.read()[-3000:]
        print(tail)


if __name__ == "__main__":
    main()
