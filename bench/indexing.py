"""Benchmark: the search index's walk of a bucket against a bare boto3 ListObjectsV2 walk of it.

Run from the repository root: .venv/bin/python bench/indexing.py [--keys 30000] [--runs 5]
    [--database-url postgres://...]

Starts its own SeaweedFS under /tmp, fills a bucket with --keys one-byte objects in nested
folders (`dept-03/project-0042/2025/report-0001234.csv`), sets Django up against it (a fresh
SQLite database by default, or --database-url), then alternates:
  - **boto3**: a plain client's `list_objects_v2` paginator over the whole bucket, every key read;
  - **walk**: `search_index.bucket_index_walk` (the gateway's page by page listing, one bulk
    upsert per page of 1,000 rows, the removal of rows not seen, the state and audit rows).
The first walk fills an empty index; the ones after it find every key already there (the usual
case: most of a bucket does not change between walks), and are the ones compared.
Prints objects/s medians and the ratio walk / boto3 (target >= 0.5).
"""

from __future__ import annotations

import argparse
import statistics
import time

import _support as bench
from browse_100k import fill

TARGET = 0.5
EXTENSIONS = ["csv", "txt", "jpg", "xlsx", "pdf", "png"]


def keys(count: int) -> list[str]:
    return [
        f"dept-{n % 20:02d}/project-{(n // 20) % 100:04d}/{2019 + n % 7}/report-{n:07d}."
        f"{EXTENSIONS[n % len(EXTENSIONS)]}"
        for n in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=30_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with bench.embedded_server("indexing") as server:
        bench.setup_django(server, database_url=args.database_url)
        from django.db import connection

        from sharing.models import IndexedObject
        from sharing.services import search_index

        if args.database_url:
            IndexedObject.objects.all().delete()
        raw = bench.raw_client(server, pool=32)
        bucket = "bench-indexing"
        raw.create_bucket(Bucket=bucket)
        print(f"filling {args.keys:,} objects…", flush=True)
        print(f"filled in {fill(raw, bucket, keys(args.keys)):.0f} s", flush=True)

        def boto3_walk() -> int:
            seen = 0
            for page in raw.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for item in page.get("Contents", []):
                    seen += bool(item["Key"])
            return seen

        def walk() -> int:
            return search_index.bucket_index_walk(bucket=bucket) or 0

        first = bench.timed(walk)
        assert IndexedObject.objects.filter(bucket=bucket).count() == args.keys
        print(f"first walk (empty index, {connection.vendor}): {args.keys / first:,.0f} objects/s")
        boto3_runs, walk_runs = [], []
        for turn in range(args.runs):
            pair = [("boto3", boto3_walk), ("walk", walk)]
            for name, function in pair if turn % 2 == 0 else pair[::-1]:
                started = time.perf_counter()
                seen = function()
                elapsed = time.perf_counter() - started
                assert seen == args.keys, (name, seen)
                (boto3_runs if name == "boto3" else walk_runs).append(elapsed)
        bare = args.keys / statistics.median(boto3_runs)
        ours = args.keys / statistics.median(walk_runs)
        ratio = ours / bare
        print(f"\n{args.runs} runs each, alternating; {bench.load_average()}; {connection.vendor}")
        print(
            bench.table(
                ["walk of the bucket", "objects/s (median)", "runs (s)"],
                [
                    [
                        "boto3 ListObjectsV2",
                        f"{bare:,.0f}",
                        " ".join(f"{r:.2f}" for r in boto3_runs),
                    ],
                    ["search index walk", f"{ours:,.0f}", " ".join(f"{r:.2f}" for r in walk_runs)],
                ],
            )
        )
        print(
            f"ratio walk / boto3: {ratio:.2f}  {bench.verdict(ratio, TARGET, higher_is_better=True)}"
        )


if __name__ == "__main__":
    main()
