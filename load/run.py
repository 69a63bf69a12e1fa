"""`make load`: the portal under gunicorn, PostgreSQL and the embedded S3, used by many people at once.

Run from the repository root: .venv/bin/python load/run.py [--seconds 120] [--users 20]
    (or LOAD_SECONDS=300 make load)

Everything lives in a temporary folder under /tmp, deleted at the end, never in var/: the
embedded S3 server (SeaweedFS on free ports), the portal's VAR_DIR (its generated keys) and the
logs. A new PostgreSQL database s3portal_load_<pid> on 127.0.0.1:5432 is created, migrated and
dropped at the end (LOAD_POSTGRES_URL names the server and the database to connect to for that,
default postgres://postgres@127.0.0.1:5432/postgres).

The portal is served as `manage.py runportal` serves it: gunicorn with gthread workers
(--workers, default 2), the audit sealer beside it (`manage.py audit_seal --every 2`).
Static files are neither collected nor requested (a browser has them cached; collecting them
takes minutes), so pages are rendered with StaticFilesStorage, as in the benchmarks. The seed
(load/seed.py: one account per simulated person, two buckets they may write, folders of files)
goes through the services. locust then runs load/locustfile.py headless for --seconds.

It prints, per request kind, the count, errors and p50/p95/p99 of the answer times; the
requests per second; the portal's memory (RSS of the gunicorn master and its workers) at the
start and the end; the load average and the CPU time the portal and locust used; and the
storage calls' times as the audit trail recorded them. Then it checks (load/checks.py) that
`manage.py audit_verify` passes, no audit intent is left without its outcome, the trail holds
no failure, refusal or denial (but "used up" for limited links), every counted link download
has its link.download row and matches what the recipients were answered, and every completed
upload is in S3 with its size. It exits 1 on any failed request, error logged by the portal, or
inconsistency; 2 when it cannot start. --keep leaves the temporary folder (logs with each
request's duration, plan, results) for a closer look.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "bench"))

import _support as bench  # noqa: E402

from load import checks, figures  # noqa: E402
from load import seed as seeding  # noqa: E402
from sharing.embedded import EmbeddedS3, EmbeddedS3Error, free_s3_port  # noqa: E402

POSTGRES_URL = os.environ.get("LOAD_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
KEPT_ENV = ("PATH", "HOME", "LANG", "LC_", "TZ", "TMPDIR", "USER", "LOGNAME", "VIRTUAL_ENV", "PG")
SEAL_EVERY = "2"  # seconds, as runportal
STOP_TIMEOUT = 15
# gunicorn's default access log line, with how long each request took (seconds) at the end.
ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(L)s'
LOCUST_STOP_TIMEOUT = 20  # seconds a person may take to finish what they were doing
MIB = 1024 * 1024
STARTED = time.monotonic()


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def database(name: str) -> Iterator[str]:
    """Create an empty PostgreSQL database; yield its URL; drop it, connections and all."""
    import psycopg

    server = urlsplit(POSTGRES_URL)

    def run(statement: str) -> None:
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as admin:
            admin.execute(statement)

    run(f'DROP DATABASE IF EXISTS "{name}"')
    run(f'CREATE DATABASE "{name}"')
    try:
        yield server._replace(path=f"/{name}").geturl()
    finally:
        run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def portal_env(*, var_dir: Path, database_url: str, s3: EmbeddedS3, port: int) -> dict[str, str]:
    """Return the environment of every portal process: production-like, all of it temporary."""
    # Nothing from the developer's shell (their storage, database, keys) reaches the portal.
    env = {name: value for name, value in os.environ.items() if name.startswith(KEPT_ENV)}
    env.update(
        DJANGO_SETTINGS_MODULE="s3portal.settings",
        VAR_DIR=str(var_dir),
        DATABASE_URL=database_url,
        DEBUG="false",
        ALLOWED_HOSTS="127.0.0.1",
        PORT=str(port),
        SITE_URL=f"http://127.0.0.1:{port}",
        S3_EMBEDDED="false",
        S3_ENDPOINT_URL=s3.endpoint_url,
        S3_ACCESS_KEY_ID=s3.credentials.access_key,
        S3_SECRET_ACCESS_KEY=s3.credentials.secret_key,
        # S3's smallest part, so that the files over 5 MiB that people upload go in two parts.
        UPLOAD_PART_BYTES=str(5 * MIB),
        STATICFILES_BACKEND="django.contrib.staticfiles.storage.StaticFilesStorage",
        LOG_LEVEL="WARNING",
    )
    return env


def start(command: list[str], *, env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start a child in a session of its own: a Ctrl-C reaches the driver, which stops it in order."""
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 (our own interpreter and fixed arguments)
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip


