"""`make load` in small: 20 seconds of 10 people, failing on any error or inconsistency (not on times).

The driver (load/run.py) starts its own embedded S3, gunicorn and sealer, and creates and drops its
own PostgreSQL database (s3portal_load_<pid>) on 127.0.0.1:5432, whatever database the suite
itself runs on; so the test runs once per `make test`, in the SQLite pass.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
POSTGRES = ("127.0.0.1", 5432)
TIMEOUT = 150  # seconds; it takes about 50


def _postgres_answers() -> bool:
    try:
        socket.create_connection(POSTGRES, timeout=2).close()
    except OSError:
        return False
    return True


@pytest.mark.skipif(
    os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="the load smoke test makes its own PostgreSQL database: it runs in the SQLite pass",
)
def test_ten_people_for_twenty_seconds_meet_no_error_and_leave_everything_consistent():
    if not _postgres_answers():
        pytest.skip("the load smoke test needs PostgreSQL: nothing answers on 127.0.0.1:5432")
    command = [sys.executable, str(ROOT / "load" / "run.py"), "--seconds", "20", "--users", "10"]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.terminate()  # the driver stops what it started and drops its database
        try:
            output, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        pytest.fail(f"the load did not end within {TIMEOUT} s:\n{output[-6000:]}")
    assert process.returncode == 0, output[-10000:]
    assert "OK: no errors, everything consistent" in output
