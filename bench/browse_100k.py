"""Benchmark: the folder page at 100,000 keys against the same page at 100 keys.

Run from the repository root: .venv/bin/python bench/browse_100k.py [--runs N] [--folders]

Starts its own SeaweedFS under /tmp and fills buckets with 1-byte objects: 100 keys in data/,
200 keys in data/ (one full page), 100,000 keys flat in data/ (the worst case for a delimiter
listing) and, with --folders, 100,000 keys in 1000 folders of data/. Then times
GET /b/<bucket>/?prefix=data/ through django.test.Client as a logged-in superuser: the whole view
(permission check, audit rows, one ListObjectsV2 of up to 200 keys, template), on the first page,
the 51st and the last.
Target (issue 3): a page at 100,000 keys takes at most 1.5× the page at 100 keys. A page at
100,000 keys shows 200 rows, though, and rows cost time whatever the bucket holds, so the ratio to
the 200-key page (as many rows) is printed as well: that one measures the cost of the bucket's size.
"""

from __future__ import annotations

import argparse
import re
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import _support as bench

SMALL = 100
LARGE = 100_000
FOLDERS = 1000
PAGES_IN = 50  # the "deep" page is the 51st: keys 10,000-10,199
PAGE_SIZE = 200
TARGET = 1.5
FILL_WORKERS = 32
ROW = re.compile(rb'class="icon-(?:file|folder)"')


def fill(client: object, bucket: str, keys: list[str]) -> float:
    """Put a 1-byte object at every key from a thread pool; return the seconds it took."""

    def put(key: str) -> None:
        client.put_object(Bucket=bucket, Key=key, Body=b"x")

    started = time.perf_counter()
    pool = ThreadPoolExecutor(FILL_WORKERS)
    try:
        for _ in pool.map(put, keys):
            pass
    finally:
        # On Ctrl+C, drop the puts not yet started instead of waiting for all of them.
        pool.shutdown(cancel_futures=True)
    return time.perf_counter() - started


def token_after(bucket: str, prefix: str, pages: int) -> tuple[str, float]:
    """Follow `pages` next-page tokens, as a person clicking "Next page" would; return the token."""
    from sharing import s3

    token, started = "", time.perf_counter()
    for _ in range(pages):
        token = s3.list_page(bucket, prefix=prefix, token=token, size=PAGE_SIZE).next_token
        if not token:
            raise SystemExit(f"{bucket}/{prefix} has fewer than {pages + 1} pages")
    return token, time.perf_counter() - started


