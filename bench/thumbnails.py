"""Benchmark: what thumbnails cost the folder page, and how long the worker takes to make them.

Run from the repository root: .venv/bin/python bench/thumbnails.py [--runs N]

Starts its own SeaweedFS under /tmp with a folder of 200 text files and a folder of 200 PNG
pictures (1200×800). Times GET /b/<bucket>/?prefix=... through django.test.Client as a logged-in
superuser: the text folder (no thumbnails), the picture folder's first view (it asks for 200
thumbnails: 200 rows and 10 queued tasks, nothing made while the page waits), and its later views
(one lookup of the page's rows) before and after the thumbnails are made. Then runs the tasks as
`db_worker` does and prints the time per thumbnail.
Target: a later view of the picture folder takes at most 1.5× the text folder.
"""

from __future__ import annotations

import argparse
import io
import time

import _support as bench

FILES = 200
TARGET = 1.5


def picture() -> bytes:
    from PIL import Image

    output = io.BytesIO()
    Image.new("RGB", (1200, 800), (200, 90, 30)).save(output, "PNG")
    return output.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with bench.embedded_server("thumbnails") as server:
        bench.setup_django(server)
        from django.core.management import call_command
        from django.test import Client

        from sharing.models import Thumbnail, ThumbnailState

        raw = bench.raw_client(server)
        raw.create_bucket(Bucket="bench")
        body = picture()
        for number in range(FILES):
            raw.put_object(Bucket="bench", Key=f"text/{number:03}.txt", Body=b"x")
            raw.put_object(Bucket="bench", Key=f"pictures/{number:03}.png", Body=body)
        user, _ = bench.bench_actor()
        http = Client()
        http.force_login(user)

        def page(prefix: str) -> None:
            response = http.get("/b/bench/", {"prefix": prefix})
            assert response.status_code == 200, response.status_code

        page("text/")  # warm up
        first = bench.timed(lambda: page("pictures/"))
        text = bench.Stats([bench.timed(lambda: page("text/")) for _ in range(args.runs)])
        pending = bench.Stats([bench.timed(lambda: page("pictures/")) for _ in range(args.runs)])
        started = time.perf_counter()
        call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)
        making = time.perf_counter() - started
        made = Thumbnail.objects.filter(state=ThumbnailState.READY).count()
        ready = bench.Stats([bench.timed(lambda: page("pictures/")) for _ in range(args.runs)])

        print(f"{FILES} files a folder, median of {args.runs} runs, {bench.load_average()}")
        rows = [
            ["text folder (no thumbnails)", bench.ms(text.median), "1.00×"],
            ["picture folder, first view (asks)", bench.ms(first), f"{first / text.median:.2f}×"],
            [
                "picture folder, thumbnails pending",
                bench.ms(pending.median),
                f"{pending.median / text.median:.2f}×",
            ],
            [
                "picture folder, thumbnails ready",
                bench.ms(ready.median),
                f"{ready.median / text.median:.2f}×",
            ],
        ]
        print(bench.table(["page", "time", "vs text"], rows))
        print(
            f"worker: {made} of {FILES} thumbnails made in {bench.secs(making)} "
            f"({bench.ms(making / max(made, 1))} each)"
        )
        print(f"later view: {bench.verdict(ready.median / text.median, TARGET)}")


if __name__ == "__main__":
    main()