def run_locust(args, *, work: Path, env: dict[str, str], url: str) -> int:
    """Run the scenario headless; return locust's exit code (non-zero after any failure)."""
    command = [
        sys.executable, "-m", "locust", "-f", str(ROOT / "load" / "locustfile.py"),
        "--headless", "--host", url, "--users", str(args.users),
        "--spawn-rate", str(args.spawn_rate), "--run-time", f"{args.seconds}s",
        "--stop-timeout", str(LOCUST_STOP_TIMEOUT), "--only-summary", "--loglevel", "WARNING",
    ]  # fmt: skip
    locust_env = env | {
        "LOAD_PLAN": str(work / "plan.json"),
        "LOAD_RESULTS": str(work / "results.json"),
    }
    with (work / "locust.log").open("wb") as log:
        done = subprocess.run(  # noqa: S603 (our own interpreter and fixed arguments)
            command, cwd=ROOT, env=locust_env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, timeout=args.seconds + LOCUST_STOP_TIMEOUT + 60,
        )  # fmt: skip
    return done.returncode


def say(text: str) -> None:
    """Print a step of the run with the seconds since the start."""
    print(f"[{time.monotonic() - STARTED:5.1f} s] {text}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=int, default=int(os.environ.get("LOAD_SECONDS") or 120),
        help="how long the load runs (default: LOAD_SECONDS or 120)",
    )  # fmt: skip
    parser.add_argument("--users", type=int, default=20, help="simulated people (default 20)")
    parser.add_argument(
        "--spawn-rate", type=float, default=1, help="people logging in per second (default 1)"
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder (logs, plan, results)"
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _raise_interrupt)
    work = Path(tempfile.mkdtemp(prefix="s3portal-load-"))
    try:
        return run(args, work)
    except (EmbeddedS3Error, OSError) as error:
        print(f"The load could not start: {error}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            say(f"done; logs and results kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
            say(f"done; {work} deleted")


def run(args, work: Path) -> int:
    import psycopg

    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=5).close()
    except psycopg.OperationalError as error:
        print(f"PostgreSQL at {urlsplit(POSTGRES_URL).netloc}: {error}", file=sys.stderr)
        return 2
    storage = EmbeddedS3(work / "s3", s3_port=free_s3_port())
    storage.start()
    say(f"embedded S3 ready at {storage.endpoint_url}")
    try:
        name = f"s3portal_load_{os.getpid()}"
        with database(name) as database_url:
            code = serve_and_load(args, work, storage, database_url)
        say(f"database {name} dropped")
        return code
    finally:
        storage.stop()
        say("embedded S3 stopped")


def serve_and_load(args, work: Path, storage: EmbeddedS3, database_url: str) -> int:
    port = free_port()
    env = portal_env(var_dir=work / "var", database_url=database_url, s3=storage, port=port)
    os.environ.update(env)  # the driver's own Django: the seed and the checks
    import django
    from django.core.management import call_command
    from django.db import connections

    django.setup()
    try:
        call_command("migrate", interactive=False, verbosity=0)
        say(f"database {urlsplit(database_url).path[1:]} created and migrated")
        with serving(args, work, env, port) as web:
            seed_portal(args, work, storage, env)  # while gunicorn boots
            measured = run_load(args, work, env, port, web)
        return report_and_check(args, work, env, measured)
    finally:
        connections.close_all()  # before the database is dropped


@contextlib.contextmanager
def serving(args, work: Path, env: dict[str, str], port: int) -> Iterator[subprocess.Popen]:
    """Serve the portal as runportal does, with the audit sealer beside it; stop both at the end."""
    manage = [sys.executable, str(ROOT / "manage.py")]
    sealer = start([*manage, "audit_seal", "--every", SEAL_EVERY], env=env, log=work / "sealer.log")
    web = None
    try:
        # runportal's own command line (Django is set up by now); the access log, with each
        # request's duration, goes to a file instead (gunicorn takes the last value given).
        from sharing.management.commands.runportal import gunicorn_command

        web = start(
            [
                *gunicorn_command(port=port, workers=args.workers),
                "--access-logfile", str(work / "access.log"),
                "--access-logformat", ACCESS_LOG_FORMAT,
            ],
            env=env,
            log=work / "gunicorn.log",
        )  # fmt: skip
        yield web
    finally:
        bench.stop_process(web, timeout=STOP_TIMEOUT)
        bench.stop_process(sealer, timeout=STOP_TIMEOUT)


def seed_portal(args, work: Path, storage: EmbeddedS3, env: dict[str, str]) -> None:
    """Seed the database and S3 through the services; write the plan for locust."""
    from django.db import connections

    site_url = env["SITE_URL"]
    plan = seeding.seed(users=args.users, s3_endpoint=storage.endpoint_url, site_url=site_url)
    (work / "plan.json").write_text(json.dumps(plan))
    connections.close_all()
    say(
        f"seeded through the services: {len(plan['accounts'])} accounts, "
        f"{len(plan['files'])} files in {len(seeding.BUCKETS)} buckets"
    )


