"""Benchmark: audit appends per second from 8 processes on PostgreSQL, against plain inserts.

Run from the repository root: .venv/bin/python bench/audit_append.py [--processes 8] [--rounds 3]
    [--seconds 5]

On a new PostgreSQL database on 127.0.0.1:5432 (dropped at the end), P processes append rows as
fast as they can for S seconds, two ways, alternating, in each round:
- **audit**: `sharing.audit.record(...)`, the portal's append: the row's fields, its HMAC-SHA256
  and one ORM insert, committed on its own, into the audit table with its indexes. The sealer
  (`manage.py audit_seal --every 2`, as `make run` runs it) chains the rows meanwhile; the backlog
  of unsealed rows is sampled every half second, and how long the sealer takes to empty it after
  the phase is measured.
- **plain**: the same rows, by the same ORM insert (`Model.objects.create`), into a table with the
  same columns and indexes but no MAC and no chain: the limit an append cannot beat.
Figures: rows/s per phase, medians over the rounds, the ratio audit/plain (target >= 0.7), and the
sealer's largest backlog (target: bounded, i.e. it drains within seconds once appends stop).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET = 0.7
POSTGRES_SERVER = "postgres://postgres@127.0.0.1:5432"
DATABASE = "bench_audit_append"
DATABASE_URL = f"{POSTGRES_SERVER}/{DATABASE}"


def configure() -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="s3portal.settings",
        DATABASE_URL=DATABASE_URL,
        S3_EMBEDDED="false",
        S3_ENDPOINT_URL="http://127.0.0.1:9",
        S3_ACCESS_KEY_ID="bench",
        S3_SECRET_ACCESS_KEY="bench",
        LOG_LEVEL="WARNING",
        VAR_DIR=os.environ.get("BENCH_VAR_DIR", "/tmp/s3portal-bench-audit"),
    )
    import django

    django.setup()


def plain_model():
    """Return a model with the audit table's columns and indexes but no MAC and no chain."""
    from django.db import models

    from sharing.models import AuditEvent

    chain = {"id", "mac", "seq", "prev_hash", "hash"}
    attrs = {
        field.name: field.clone()
        for field in AuditEvent._meta.local_fields
        if field.name not in chain
    }

    class Meta:
        app_label = "sharing"
        db_table = "bench_plain_event"
        indexes = [models.Index(fields=["bucket", "created_at"], name="bench_plain_bucket_time")]

    attrs.update(__module__=__name__, Meta=Meta)
    return type("PlainEvent", (models.Model,), attrs)


def row_fields(index: int, number: int) -> dict:
    return {
        "action": "link.download",
        "outcome": "success",
        "bucket": "bench-bucket",
        "key": f"reports/2026/file-{number % 500:04d}.pdf",
        "message": f"Link {index}-{number}: download counted, 60 s URL handed out.",
    }


def worker(kind: str, index: int, seconds: float, ready, go, results) -> None:
    configure()
    from django.db import connection
    from django.utils import timezone

    from sharing import audit
    from sharing.audit import Actor

    actor = Actor(ip=f"198.51.100.{index + 1}", user_agent="bench/audit_append", name="recipient")
    plain = plain_model() if kind == "plain" else None
    connection.ensure_connection()
    ready.put(index)
    go.wait()
    stop_at = time.monotonic() + seconds
    done = 0
    while time.monotonic() < stop_at:
        fields = row_fields(index, done)
        if plain is None:
            audit.record(actor=actor, **fields)
        else:
            plain.objects.create(
                created_at=timezone.now(),
                phase="event",
                actor_name=actor.name,
                client_ip=actor.ip,
                user_agent=actor.user_agent,
                **fields,
            )
        done += 1
    results.put(done)


def run_phase(kind: str, processes: int, seconds: float) -> float:
    results, ready, go = multiprocessing.Queue(), multiprocessing.Queue(), multiprocessing.Event()
    children = [
        multiprocessing.Process(target=worker, args=(kind, n, seconds, ready, go, results))
        for n in range(processes)
    ]
    for child in children:
        child.start()
    for _ in children:  # every process set up and connected before the clock starts
        ready.get()
    go.set()
    total = sum(results.get() for _ in children)
    for child in children:
        child.join()
    return total / seconds


def unsealed() -> int:
    from sharing.models import AuditEvent

    return AuditEvent.objects.filter(seq__isnull=True).count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    multiprocessing.set_start_method("spawn")
    import psycopg

    def admin(statement: str) -> None:
        with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as connection:
            connection.execute(statement)

    admin(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    admin(f"CREATE DATABASE {DATABASE}")
    try:
        configure()
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        with connection.schema_editor() as editor:
            editor.create_model(plain_model())
        measure(args)
        connection.close()
    finally:
        admin(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def measure(args) -> None:
    from sharing import audit

    env = dict(os.environ)
    sealer = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "audit_seal", "--every", "2"], env=env
    )
    print(
        f"PostgreSQL, {args.processes} processes, {args.rounds} rounds of {args.seconds:g} s "
        f"per phase, sealer every 2 s; load {os.getloadavg()[0]:.2f}"
    )
    rates: dict[str, list[float]] = {"plain": [], "audit": []}
    backlog_peaks, drain_times = [], []
    try:
        for index in range(args.rounds):
            for kind in ("plain", "audit") if index % 2 == 0 else ("audit", "plain"):
                if kind == "audit":
                    sampler = multiprocessing.Process(
                        target=sample_backlog, args=(args.seconds + 2.5,)
                    )
                    sampler.start()
                rate = run_phase(kind, args.processes, args.seconds)
                rates[kind].append(rate)
                line = f"round {index + 1} {kind:5}: {rate:8.0f} rows/s"
                if kind == "audit":
                    sampler.join()
                    peak = int(Path(BACKLOG_FILE).read_text() or 0)
                    began = time.monotonic()
                    while unsealed():
                        time.sleep(0.1)
                    drain = time.monotonic() - began
                    backlog_peaks.append(peak)
                    drain_times.append(drain)
                    line += f"   largest unsealed backlog {peak} rows, empty {drain:.1f} s after"
                print(line, flush=True)
    finally:
        sealer.terminate()
        sealer.wait()
    plain, chained = statistics.median(rates["plain"]), statistics.median(rates["audit"])
    ratio = chained / plain
    print(f"\nmedian: plain {plain:.0f} rows/s, audit {chained:.0f} rows/s")
    verdict = "meets" if ratio >= TARGET else "misses"
    print(f"ratio audit/plain = {ratio:.2f} ({verdict} the target >= {TARGET})")
    print(
        f"sealer: largest backlog {max(backlog_peaks)} rows; emptied within "
        f"{max(drain_times):.1f} s after each phase"
    )
    problems = audit.verify()
    print(
        f"audit_verify after the run: {len(problems)} problems"
        + (f": {problems[0]}" if problems else "")
    )


BACKLOG_FILE = "/tmp/s3portal-bench-audit-backlog"


def sample_backlog(seconds: float) -> None:
    configure()
    peak = 0
    stop_at = time.monotonic() + seconds
    while time.monotonic() < stop_at:
        peak = max(peak, unsealed())
        time.sleep(0.5)
    Path(BACKLOG_FILE).write_text(str(peak))


if __name__ == "__main__":
    main()
