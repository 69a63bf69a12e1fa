"""Benchmark: the portal's copy of a 1 GiB object against boto3's managed copy with its defaults.

Run from the repository root: .venv/bin/python bench/copy_1gib.py [--runs N] [--no-candidates]

Starts its own SeaweedFS under /tmp, uploads 1 GiB of random bytes, then alternates
sharing.services.objects.object_copy (permission, audit rows, sharing.s3.copy) with a plain
boto3 client.copy(...) (default TransferConfig: 8 MiB parts, 10 threads), deleting the destination
between runs. Target (issue 3): the portal takes at most 1.1× boto3's time.

It also times object_copy with other multipart settings (the constants sharing.s3.objects.copy reads,
patched in this process only), so a change to copy() can be chosen by numbers. Every setting keeps
multipart copy (UploadPartCopy) for objects over 5 GiB, since its threshold is at most 5 GiB.
Last, it checks whether one CopyObject request answers before the whole copy is done: if not, the
portal's read timeout (S3_READ_TIMEOUT) bounds the size a single CopyObject can copy.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import _support as bench

SIZE = bench.GIB
WRITE_CHUNK = 64 * bench.MIB
SAMPLES = 8  # 1 MiB ranges compared between source and copy, the first and last included
TARGET = 1.1
SRC_BUCKET, DST_BUCKET, KEY = "copy-src", "copy-dst", "random-1gib.bin"
# (multipart threshold, part size) for object_copy; the first is what sharing/s3/objects.py has now.
CANDIDATES = [
    (5 * bench.GIB, 256 * bench.MIB),
    (8 * bench.MIB, 8 * bench.MIB),
    (64 * bench.MIB, 64 * bench.MIB),
    (128 * bench.MIB, 128 * bench.MIB),
    (256 * bench.MIB, 256 * bench.MIB),
]


def size_label(size: int) -> str:
    return f"{size // bench.GIB} GiB" if size % bench.GIB == 0 else f"{size // bench.MIB} MiB"


@dataclass
class Contender:
    label: str
    dst_key: str
    copy: Callable[[], object]
    runs: list[float] = field(default_factory=list)
    longest_request: float = 0.0


class CopyRequestTimer:
    """Track the longest CopyObject or UploadPartCopy call: it must end within the read timeout."""

    OPERATIONS = ("CopyObject", "UploadPartCopy")

    def __init__(self) -> None:
        self._local = threading.local()  # the transfer threads each make their own calls
        self._lock = threading.Lock()
        self._longest = 0.0

    def attach(self, client: object) -> None:
        for operation in self.OPERATIONS:
            client.meta.events.register(f"before-call.s3.{operation}", self._start)
            client.meta.events.register(f"after-call.s3.{operation}", self._stop)

    def take(self) -> float:
        """Return the longest call since the last take, and start over."""
        with self._lock:
            longest, self._longest = self._longest, 0.0
        return longest

    def _start(self, **_: object) -> None:
        self._local.started = time.perf_counter()

    def _stop(self, **_: object) -> None:
        elapsed = time.perf_counter() - self._local.started
        with self._lock:
            self._longest = max(self._longest, elapsed)


def make_source(client: object, folder: os.PathLike) -> tuple[str, float, float]:
    """Write SIZE random bytes to a file and upload it; return its sha256 and both durations."""
    path = os.path.join(folder, "random-1gib.bin")
    digest = hashlib.sha256()
    started = time.perf_counter()
    with open(path, "wb") as file:
        for _ in range(SIZE // WRITE_CHUNK):
            chunk = os.urandom(WRITE_CHUNK)
            digest.update(chunk)
            file.write(chunk)
    written = time.perf_counter() - started
    try:
        uploaded = bench.timed(lambda: client.upload_file(path, SRC_BUCKET, KEY))
    finally:
        os.unlink(path)  # only the object is needed from here on
    return digest.hexdigest(), written, uploaded


def verify_whole(client: object, key: str, expected_sha256: str) -> str:
    """Download a copy whole and compare its SHA-256 with the source file's; return its ETag."""
    response = client.get_object(Bucket=DST_BUCKET, Key=key)
    digest, size = hashlib.sha256(), 0
    for chunk in response["Body"].iter_chunks(8 * bench.MIB):
        digest.update(chunk)
        size += len(chunk)
    if size != SIZE or digest.hexdigest() != expected_sha256:
        raise SystemExit(f"{key}: {size} bytes, sha256 {digest.hexdigest()}: NOT the source")
    return response["ETag"].strip('"')