@dataclass
class Measured:
    began: datetime.datetime
    locust_code: int
    portal_cpu: float  # CPU seconds used during the load
    locust_cpu: float
    rss_start: float
    rss_end: float
    rss_peak: float
    load_start: str
    load_end: str
    unsealed: int


def run_load(args, work: Path, env: dict[str, str], port: int, web: subprocess.Popen) -> Measured:
    """Run locust against the ready portal; stop the portal and let the sealer finish."""
    bench.wait_ready(port, web)
    rss_start, load_start = figures.portal_rss(web.pid), figures.load_average()
    cpu_start = figures.portal_cpu(web.pid)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = datetime.datetime.now(datetime.UTC)
    say(
        f"gunicorn ready on {env['SITE_URL']} ({args.workers} gthread workers as "
        f"runportal starts them), audit sealer every {SEAL_EVERY} s; {args.users} people for {args.seconds} s"
    )
    with figures.PeakRss(web.pid) as peak:
        locust_code = run_locust(args, work=work, env=env, url=env["SITE_URL"])
    rss_end, load_end = figures.portal_rss(web.pid), figures.load_average()
    cpu = figures.portal_cpu(web.pid) - cpu_start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # locust is the one child that ended
    locust_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    say(f"locust done (exit code {locust_code})")
    bench.stop_process(web, timeout=STOP_TIMEOUT)
    unsealed = checks.wait_sealed()  # the rows of the last requests
    say("gunicorn stopped" + ("" if unsealed else "; the sealer has sealed every audit row"))
    return Measured(
        began, locust_code, cpu, locust_cpu, rss_start, rss_end, max(peak.peak, rss_end),
        load_start, load_end, unsealed,
    )  # fmt: skip


def report_and_check(args, work: Path, env: dict[str, str], measured: Measured) -> int:
    """Print the figures, run the consistency checks; return the exit code."""
    results_path = work / "results.json"
    if not results_path.exists():
        print(f"locust wrote no results; its log:\n{(work / 'locust.log').read_text()[-3000:]}")
        return 1
    results = json.loads(results_path.read_text())
    print()
    failed, per_second = figures.report_requests(results)
    print(
        f"\nrequests/s: {per_second:.1f}; failed requests: {failed}; "
        f"locust exit code {measured.locust_code}"
    )
    print(
        f"portal RSS (gunicorn master + {args.workers} workers): {measured.rss_start:.1f} MiB "
        f"at the start, {measured.rss_end:.1f} MiB at the end, {measured.rss_peak:.1f} MiB at most"
    )
    print(f"load average: {measured.load_start} at the start, {measured.load_end} at the end")
    print(
        f"CPU used during the load: portal {measured.portal_cpu:.0f} s, locust "
        f"{measured.locust_cpu:.0f} s, in {results['seconds']:.0f} s on {os.cpu_count()} CPUs"
    )

    print("\nstorage calls during the load, as the audit trail timed them (intent to outcome):")
    figures.print_table(
        [["action", "calls", "p50 ms", "p95 ms"], *checks.storage_times(since=measured.began)]
    )

    problems = []
    if measured.unsealed:
        problems.append(f"{measured.unsealed} audit rows still unsealed after the load")
    problems += checks.audit_verify(root=ROOT, env=env)
    problems += checks.pending_intents()
    problems += checks.unexpected_rows()
    problems += checks.links(results["links"])
    problems += checks.uploads(results["uploaded"])
    links = results["links"]
    print(
        f"\nchecked: {len(results['uploaded'])} uploads in S3, {len(links)} links with "
        f"{sum(link['downloads'] for link in links)} downloads "
        f"({sum(link['gone'] for link in links)} refused as used up), the audit trail"
    )
    resent = results["resent"]
    print(
        f"requests sent again on a new connection because the kept-alive one was closed under "
        f"them (as browsers do): {len(resent)}" + "".join(f"\n  {line}" for line in resent[:5])
    )
    errors = figures.server_errors(work / "gunicorn.log", work / "sealer.log")
    for error in errors[:5]:
        print(f"\nPORTAL ERROR (of {len(errors)}):\n{error}")
    for problem in problems:
        print(f"INCONSISTENT: {problem}")
    if measured.locust_code and not failed:
        print(f"locust exited {measured.locust_code}:\n{(work / 'locust.log').read_text()[-3000:]}")
    bad = failed or errors or problems or measured.locust_code
    print("\nFAIL" if bad else "\nOK: no errors, everything consistent")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
