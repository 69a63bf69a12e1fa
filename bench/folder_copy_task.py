"""Benchmark: a folder copy of 10,000 small objects as a task against boto3 copying them with 10 threads.

Run from the repository root: .venv/bin/python bench/folder_copy_task.py [--runs N] [--objects N]
    [--database-url URL] [--no-boto3]

Starts its own SeaweedFS under /tmp, puts N 1-byte objects (default 10,000) in src/data/, and
starts the real task worker (`manage.py db_worker`, as `make run` does) against a fresh database.
Then alternates, side by side:
- the portal: POST the folder copy form (permissions, the clash check, the job row, the task
  queued), and wait until the worker has finished the job (one audit pair per object, the counts
  recorded per page); timed from the request to the job's `done`;
- boto3: list the folder, then copy_object every key from a pool of 10 threads.
Each run copies to a fresh destination folder. Target (issue 13): the portal's speed is at least
0.7× boto3's (boto3's time / the portal's time ≥ 0.7). `--objects 100000 --runs 1 --no-boto3`
shows that a folder of 100,000 objects completes, and how long it takes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import _support as bench

TARGET = 0.7
THREADS = 10
FILL_WORKERS = 32
SRC, DST, PREFIX = "src", "dst", "data/"
WAIT_SECONDS = 3600


def fill(client: object, count: int) -> float:
    """Put `count` 1-byte objects under PREFIX from a thread pool; return the seconds it took."""
    keys = [f"{PREFIX}d{index // 1000:03}/f{index:06}.txt" for index in range(count)]
    started = time.perf_counter()
    with ThreadPoolExecutor(FILL_WORKERS) as pool:
        for _ in pool.map(lambda key: client.put_object(Bucket=SRC, Key=key, Body=b"x"), keys):
            pass
    return time.perf_counter() - started


def boto3_copy(client: object, dst_prefix: str) -> int:
    """Copy the folder as a script would: list it, then copy_object from 10 threads."""
    keys = [
        item["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=SRC, Prefix=PREFIX)
        for item in page.get("Contents", [])
    ]

    def copy(key: str) -> None:
        client.copy_object(
            CopySource={"Bucket": SRC, "Key": key}, Bucket=DST, Key=dst_prefix + key[len(PREFIX) :]
        )

    with ThreadPoolExecutor(THREADS) as pool:
        for _ in pool.map(copy, keys):
            pass
    return len(keys)


def portal_copy(http: object, dst_prefix: str) -> tuple[int, int]:
    """POST the folder copy form, then wait for the worker to finish the job; return its counts."""
    from sharing.models import FolderJob, JobState

    response = http.post(
        f"/b/{SRC}/transfer/?prefix={PREFIX}",
        {"dst_bucket": DST, "dst_key": dst_prefix, "mode": "copy"},
    )
    if response.status_code != 302:
        raise SystemExit(f"the copy form answered {response.status_code}")
    job_id = response.url.rstrip("/").rsplit("/", 1)[-1]
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        job = FolderJob.objects.get(pk=job_id)
        if job.state == JobState.DONE:
            return job.done, job.failed
        if job.state == JobState.STOPPED:
            raise SystemExit(f"the job stopped: {job.message}")
        time.sleep(0.05)
    raise SystemExit("the job did not finish in time")


def count_copies(client: object, dst_prefix: str) -> int:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=DST, Prefix=dst_prefix)
    return sum(len(page.get("Contents", [])) for page in pages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each (default 3)")
    parser.add_argument("--objects", type=int, default=10_000, help="objects in the folder")
    parser.add_argument("--database-url", default="", help="default: SQLite in the temp folder")
    parser.add_argument("--no-boto3", action="store_true", help="time the portal only")
    args = parser.parse_args()
    with bench.embedded_server("folder-copy") as server:
        bench.setup_django(server, database_url=args.database_url)
        from django.test import Client

        user, _ = bench.bench_actor()
        client = bench.raw_client(server, pool=FILL_WORKERS)
        client.create_bucket(Bucket=SRC)
        client.create_bucket(Bucket=DST)
        print(f"{args.objects} objects put in {bench.secs(fill(client, args.objects))}")
        worker = subprocess.Popen(  # noqa: S603 (our own interpreter and fixed arguments)
            [sys.executable, str(bench.ROOT / "manage.py"), "db_worker", "--no-reload",
             "--interval", "0.1", "--no-startup-delay"],
            cwd=bench.ROOT,
        )  # fmt: skip
        try:
            http = Client()
            http.force_login(user)
            portal_runs, boto3_runs = [], []
            for run in range(args.runs):
                started = time.perf_counter()
                done, failed = portal_copy(http, f"portal-{run}/")
                portal_runs.append(time.perf_counter() - started)
                copied = count_copies(client, f"portal-{run}/")
                if (done, failed, copied) != (args.objects, 0, args.objects):
                    raise SystemExit(f"portal: {done} done, {failed} failed, {copied} copies")
                print(f"run {run + 1}: portal {bench.secs(portal_runs[-1])}", end="")
                if not args.no_boto3:
                    boto3_runs.append(
                        bench.timed(lambda run=run: boto3_copy(client, f"boto3-{run}/"))
                    )
                    if count_copies(client, f"boto3-{run}/") != args.objects:
                        raise SystemExit("boto3 did not copy every object")
                    print(f", boto3 {bench.secs(boto3_runs[-1])}", end="")
                print()
        finally:
            bench.stop_process(worker)
        portal = bench.Stats(portal_runs)
        rows = [["portal task (request → job done)", bench.secs(portal.median),
                 bench.secs(portal.low), bench.secs(portal.high),
                 f"{args.objects / portal.median:.0f}/s"]]  # fmt: skip
        if boto3_runs:
            boto3 = bench.Stats(boto3_runs)
            rows.append(["boto3 copy_object, 10 threads", bench.secs(boto3.median),
                         bench.secs(boto3.low), bench.secs(boto3.high),
                         f"{args.objects / boto3.median:.0f}/s"])  # fmt: skip
        print()
        print(f"{args.objects} objects, {args.runs} runs each, {bench.load_average()}")
        print(bench.table(["", "median", "min", "max", "objects"], rows))
        if boto3_runs:
            ratio = boto3.median / portal.median
            print(
                f"\nspeed ratio portal/boto3: {ratio:.2f}× {bench.verdict(ratio, TARGET, higher_is_better=True)}"
            )


if __name__ == "__main__":
    main()
