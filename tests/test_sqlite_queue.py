"""s3portal.sqlite: SQLite writers wait in a kernel queue, and leave it however their transaction ends."""

import fcntl
import os
import stat
import threading
import time

import pytest
from django.db.utils import ConnectionHandler

from s3portal.sqlite.base import QUEUE_SUFFIX

WAIT = 0.3  # long enough for a queued writer to have gone through if it were not queued


def open_database(path) -> object:
    handler = ConnectionHandler(
        {
            "default": {
                "ENGINE": "s3portal.sqlite",
                "NAME": str(path),
                "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
            }
        }
    )
    return handler["default"]


def begin(connection) -> None:
    """Start a transaction the way transaction.atomic() does on SQLite."""
    connection.ensure_connection()
    connection._start_transaction_under_autocommit()


def start_writer(path, entered: threading.Event, release: threading.Event) -> threading.Thread:
    """Begin a write transaction in another thread (its own connection), then wait to be released."""

    def write() -> None:
        connection = open_database(path)
        begin(connection)
        entered.set()
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO counter VALUES (1)")
        release.wait(5)
        connection.commit()
        connection.close()

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def queue_busy(path) -> bool:
    """Return whether some connection holds the writers' queue of the database at path."""
    fd = os.open(f"{path}{QUEUE_SUFFIX}", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing the descriptor drops a lock just taken
    return False


@pytest.fixture(autouse=True)
def own_databases(django_db_blocker):
    # These connections go to throw-away files of their own, not to the test database.
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "db.sqlite3"
    connection = open_database(path)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE counter (n INTEGER)")
    yield path, connection
    connection.close()


@pytest.mark.parametrize("ending", ["commit", "rollback", "close"])
def test_second_writer_waits_until_the_first_transaction_ends(database, ending):
    path, first = database
    begin(first)
    assert queue_busy(path)
    entered, release = threading.Event(), threading.Event()
    second = start_writer(path, entered, release)
    assert not entered.wait(WAIT)  # queued behind the first transaction
    getattr(first, ending)()
    assert entered.wait(5)
    assert queue_busy(
        path
    )  # now held by the second writer  # handed the queue as soon as the first one ended
    release.set()
    second.join(5)
    assert not second.is_alive()
    assert not queue_busy(path)
    with open_database(path).cursor() as cursor:
        cursor.execute("SELECT count(*) FROM counter")
        assert cursor.fetchone()[0] == 1


def test_the_queue_file_sits_beside_the_database_for_its_owner_only(database):
    path, connection = database
    begin(connection)
    connection.commit()
    queue = path.with_name(path.name + QUEUE_SUFFIX)
    assert queue.exists()
    assert stat.S_IMODE(queue.stat().st_mode) == 0o600


def test_a_failed_begin_leaves_the_queue(database, monkeypatch):
    path, connection = database
    from django.db.backends.sqlite3 import base

    def broken(self) -> None:
        raise RuntimeError("BEGIN failed")

    monkeypatch.setattr(base.DatabaseWrapper, "_start_transaction_under_autocommit", broken)
    with pytest.raises(RuntimeError):
        begin(connection)
    assert not queue_busy(path)
    monkeypatch.undo()
    entered, release = threading.Event(), threading.Event()
    started = time.monotonic()
    writer = start_writer(path, entered, release)
    assert entered.wait(5) and time.monotonic() - started < 5
    release.set()
    writer.join(5)


def test_in_memory_databases_need_no_queue(tmp_path):
    connection = open_database(":memory:")
    begin(connection)
    connection.commit()
    assert connection._queue_fd is None
    assert list(tmp_path.iterdir()) == []
    connection.close()
