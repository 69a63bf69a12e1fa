"""Upload 1 GiB through the portal's upload path, and with boto3's upload_file, to the same server.

Run: .venv/bin/python bench/upload_1gib.py [--runs 3] [--size-mib 1024]

Starts its own embedded S3 server (SeaweedFS) and two portals under gunicorn (one signing parts
for direct upload, one with UPLOAD_VIA_PORTAL=true), each with a temporary VAR_DIR and SQLite
database and a user with a write grant. Then, side by side in every round:
  portal-direct   the browser's path: create, sign each part, PUT it to its presigned URL, complete
  portal-proxied  the same endpoints with UPLOAD_VIA_PORTAL: parts are PUT to the portal,
                  which streams them on to S3
  boto3           upload_file with boto3's default transfer settings
and prints MiB/s medians and ratios, then the proxied portal's peak RSS (gunicorn master and
workers, sampled from /proc) during a 1 GiB upload against a 10 MiB one. Everything it writes
lives under /tmp and is deleted at the end.
"""

import argparse
import http.cookies
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _support as bench
import urllib3
from boto3.s3.transfer import TransferConfig

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sharing.embedded import EmbeddedS3, free_s3_port  # noqa: E402

MIB = 1024**2
BUCKET = "bench-uploads"
USER, PASSWORD = "bench", secrets.token_urlsafe(16)
PART_BYTES = 16 * MIB  # the portal's default UPLOAD_PART_BYTES
CLIENT_THREADS = 8  # parts in flight at once, as boto3 (10) and a browser with several files
GUNICORN = ["--workers", "2", "--threads", "4", "--worker-class", "gthread"]  # as runportal


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Portal:
    """One gunicorn serving the portal, configured by environment variables like production."""

    def __init__(self, var_dir: Path, server: EmbeddedS3, *, via_portal: bool) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "VAR_DIR": str(var_dir),
            "SECRET_KEY": secrets.token_urlsafe(40),
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SITE_URL": self.url,
            "S3_EMBEDDED": "false",
            "S3_ENDPOINT_URL": server.endpoint_url,
            "S3_ACCESS_KEY_ID": server.credentials.access_key,
            "S3_SECRET_ACCESS_KEY": server.credentials.secret_key,
            "S3_READ_TIMEOUT": "60",
            "UPLOAD_MAX_BYTES": str(64 * 1024**3),
            "UPLOAD_PART_BYTES": str(PART_BYTES),
            "UPLOAD_VIA_PORTAL": "true" if via_portal else "false",
            "STATICFILES_BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage",
            "LOG_LEVEL": "WARNING",
        }
        self.log = var_dir.parent / f"gunicorn-{self.port}.log"
        self.process: subprocess.Popen | None = None
        self.http = urllib3.PoolManager(maxsize=CLIENT_THREADS * 2)
        self.cookies: dict[str, str] = {}

    def manage(self, *args: str) -> None:
        subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "s3portal.wsgi",
            "--bind",
            f"127.0.0.1:{self.port}",
        ]
        self.process = subprocess.Popen(
            [*command, *GUNICORN, "--no-control-socket", "--timeout", "120"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
            start_new_session=True,
        )
        for _ in range(200):
            try:
                self.http.request("GET", f"{self.url}/login/", retries=False)
                return
            except urllib3.exceptions.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def _remember(self, response: urllib3.BaseHTTPResponse) -> None:
        for header in response.headers.getlist("Set-Cookie"):
            cookie = http.cookies.SimpleCookie(header)
            self.cookies.update({name: morsel.value for name, morsel in cookie.items()})

    def _headers(self, **extra: str) -> dict[str, str]:
        cookie = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        return {"Cookie": cookie, "X-CSRFToken": self.cookies.get("csrftoken", ""), **extra}

    def log_in(self) -> None:
        page = self.http.request("GET", f"{self.url}/login/")
        self._remember(page)
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.data).group(1)
        response = self.http.request(
            "POST",
            f"{self.url}/login/",
            fields={"csrfmiddlewaretoken": token.decode(), "username": USER, "password": PASSWORD},
            encode_multipart=False,
            headers=self._headers(),
            redirect=False,
        )
        self._remember(response)
        if response.status != 302:
            raise RuntimeError(f"log in failed: {response.status}")

    def api(self, path: str, data: dict) -> dict:
        response = self.http.request(
            "POST",
            f"{self.url}{path}",
            body=json.dumps(data).encode(),
            headers=self._headers(**{"Content-Type": "application/json"}),
        )
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status} {response.data[:300]!r}")
        return json.loads(response.data)

    def upload(self, source: Path, key: str) -> None:
        """Upload a file as the browser does: start, then sign and PUT each part, then complete."""
        size = source.stat().st_size
        # gunicorn closes keep-alive connections idle for 2 s: start each upload with fresh ones.
        self.http.clear()
        started = self.api(
            f"/b/{BUCKET}/uploads/",
            {"key": key, "size": size, "type": "application/octet-stream", "multipart": True},
        )
        upload_id = started["uploadId"]
        part_size = max(PART_BYTES, -(-size // 10_000))
        count = max(1, -(-size // part_size))
        with open(source, "rb") as file:
            descriptor = file.fileno()

            def send(number: int) -> None:
                url = self.api("/uploads/sign/", {"uploadId": upload_id, "part": number})["url"]
                if url.startswith("/"):  # proxied: the portal's own URL, with the session
                    url, headers = f"{self.url}{url}", self._headers()
                else:
                    headers = {}
                body = os.pread(descriptor, part_size, (number - 1) * part_size)
                response = self.http.request("PUT", url, body=body, headers=headers, retries=False)
                if response.status != 200 or not response.headers.get("ETag"):
                    raise RuntimeError(f"part {number}: {response.status} {response.data[:300]!r}")

            with ThreadPoolExecutor(CLIENT_THREADS) as pool:
                list(pool.map(send, range(1, count + 1)))
        done = self.api("/uploads/complete/", {"uploadId": upload_id})
        if done["size"] != size:
            raise RuntimeError(f"completed size {done['size']} != {size}")

    def pids(self) -> list[int]:
        """Return gunicorn's master and worker pids."""
        master = self.process.pid
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        return [master, *map(int, children)]


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total += int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024
    return total


class PeakRss:
    """Sample the summed RSS of some processes every 20 ms while the block runs."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pids))
            time.sleep(0.02)

    def __enter__(self) -> "PeakRss":
        self.peak = rss_bytes(self.pids)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes(self.pids))


def make_file(path: Path, size: int) -> None:
    chunk = os.urandom(8 * MIB)
    with open(path, "wb") as file:
        written = 0
        while written < size:
            file.write(chunk[: min(len(chunk), size - written)])
            written += min(len(chunk), size - written)


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=1024)
    options = parser.parse_args()
    size = options.size_mib * MIB

    tmp = Path(tempfile.mkdtemp(prefix="bench-upload-", dir="/tmp"))  # noqa: S108
    server = EmbeddedS3(tmp / "s3", s3_port=free_s3_port())
    portals: list[Portal] = []
    try:
        print(f"Starting the embedded S3 server and two portals in {tmp} …", flush=True)
        server.start()
        raw = bench.raw_client(server)
        raw.create_bucket(Bucket=BUCKET)
        (tmp / "var").mkdir()
        direct = Portal(tmp / "var", server, via_portal=False)
        proxied = Portal(tmp / "var", server, via_portal=True)
        portals = [direct, proxied]
        direct.manage("migrate", "--verbosity", "0")
        direct.manage(
            "shell",
            "-c",
            "from django.contrib.auth.models import User; from sharing.models import BucketGrant;"
            f"u = User.objects.create_user({USER!r}, password={PASSWORD!r});"
            f"BucketGrant.objects.create(user=u, bucket={BUCKET!r}, role='write')",
        )
        for portal in portals:
            portal.start()
            portal.log_in()

        source, small = tmp / "1gib.bin", tmp / "10mib.bin"
        make_file(source, size)
        make_file(small, 10 * MIB)
        transfer = TransferConfig()  # boto3's defaults: 8 MiB parts, 10 threads

        speeds: dict[str, list[float]] = {"portal-direct": [], "portal-proxied": [], "boto3": []}
        actions = {
            "portal-direct": lambda key: direct.upload(source, key),
            "portal-proxied": lambda key: proxied.upload(source, key),
            "boto3": lambda key: raw.upload_file(str(source), BUCKET, key, Config=transfer),
        }
        for round_number in range(1, options.runs + 1):
            for name, action in actions.items():
                key = f"{name}-{round_number}.bin"
                seconds = timed(lambda key=key, action=action: action(key))
                stored = raw.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
                assert stored == size, (name, stored)
                raw.delete_object(Bucket=BUCKET, Key=key)
                speeds[name].append(size / MIB / seconds)
                print(
                    f"  round {round_number} {name:15} {size / MIB / seconds:7.1f} MiB/s",
                    flush=True,
                )

        proxied.upload(small, "warm-up.bin")  # imports and first-request allocations done
        with PeakRss(proxied.pids()) as small_peak:
            proxied.upload(small, "rss-10mib.bin")
        with PeakRss(proxied.pids()) as big_peak:
            proxied.upload(source, "rss-1gib.bin")

        medians = {name: statistics.median(values) for name, values in speeds.items()}
        print(
            f"\nUpload of {options.size_mib} MiB, median of {options.runs} runs "
            f"({PART_BYTES // MIB} MiB parts, {CLIENT_THREADS} in flight):"
        )
        for name, value in medians.items():
            print(f"  {name:15} {value:7.1f} MiB/s")
        for name in ("portal-direct", "portal-proxied"):
            ratio = medians[name] / medians["boto3"]
            print(f"  ratio {name} / boto3: {ratio:.2f} (target ≥ 0.9)")
        ratio = big_peak.peak / small_peak.peak
        print(
            "Proxied portal peak RSS (gunicorn master + 2 workers): "
            f"{small_peak.peak / MIB:.1f} MiB for 10 MiB, {big_peak.peak / MIB:.1f} MiB for "
            f"{options.size_mib} MiB: ratio {ratio:.2f} (target ≤ 1.2)"
        )
    except BaseException:
        for portal in portals:
            if portal.log.exists():
                print(
                    f"--- {portal.log.name} (last lines)\n"
                    + "\n".join(portal.log.read_text().splitlines()[-120:])
                )
        raise
    finally:
        for portal in portals:
            portal.stop()
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
