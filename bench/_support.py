"""Shared by the benchmark scripts: a throw-away SeaweedFS, Django set up against it, timing and tables.

The scripts measure the portal against plain boto3, so boto3 is imported here on purpose: the rule
that boto3 lives only in sharing/s3 is about the application, and a benchmark's yardstick sits outside it.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sharing.embedded import EmbeddedS3, free_s3_port  # noqa: E402

MIB = 1024**2
GIB = 1024**3


@dataclass(frozen=True)
class Stats:
    """Median, minimum and maximum of a series of timed runs, in seconds."""

    runs: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def low(self) -> float:
        return min(self.runs)

    @property
    def high(self) -> float:
        return max(self.runs)

    @property
    def spread(self) -> float:
        """Return (max - min) / median: how noisy the runs were."""
        return (self.high - self.low) / self.median if self.median else 0.0


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def embedded_server(name: str) -> Iterator[EmbeddedS3]:
    """Start a SeaweedFS in a fresh folder under /tmp; stop it and delete the folder whatever happens."""
    # A SIGTERM (a timeout, a closed terminal) must unwind like Ctrl+C so the finally blocks run.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    work = Path(tempfile.mkdtemp(prefix=f"bench-{name}-", dir="/tmp"))  # noqa: S108
    server = EmbeddedS3(work / "s3", s3_port=free_s3_port())
    try:
        started = time.monotonic()
        server.start()
        print(f"SeaweedFS at {server.endpoint_url} ready in {time.monotonic() - started:.1f} s")
        yield server
    finally:
        stopping = time.monotonic()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)
        print(f"SeaweedFS stopped and {work} deleted in {time.monotonic() - stopping:.1f} s")


def work_dir(server: EmbeddedS3) -> Path:
    """Return the temporary folder the server lives in (deleted with it)."""
    return server.data_dir.parent


def setup_django(server: EmbeddedS3, *, database_url: str = "") -> None:
    """Configure the portal in-process against the server, with its own database, and migrate.

    Without database_url, a fresh SQLite database in the server's folder."""
    var_dir = work_dir(server) / "var"
    (var_dir / "static").mkdir(parents=True)  # WhiteNoise warns about a missing STATIC_ROOT
    os.environ.pop("DATABASE_URL", None)
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    os.environ.update(
        DJANGO_SETTINGS_MODULE="s3portal.settings",
        VAR_DIR=str(var_dir),
        S3_ENDPOINT_URL=server.endpoint_url,
        S3_ACCESS_KEY_ID=server.credentials.access_key,
        S3_SECRET_ACCESS_KEY=server.credentials.secret_key,
        S3_EMBEDDED="false",
        STATICFILES_BACKEND="django.contrib.staticfiles.storage.StaticFilesStorage",
        # django.test.Client calls itself "testserver"; DEBUG stays off (no SQL query log).
        ALLOWED_HOSTS="testserver",
        LOG_LEVEL="WARNING",
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def bench_actor() -> tuple[Any, Any]:
    """Create the superuser the benchmarks act as; return it and its audit Actor."""
    from django.contrib.auth.models import User

    from sharing.audit import Actor

    user = User.objects.create_superuser(username="bench", email="", password=None)
    return user, Actor(user=user, name="bench")


def raw_client(server: EmbeddedS3, *, pool: int = 10, config: Any = None) -> Any:
    """Return a plain boto3 client for the server: the yardstick, configured as a user would."""
    import boto3
    from botocore.config import Config

    base = Config(
        signature_version="s3v4", s3={"addressing_style": "path"}, max_pool_connections=pool
    )
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=server.credentials.access_key,
        aws_secret_access_key=server.credentials.secret_key,
        config=base.merge(config) if config else base,
    )


def timed(function: Callable[[], object]) -> float:
    """Return how long one call took, in seconds."""
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def rss_mib(pid: int) -> tuple[float, float]:
    """Return a process's current and peak resident memory in MiB (Linux /proc)."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def server_pid(server: EmbeddedS3) -> int:
    """Return the pid of the running weed process."""
    process = server._process
    if process is None:
        raise RuntimeError("the server is not running")
    return process.pid


def load_average() -> str:
    """Return the 1-minute load average and the CPU count, to judge the machine's noise."""
    return f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Return rows as a plain text table, the first column left-aligned, the others right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        first, *rest = cells
        return "  ".join(
            [str(first).ljust(widths[0])]
            + [str(cell).rjust(width) for cell, width in zip(rest, widths[1:], strict=True)]
        )

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def secs(seconds: float) -> str:
    return f"{seconds:.2f} s"


def verdict(ratio: float, target: float, *, higher_is_better: bool = False) -> str:
    met = ratio >= target if higher_is_better else ratio <= target
    sign = "≥" if higher_is_better else "≤"
    return f"{'PASS' if met else 'FAIL'} (target {sign} {target:g}×)"


def stop_process(process: subprocess.Popen | None, *, timeout: float = 15) -> None:
    """Stop a server started for a measurement: SIGTERM, then SIGKILL after `timeout` seconds."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_ready(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until the portal on `port` answers its login page; exit if it stopped or never did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode} while starting")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/login/")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"gunicorn did not answer within {timeout:g} s")
