"""The figures of a load run: the portal's memory and CPU, answer times, errors the portal logged.

Memory and CPU are read from /proc (Linux) for gunicorn's master and its workers.
"""

from __future__ import annotations

import math
import os
import re
import threading
from pathlib import Path
from typing import Any

# What a portal process writes when something went wrong (gunicorn and Django's loggers).
LOG_LINE = re.compile(r"^\[?\d{4}-\d\d-\d\d")  # where a logged message starts (gunicorn, Django)
SERVER_ERROR = re.compile(r"\[CRITICAL\]|\[ERROR\]|\[WARNING\]| ERROR | CRITICAL ")


def portal_pids(master: int) -> list[int]:
    """Return gunicorn's master and worker pids."""
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except OSError:
        return []
    return [master, *map(int, children)]


def portal_rss(master: int) -> float:
    """Return the summed resident memory of gunicorn's master and workers, in MiB."""
    total = 0
    for pid in portal_pids(master):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        found = re.search(r"VmRSS:\s+(\d+) kB", status)
        total += int(found[1]) if found else 0
    return total / 1024


def portal_cpu(master: int) -> float:
    """Return the CPU seconds gunicorn's master and workers have used so far."""
    ticks = 0
    for pid in portal_pids(master):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime and stime
    return ticks / os.sysconf("SC_CLK_TCK")


class PeakRss:
    """Sample the portal's RSS every half second while the load runs."""

    def __init__(self, master: int) -> None:
        self.master, self.peak = master, portal_rss(master)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            self.peak = max(self.peak, portal_rss(self.master))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def percentile(ordered: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of sorted values."""
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)] if ordered else 0.0


def print_table(table: list[list[str]], *, total: bool = False) -> None:
    """Print rows under a header, the first column to the left; a rule above a total row."""
    widths = [max(len(line[column]) for line in table) for column in range(len(table[0]))]
    for index, line in enumerate(table):
        if total and index == len(table) - 1:
            print("  ".join("-" * width for width in widths))
        first, *rest = line
        cells = [cell.rjust(width) for cell, width in zip(rest, widths[1:], strict=True)]
        print("  ".join([first.ljust(widths[0]), *cells]))


def report_requests(results: dict[str, Any]) -> tuple[int, float]:
    """Print a line per request kind; return how many requests failed and the requests/s."""
    seconds = results["seconds"] or 1.0
    table = [["kind", "requests", "errors", "p50 ms", "p95 ms", "p99 ms", "req/s"]]
    every, failed = [], 0
    for name, kind in sorted(results["kinds"].items()):
        times = sorted(kind["times"])
        errors = sum(kind["failures"].values())
        every += times
        failed += errors
        cells = [f"{percentile(times, f):.0f}" for f in (0.5, 0.95, 0.99)]
        table.append([name, str(len(times)), str(errors), *cells, f"{len(times) / seconds:.2f}"])
    every.sort()
    cells = [f"{percentile(every, f):.0f}" for f in (0.5, 0.95, 0.99)]
    table.append(["all", str(len(every)), str(failed), *cells, f"{len(every) / seconds:.1f}"])
    print_table(table, total=True)
    for name, kind in sorted(results["kinds"].items()):
        for message, count in list(kind["failures"].items())[:5]:
            print(f"FAILED {count}x {name}: {message}")
    for exception in results["exceptions"][:5]:
        print(f"EXCEPTION {exception['count']}x in locust: {exception['message'][:300]}")
        print(exception["traceback"][-1500:])
    failed += sum(exception["count"] for exception in results["exceptions"])
    return failed, len(every) / seconds


def server_errors(*logs: Path) -> list[str]:
    """Return each error a portal process logged or printed, with its traceback."""
    found: list[list[str]] = []
    for log in logs:
        inside = False  # in the lines that follow an error (its traceback)
        for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
            starts = bool(LOG_LINE.match(line))
            if (starts and SERVER_ERROR.search(line)) or (
                not inside and line.startswith("Traceback")
            ):
                found.append([line])
                inside = True
            elif starts:
                inside = False
            elif inside and len(found[-1]) < 60:
                found[-1].append(line)
    return ["\n".join(lines) for lines in found]
