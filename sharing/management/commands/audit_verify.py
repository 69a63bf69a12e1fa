"""Check the audit trail's hash chain; exit 1 when a row was changed or deleted."""

from django.core.management.base import BaseCommand, CommandError

from sharing import audit


class Command(BaseCommand):
    help = "Verify that no audit row was changed or deleted."

    def handle(self, *args, **options) -> None:
        problems = audit.verify()
        for problem in problems:
            self.stderr.write(problem)
        if problems:
            raise CommandError(f"The audit trail was tampered with: {len(problems)} problems.")
        self.stdout.write(self.style.SUCCESS("The audit trail is intact."))
