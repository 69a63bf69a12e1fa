"""Queue a walk of every bucket whose search index is older than --older-than: once, or with --every."""

import datetime
import logging
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection

from sharing import s3
from sharing.services import search_index

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Queue an index walk of each bucket whose search index is older than --older-than."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--every",
            type=float,
            default=0,
            help="Keep checking, this many seconds apart, until stopped (default: once).",
        )
        parser.add_argument(
            "--older-than",
            type=float,
            default=3600,
            help="Walk buckets whose last walk finished longer ago than this, in seconds.",
        )

    def handle(self, *args, every: float, older_than: float, **options) -> None:
        if every < 0 or older_than < 0:
            raise CommandError("--every and --older-than take a number of seconds, 0 or more.")
        age = datetime.timedelta(seconds=older_than)
        if not every:
            try:
                queued = search_index.bucket_indexes_refresh(older_than=age)
            except s3.S3Error as error:
                raise CommandError(error.message) from error
            self.stdout.write(
                f"{len(queued)} index walks queued{': ' if queued else '.'}" + ", ".join(queued)
            )
            return
        try:
            while True:
                try:
                    search_index.bucket_indexes_refresh(older_than=age)
                except s3.S3Error as error:  # the storage down: the audit row says so; next round
                    logger.warning("search_reindex: %s", error.message)
                except DatabaseError:  # the database restarting: try again next round
                    logger.exception("Queueing index walks failed; trying again.")
                    connection.close()
                time.sleep(every)
        except KeyboardInterrupt:
            pass
