"""SQLite whose writers queue in the kernel instead of polling for the write lock.

Every request appends audit rows, so SQLite's single write lock is busy. SQLite's own busy handler
waits for it by sleeping 1, 2, 5, 10 ... 100 ms between tries: the CPU idles and a request keeps
waiting long after the lock is free (measured: a quarter of the CPU idle and p95 ~40 ms at 8
concurrent share-link downloads). Here a transaction first takes an exclusive flock on a file beside
the database, which the kernel hands to the next waiter the moment it is released, so BEGIN
IMMEDIATE finds SQLite's lock free. Threads and processes queue alike (one descriptor per
connection); a process that dies releases its flock with its descriptors. Statements outside
transactions still wait in SQLite's busy handler, bounded by the "timeout" option.
"""

import fcntl
import os

from django.db.backends.sqlite3 import base

QUEUE_SUFFIX = "-writers.lock"


class DatabaseWrapper(base.DatabaseWrapper):
    _queue_fd: int | None = None
    _queued = False

    def _queue(self) -> int | None:
        if self._queue_fd is None and not self.is_in_memory_db():
            path = f"{self.settings_dict['NAME']}{QUEUE_SUFFIX}"
            self._queue_fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self._queue_fd

    def _enter_queue(self) -> None:
        fd = self._queue()
        if fd is not None and not self._queued:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._queued = True

    def _leave_queue(self) -> None:
        if self._queued:
            self._queued = False
            fcntl.flock(self._queue_fd, fcntl.LOCK_UN)

    def _start_transaction_under_autocommit(self) -> None:
        self._enter_queue()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._leave_queue()
            raise

    def _commit(self) -> None:
        try:
            super()._commit()
        finally:
            self._leave_queue()

    def _rollback(self) -> None:
        try:
            super()._rollback()
        finally:
            self._leave_queue()

    def _close(self) -> None:
        try:
            super()._close()
        finally:
            self._leave_queue()
            if self._queue_fd is not None:
                os.close(self._queue_fd)
                self._queue_fd = None
