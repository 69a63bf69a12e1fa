"""Download a folder of ~1 GiB as one ZIP from the portal, and build the same ZIP with boto3.

Run: .venv/bin/python bench/zip_download.py [--runs 3] [--scale 1.0]

Starts its own embedded S3 server (SeaweedFS) and one portal under gunicorn (gthread, as
runportal), with a temporary VAR_DIR, SQLite database and a user with a read grant, and stores
16 files of 64 MiB and 1,000 small files (times --scale) in one folder. Then, side by side in
every round, the order alternating:
  portal  GET /b/<bucket>/zip/?prefix=set/ through gunicorn, read in 1 MiB pieces to /dev/null
  boto3   get_object of each file, its body streamed into Python's zipfile writing to /dev/null
and prints the MiB/s medians and their ratio (target >= 0.8), then the gunicorn worker's peak
RSS after a 10 MiB archive against after the full one (target <= 1.2). Everything it writes lives
under /tmp and is deleted at the end.
"""

import argparse
import os
import re
import shutil
import statistics
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _support as bench
from upload_1gib import PASSWORD, USER, Portal

from sharing.embedded import EmbeddedS3, free_s3_port

MIB = 1024**2
BUCKET = "bench-zips"
BIG_FILES, BIG_BYTES = 16, 64 * MIB
SMALL_FILES, SMALL_BYTES = 1000, 4096
READ_PIECE = MIB
RATE_TARGET, RSS_TARGET = 0.8, 1.2


class DevNull:
    """/dev/null without tell or seek, so zipfile streams as it would to a socket."""

    def __init__(self) -> None:
        self.file = open("/dev/null", "wb")  # noqa: SIM115 (closed by close())
        self.written = 0

    def write(self, data: bytes) -> int:
        self.written += len(data)
        return self.file.write(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.file.close()


def store(raw, prefix: str, count: int, size: int, body: bytes) -> list[tuple[str, int]]:
    keys = [(f"{prefix}{number:04d}.bin", size) for number in range(count)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda item: raw.put_object(Bucket=BUCKET, Key=item[0], Body=body), keys))
    return keys


def portal_zip(portal: Portal, prefix: str) -> int:
    portal.http.clear()  # gunicorn closes keep-alive connections idle for 2 s
    response = portal.http.request(
        "GET",
        f"{portal.url}/b/{BUCKET}/zip/?prefix={prefix}",
        headers={"Cookie": "; ".join(f"{name}={value}" for name, value in portal.cookies.items())},
        preload_content=False,
    )
    if response.status != 200:
        raise RuntimeError(f"zip: {response.status} {response.read(300)!r}")
    sink = DevNull()
    try:
        for piece in response.stream(READ_PIECE):
            sink.write(piece)
    finally:
        response.release_conn()
        sink.close()
    if sink.written != int(response.headers["Content-Length"]):
        raise RuntimeError(f"zip: {sink.written} bytes, not {response.headers['Content-Length']}")
    return sink.written


def boto3_zip(raw, keys: list[tuple[str, int]], prefix: str) -> int:
    sink = DevNull()
    with zipfile.ZipFile(sink, "w") as archive:
        for key, _ in keys:
            body = raw.get_object(Bucket=BUCKET, Key=key)["Body"]
            with archive.open(key.removeprefix(prefix), "w", force_zip64=True) as entry:
                for chunk in body.iter_chunks(READ_PIECE):
                    entry.write(chunk)
    sink.close()
    return sink.written


def peak_rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="e.g. 0.1 for a quick check")
    options = parser.parse_args()
    big_bytes = max(MIB, int(BIG_BYTES * options.scale))
    small_files = max(10, int(SMALL_FILES * options.scale))

    tmp = Path(tempfile.mkdtemp(prefix="bench-zip-", dir="/tmp"))  # noqa: S108
    server = EmbeddedS3(tmp / "s3", s3_port=free_s3_port())
    portal: Portal | None = None
    try:
        print(f"Starting the embedded S3 server and a portal in {tmp} …", flush=True)
        server.start()
        raw = bench.raw_client(server)
        raw.create_bucket(Bucket=BUCKET)
        (tmp / "var").mkdir()
        portal = Portal(tmp / "var", server, via_portal=False)
        portal.manage("migrate", "--verbosity", "0")
        portal.manage(
            "shell",
            "-c",
            "from django.contrib.auth.models import User; from sharing.models import BucketGrant;"
            f"u = User.objects.create_user({USER!r}, password={PASSWORD!r});"
            f"BucketGrant.objects.create(user=u, bucket={BUCKET!r}, role='read')",
        )
        portal.start()
        portal.log_in()

        keys = store(raw, "set/big-", BIG_FILES, big_bytes, os.urandom(big_bytes))
        keys += store(raw, "set/small/", small_files, SMALL_BYTES, os.urandom(SMALL_BYTES))
        small_set = store(raw, "small-set/", 10, MIB, os.urandom(MIB))
        total = sum(size for _, size in keys)
        print(f"Stored {len(keys)} files, {total / MIB:.0f} MiB, under set/", flush=True)

        portal_zip(portal, "small-set/")  # warm-up: imports, first-request allocations
        boto3_zip(raw, small_set, "small-set/")
        speeds: dict[str, list[float]] = {"portal": [], "boto3": []}
        actions = {
            "portal": lambda: portal_zip(portal, "set/"),
            "boto3": lambda: boto3_zip(raw, keys, "set/"),
        }
        for round_number in range(1, options.runs + 1):
            order = list(actions) if round_number % 2 else list(reversed(actions))
            for name in order:
                started = time.perf_counter()
                size = actions[name]()
                seconds = time.perf_counter() - started
                speeds[name].append(total / MIB / seconds)
                print(
                    f"  round {round_number} {name:7} {total / MIB / seconds:7.1f} MiB/s "
                    f"({size / MIB:.0f} MiB of ZIP)",
                    flush=True,
                )

        workers = portal.pids()[1:]
        portal_zip(portal, "small-set/")
        small_peak = max(peak_rss(pid) for pid in workers)
        portal_zip(portal, "set/")
        big_peak = max(peak_rss(pid) for pid in workers)

        medians = {name: statistics.median(values) for name, values in speeds.items()}
        ratio = medians["portal"] / medians["boto3"]
        print(f"\nZIP of {total / MIB:.0f} MiB ({len(keys)} files), median of {options.runs} runs:")
        for name, value in medians.items():
            print(f"  {name:7} {value:7.1f} MiB/s")
        print(f"  ratio portal / boto3: {ratio:.2f} (target >= {RATE_TARGET})")
        rss_ratio = big_peak / small_peak
        print(
            "Portal worker peak RSS (VmHWM, the busiest gunicorn worker): "
            f"{small_peak / MIB:.1f} MiB after a 10 MiB ZIP, {big_peak / MIB:.1f} MiB after the "
            f"{total / MIB:.0f} MiB one: ratio {rss_ratio:.2f} (target <= {RSS_TARGET})"
        )
    except BaseException:
        if portal and portal.log.exists():
            print(
                f"--- {portal.log.name} (last lines)\n"
                + "\n".join(portal.log.read_text().splitlines()[-80:])
            )
        raise
    finally:
        if portal:
            portal.stop()
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