class Scenario:
    """One folder page: its URL, what it must show, and its timings."""

    def __init__(
        self, label: str, bucket: str, keys: int, *, prefix: str, token: str, rows: int, first: str
    ) -> None:
        self.label, self.bucket, self.keys = label, bucket, keys
        self.prefix, self.token, self.rows, self.first = prefix, token, rows, first
        query = {"prefix": prefix, **({"token": token} if token else {})}
        self.url = f"/b/{bucket}/?{urlencode(query)}"
        self.page_runs: list[float] = []
        self.list_runs: list[float] = []

    def get_page(self, http: object) -> float:
        """GET the page once, check it shows the right rows, and return the seconds it took."""
        started = time.perf_counter()
        response = http.get(self.url)
        elapsed = time.perf_counter() - started
        content = response.content
        shown = len(ROW.findall(content))
        if response.status_code != 200 or shown != self.rows or self.first.encode() not in content:
            raise SystemExit(
                f"{self.label}: status {response.status_code}, {shown} rows "
                f"(expected {self.rows}, starting with {self.first!r})"
            )
        return elapsed

    def list_only(self) -> float:
        """Time the bare ListObjectsV2 call the view makes (no audit, no template)."""
        from sharing import s3

        return bench.timed(
            lambda: s3.list_page(self.bucket, prefix=self.prefix, token=self.token, size=PAGE_SIZE)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="timed runs per page (default 9)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    parser.add_argument(
        "--folders", action="store_true", help="also time 100,000 keys in 1000 folders (+~6 min)"
    )
    args = parser.parse_args()
    script_started = time.perf_counter()

    with bench.embedded_server("browse") as server:
        bench.setup_django(server)
        from django.test import Client

        from sharing import services

        user, actor = bench.bench_actor()
        http = Client()
        http.force_login(user)
        layouts = {
            "small-100": [f"data/{i:06d}.txt" for i in range(SMALL)],
            "small-200": [f"data/{i:06d}.txt" for i in range(PAGE_SIZE)],
            "flat-100k": [f"data/{i:06d}.txt" for i in range(LARGE)],
        }
        if args.folders:
            per_folder = LARGE // FOLDERS
            layouts["folders-100k"] = [
                f"data/d{i // per_folder:04d}/f{i % per_folder:03d}.txt" for i in range(LARGE)
            ]
        small = Scenario("100 keys, data/ (the only page)", "small-100", SMALL,
                         prefix="data/", token="", rows=SMALL, first="000000.txt")  # fmt: skip

        client = bench.raw_client(server, pool=FILL_WORKERS)
        fill_rows = []
        for bucket, keys in layouts.items():
            services.bucket_create(actor=actor, name=bucket)
            seconds = fill(client, bucket, keys)
            fill_rows.append(
                [bucket, f"{len(keys):,}", bench.secs(seconds), f"{len(keys) / seconds:,.0f}"]
            )
            print(
                f"filled {bucket}: {len(keys):,} keys in {seconds:.1f} s ({bench.load_average()})"
            )
            if bucket == small.bucket:
                small.get_page(http)  # a broken page fails now, not after minutes of filling
        print()
        print(f"Fill ({FILL_WORKERS} threads of boto3 put_object, 1-byte bodies)")
        print(bench.table(["bucket", "keys", "fill time", "puts/s"], fill_rows))
        print()

        flat_token, flat_walk = token_after("flat-100k", "data/", PAGES_IN)
        last_token, last_walk = token_after("flat-100k", "data/", LARGE // PAGE_SIZE - 1)
        print(f"followed {PAGES_IN} next tokens in {flat_walk:.2f} s, "
              f"{LARGE // PAGE_SIZE - 1} (to the last page) in {last_walk:.2f} s")  # fmt: skip
        scenarios = [
            small,
            Scenario("200 keys, data/ (one full page)", "small-200", PAGE_SIZE,
                     prefix="data/", token="", rows=PAGE_SIZE, first="000000.txt"),
            Scenario("100k flat, data/ page 1", "flat-100k", LARGE,
                     prefix="data/", token="", rows=PAGE_SIZE, first="000000.txt"),
            Scenario(f"100k flat, data/ page {PAGES_IN + 1}", "flat-100k", LARGE,
                     prefix="data/", token=flat_token, rows=PAGE_SIZE,
                     first=f"{PAGES_IN * PAGE_SIZE:06d}.txt"),
            Scenario(f"100k flat, data/ page {LARGE // PAGE_SIZE} (last)", "flat-100k", LARGE,
                     prefix="data/", token=last_token, rows=PAGE_SIZE,
                     first=f"{LARGE - PAGE_SIZE:06d}.txt"),
        ]  # fmt: skip
        if args.folders:
            folder_pages = FOLDERS // PAGE_SIZE
            folder_token, _ = token_after("folders-100k", "data/", folder_pages - 1)
            scenarios += [
                Scenario("100k in 1000 folders, data/ page 1", "folders-100k", LARGE,
                         prefix="data/", token="", rows=PAGE_SIZE, first="d0000/"),
                Scenario(f"100k in 1000 folders, data/ page {folder_pages} (last)",
                         "folders-100k", LARGE, prefix="data/", token=folder_token,
                         rows=PAGE_SIZE, first=f"d{FOLDERS - PAGE_SIZE:04d}/"),
                Scenario("100k in 1000 folders, data/d0500/", "folders-100k", LARGE,
                         prefix="data/d0500/", token="", rows=LARGE // FOLDERS, first="f000.txt"),
            ]  # fmt: skip

        for _ in range(args.warmup):
            for scenario in scenarios:
                scenario.get_page(http)
                scenario.list_only()
        # Interleaved rounds: a burst of load from elsewhere on the machine hits every page alike.
        for _ in range(args.runs):
            for scenario in scenarios:
                scenario.page_runs.append(scenario.get_page(http))
                scenario.list_runs.append(scenario.list_only())

        # The target compares with the 100-key page, but a 100,000-key page shows 200 rows, not 100,
        # and rows cost time whatever the bucket holds: the small page with as many rows isolates
        # the cost of the bucket's size.
        target_base = bench.Stats(small.page_runs).median
        same_rows_base = {
            s.rows: bench.Stats(s.page_runs).median for s in scenarios if s.keys < LARGE
        }
        rows, worst, worst_same_rows = [], 0.0, 0.0
        for scenario in scenarios:
            page, listing = bench.Stats(scenario.page_runs), bench.Stats(scenario.list_runs)
            ratio = page.median / target_base
            same_rows = page.median / same_rows_base.get(scenario.rows, float("nan"))
            if scenario.keys == LARGE:
                worst, worst_same_rows = max(worst, ratio), max(worst_same_rows, same_rows)
            rows.append([
                scenario.label, str(scenario.rows), bench.ms(page.median), bench.ms(page.low),
                bench.ms(page.high), f"{page.spread:.0%}", bench.ms(listing.median),
                f"{ratio:.2f}×", f"{same_rows:.2f}×",
            ])  # fmt: skip
        print()
        print(
            f"Folder page GET through django.test.Client as a superuser "
            f"(median of {args.runs} runs after {args.warmup} warm-up rounds; {bench.load_average()})"
        )
        print(bench.table(
            ["page", "rows", "median", "min", "max", "spread", "ListObjectsV2 alone",
             "vs 100 keys", "vs small bucket, same rows"], rows,
        ))  # fmt: skip
        print()
        print(f"Worst page at 100,000 keys: {worst:.2f}× the page at 100 keys, "
              f"{bench.verdict(worst, TARGET)}")  # fmt: skip
        print(f"Same, against the small-bucket page with as many rows: {worst_same_rows:.2f}×, "
              f"{bench.verdict(worst_same_rows, TARGET)}")  # fmt: skip
        rss, peak = bench.rss_mib(bench.server_pid(server))
        print(f"SeaweedFS memory: {rss:.0f} MiB now, {peak:.0f} MiB peak")
    print(f"Total run time: {time.perf_counter() - script_started:.0f} s")


if __name__ == "__main__":
    main()
