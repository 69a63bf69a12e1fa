"""Queue again the folder jobs whose worker was killed mid-way: once, or with --every."""

import logging
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection
from django.utils.translation import ngettext

from sharing.services import folder_jobs

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Resume the folder copies, moves and deletes that stopped giving signs of life."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--every",
            type=float,
            default=0,
            help="Keep looking, this many seconds apart, until stopped (default: once).",
        )

    def handle(self, *args, every: float, **options) -> None:
        if every < 0:
            raise CommandError("--every takes a number of seconds, 0 or more.")
        if not every:
            count = folder_jobs.folder_jobs_resume_interrupted()
            self.stdout.write(ngettext("%d job resumed.", "%d jobs resumed.", count) % count)
            return
        try:
            while True:
                try:
                    folder_jobs.folder_jobs_resume_interrupted()
                except DatabaseError:  # the database restarting: try again next round
                    logger.exception("Resuming folder jobs failed; trying again.")
                    connection.close()
                time.sleep(every)
        except KeyboardInterrupt:
            pass
