"""Bench-only settings: the portal's own, with the URLconf that adds the bare redirect view.

BENCH_SQLITE=tuned also applies the SQLite options the benchmark recommends (writers take the lock
at BEGIN and wait for it, WAL so readers never block): without them, concurrent audit appends fail
with "database is locked" (a deferred transaction cannot upgrade its read lock while another
connection commits).
"""

import os

from s3portal.settings import *  # noqa: F403
from s3portal.settings import DATABASES

ROOT_URLCONF = "bench.urls_bare"

if os.environ.get("BENCH_SQLITE") == "tuned" and DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