def verify_samples(client: object, key: str) -> str:
    """Compare the size and SAMPLES ranged GETs of a copy with the source's; return its ETag."""
    head = client.head_object(Bucket=DST_BUCKET, Key=key)
    if head["ContentLength"] != SIZE:
        raise SystemExit(f"{key}: {head['ContentLength']} bytes, not {SIZE}")
    starts = [0, SIZE - bench.MIB] + random.sample(range(1, SIZE // bench.MIB - 1), SAMPLES - 2)
    for start in starts:
        byte_range = f"bytes={start}-{start + bench.MIB - 1}"
        source = client.get_object(Bucket=SRC_BUCKET, Key=KEY, Range=byte_range)["Body"].read()
        copied = client.get_object(Bucket=DST_BUCKET, Key=key, Range=byte_range)["Body"].read()
        if source != copied or len(copied) != bench.MIB:
            raise SystemExit(f"{key}: {byte_range} differs from the source")
    return head["ETag"].strip('"')


def portal_copy(actor: object, dst_key: str, threshold: int, chunk: int) -> Callable[[], object]:
    """Return a call of the portal's copy service with copy()'s multipart constants set as given."""
    from sharing.s3 import objects as s3_objects
    from sharing.services.objects import object_copy

    def run() -> object:
        saved = s3_objects.MULTIPART_COPY_THRESHOLD, s3_objects.COPY_CHUNK
        s3_objects.MULTIPART_COPY_THRESHOLD, s3_objects.COPY_CHUNK = threshold, chunk
        try:
            return object_copy(
                actor=actor, bucket=SRC_BUCKET, key=KEY, dst_bucket=DST_BUCKET, dst_key=dst_key,
                overwrite=True,
            )  # fmt: skip
        finally:
            s3_objects.MULTIPART_COPY_THRESHOLD, s3_objects.COPY_CHUNK = saved

    return run


def single_copy_first_byte(server: object) -> str:
    """Return what a single CopyObject does to a client that waits at most 1 s for a byte."""
    from botocore.config import Config
    from botocore.exceptions import ReadTimeoutError

    impatient = bench.raw_client(
        server, config=Config(read_timeout=1, retries={"mode": "standard", "total_max_attempts": 1})
    )
    started = time.perf_counter()
    try:
        impatient.copy_object(
            CopySource={"Bucket": SRC_BUCKET, "Key": KEY}, Bucket=DST_BUCKET, Key="impatient.bin"
        )
    except ReadTimeoutError:
        return f"ReadTimeoutError after {time.perf_counter() - started:.1f} s"
    return f"answered in {time.perf_counter() - started:.1f} s"


def contenders_for(actor: object, client: object, *, candidates: bool) -> list[Contender]:
    """Return the portal as it is, boto3's managed copy, then the portal with each candidate."""
    from sharing import s3

    current = s3.objects.MULTIPART_COPY_THRESHOLD, s3.objects.COPY_CHUNK
    found = [
        Contender(
            f"portal object_copy as is ({size_label(current[0])} threshold, "
            f"{size_label(current[1])} parts)",
            "portal.bin",
            portal_copy(actor, "portal.bin", *current),
        ),
        Contender(
            "boto3 client.copy, default TransferConfig",
            "boto3.bin",
            lambda: client.copy({"Bucket": SRC_BUCKET, "Key": KEY}, DST_BUCKET, "boto3.bin"),
        ),
    ]
    for threshold, chunk in CANDIDATES if candidates else []:
        if (threshold, chunk) != current:
            key = f"candidate-{threshold}-{chunk}.bin"
            found.append(Contender(
                f"object_copy, {size_label(threshold)} threshold, {size_label(chunk)} parts",
                key, portal_copy(actor, key, threshold, chunk),
            ))  # fmt: skip
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each (default 5)")
    parser.add_argument(
        "--no-candidates", action="store_true", help="time only the portal as it is and boto3"
    )
    args = parser.parse_args()
    script_started = time.perf_counter()

    with bench.embedded_server("copy") as server:
        bench.setup_django(server)
        from django.conf import settings

        from sharing import s3, services
        from sharing.models import AuditEvent, Outcome, Phase
        from sharing.s3 import objects as s3_objects

        user, actor = bench.bench_actor()
        for bucket in (SRC_BUCKET, DST_BUCKET):
            services.bucket_create(actor=actor, name=bucket)
        client = bench.raw_client(server)
        sha256, written, uploaded = make_source(client, bench.work_dir(server))
        print(f"wrote 1 GiB of os.urandom to a file in {written:.1f} s, uploaded it with boto3 "
              f"upload_file in {uploaded:.1f} s ({SIZE / bench.MIB / uploaded:.0f} MiB/s)")  # fmt: skip
        contenders = contenders_for(actor, client, candidates=not args.no_candidates)
        timer = CopyRequestTimer()
        timer.attach(client)
        timer.attach(s3.client())  # the portal's own client, the one sharing.s3.copy uses

        # Warm-up: one copy of each, checked (a fast copy of the wrong bytes is no copy).
        print()
        for number, contender in enumerate(contenders):
            seconds = bench.timed(contender.copy)
            started = time.perf_counter()
            if number == 0:
                etag = verify_whole(client, contender.dst_key, sha256)
                how = "whole copy downloaded, sha256 equal to the source file's"
            else:
                etag = verify_samples(client, contender.dst_key)
                how = f"size and {SAMPLES} ranges of 1 MiB equal to the source's"
            checked = time.perf_counter() - started
            client.delete_object(Bucket=DST_BUCKET, Key=contender.dst_key)
            print(f"warm-up {seconds:5.2f} s: {contender.label}\n"
                  f"    {how} ({checked:.1f} s); ETag {etag}")  # fmt: skip
        # Rounds rotate the order so no contender always follows the same one (deletes, vacuum).
        for round_number in range(args.runs):
            shift = round_number % len(contenders)
            started = time.perf_counter()
            for contender in contenders[shift:] + contenders[:shift]:
                timer.take()
                contender.runs.append(bench.timed(contender.copy))
                contender.longest_request = max(contender.longest_request, timer.take())
                client.delete_object(Bucket=DST_BUCKET, Key=contender.dst_key)
            print(f"round {round_number + 1}/{args.runs}: {time.perf_counter() - started:.0f} s "
                  f"({bench.load_average()})")  # fmt: skip

        boto3_median = bench.Stats(contenders[1].runs).median
        rows = []
        for contender in contenders:
            stats = bench.Stats(contender.runs)
            rows.append([
                contender.label, bench.secs(stats.median), bench.secs(stats.low),
                bench.secs(stats.high), f"{stats.spread:.0%}",
                f"{SIZE / bench.MIB / stats.median:.0f} MiB/s", f"{stats.median / boto3_median:.2f}×",
                bench.secs(contender.longest_request),
            ])  # fmt: skip
        print()
        print(f"Copy of 1 GiB, {DST_BUCKET} emptied between runs "
              f"(median of {args.runs} runs after a warm-up; {bench.load_average()})")  # fmt: skip
        print(bench.table(
            ["copy", "median", "min", "max", "spread", "rate", "vs boto3", "longest request"], rows
        ))  # fmt: skip
        print(
            f"(longest request: the slowest single CopyObject/UploadPartCopy call of all runs; "
            f"the portal gives up on a call after S3_READ_TIMEOUT = {settings.S3_READ_TIMEOUT} s)"
        )
        portal = bench.Stats(contenders[0].runs)
        ratio = portal.median / boto3_median
        print()
        print(f"Portal as is: {ratio:.2f}× boto3's managed copy, {bench.verdict(ratio, TARGET)}")
        outcomes = AuditEvent.objects.filter(action="object.copy", phase=Phase.OUTCOME)
        print(f"object.copy audit outcome rows: {outcomes.count()}, not successful: "
              f"{outcomes.exclude(outcome=Outcome.SUCCESS).count()}")  # fmt: skip

        # Last, as the abandoned copy may go on inside the server.
        answer = single_copy_first_byte(server)
        print(f"One CopyObject of 1 GiB with a 1 s read timeout: {answer}.")
        if s3_objects.MULTIPART_COPY_THRESHOLD > SIZE:
            rate = SIZE / portal.high
            print(f"So one CopyObject must finish within S3_READ_TIMEOUT; at the portal's slowest "
                  f"rate in this run ({rate / bench.MIB:.0f} MiB/s) that is "
                  f"{rate * settings.S3_READ_TIMEOUT / bench.GIB:.1f} GiB at most.")  # fmt: skip
        rss, peak = bench.rss_mib(bench.server_pid(server))
        print(f"SeaweedFS memory: {rss:.0f} MiB now, {peak:.0f} MiB peak")
    print(f"Total run time: {time.perf_counter() - script_started:.0f} s")


if __name__ == "__main__":
    main()
