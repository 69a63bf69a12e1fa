"""`make run`: migrate, start the embedded S3 server if configured, create the first admin, serve.

Beside the web server run the task worker (`manage.py db_worker`), the audit sealer
(`manage.py audit_seal --every 2`), the link reminders (`manage.py links_remind --every 300`),
the file request reports (`manage.py file_requests_report --every 60`), the resumer of
interrupted folder jobs (`manage.py folder_jobs_resume --every 30`) and the search index's
schedule (`manage.py search_reindex --every 300`). While it serves,
var/runtime.json records its ports, so that commands run from a plain shell reach the same servers
(settings.py reads it when PORT or S3_PORT is not in the environment)."""

import json
import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from sharing import services
from sharing.embedded import EmbeddedS3, EmbeddedS3Error

# S3 calls wait on the network: threads stuck on a stalled storage must not be every thread of a
# worker before the circuit breaker opens, so that pages needing only the database still answer.
# A streamed ZIP holds one thread for its whole download, but that thread waits on sockets (the
# browser's full send buffer, S3's next chunk), releasing the GIL: gthread suffices, and 4 slow
# ZIPs at once leave pages answering well within 1 s (tests/integration/test_archives_embedded.py).
GUNICORN_THREADS = 16
# Requests still running at Ctrl-C get this long to finish (gunicorn's default, 30 s, felt hung).
GUNICORN_GRACEFUL_TIMEOUT = 3
GUNICORN_STOP_TIMEOUT = GUNICORN_GRACEFUL_TIMEOUT + 5
SEAL_EVERY_SECONDS = 2
REMIND_EVERY_SECONDS = 300  # link reminders are due a day ahead: minutes late is on time
REPORT_EVERY_SECONDS = 60  # file request visits are reported after minutes of quiet
RESUME_EVERY_SECONDS = 30  # folder jobs whose worker was killed go on (folder_jobs.py)
# Every 5 minutes, queue a walk of each bucket whose search index is over an hour old.
REINDEX_EVERY_SECONDS = 300
PERIODIC_COMMANDS = (
    ("audit_seal", SEAL_EVERY_SECONDS),
    ("links_remind", REMIND_EVERY_SECONDS),
    ("file_requests_report", REPORT_EVERY_SECONDS),
    ("folder_jobs_resume", RESUME_EVERY_SECONDS),
    ("search_reindex", REINDEX_EVERY_SECONDS),
)

DATABASE_TASKS_BACKEND = "django_tasks_db.DatabaseBackend"
# The worker of background tasks (django-tasks-db). A second signal stops a running task at once
# (the first asks it to finish): Ctrl-C reaches the worker and then stop_children's SIGTERM, and
# the portal's own tasks resume what was cut short (sharing/tasks.py).
TASK_WORKER_COMMAND = ["db_worker", "--no-reload", "--interval", "1", "--no-startup-delay"]


def gunicorn_command(*, port: int, workers: int) -> list[str]:
    """Return the argv of the web server `make run` starts (the tests start the same one)."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "s3portal.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(GUNICORN_THREADS),
        "--worker-class",
        "gthread",
        "--graceful-timeout",
        str(GUNICORN_GRACEFUL_TIMEOUT),
        "--access-logfile",
        "-",
        # Share tokens and secret query values never reach the access or error log.
        "--logger-class",
        "sharing.logs.GunicornLogger",
        "--no-control-socket",
    ]


def _runtime_record() -> None:
    ports = {"pid": os.getpid(), "port": settings.PORT}
    if settings.S3_EMBEDDED:
        ports["s3_port"] = settings.S3_PORT
    path = settings.RUNTIME_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(ports) + "\n")
    partial.replace(path)  # whole or not at all: settings.py may read it at any moment


def _runtime_forget() -> None:
    # Only our own record: another runportal on this VAR_DIR (another PORT) may have replaced it.
    path = settings.RUNTIME_FILE
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def stop_children(processes: list[subprocess.Popen]) -> None:
    """SIGTERM every child at once, then wait for all of them together: one slow child does not
    delay the others' stop, and any still running after GUNICORN_STOP_TIMEOUT is killed."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        process.terminate()
    deadline = time.monotonic() + GUNICORN_STOP_TIMEOUT
    for process in running:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Serve the portal on 127.0.0.1:$PORT with everything it needs, until Ctrl-C."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--workers", type=int, default=2)

    def handle(self, *args, workers: int, **options) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        signal.signal(signal.SIGTERM, _raise_interrupt)
        # Ctrl-C stops it even when started with SIGINT ignored (a background job of a script).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        storage = (
            EmbeddedS3(settings.S3_EMBEDDED_DIR, s3_port=settings.S3_PORT)
            if settings.S3_EMBEDDED
            else None
        )
        web = None
        periodic: list[subprocess.Popen] = []
        try:
            if storage:
                self.stdout.write(f"Starting the embedded S3 server on {storage.endpoint_url} …")
                storage.start()
            else:
                self.stdout.write(f"Using the S3 endpoint {settings.S3_ENDPOINT_URL or 'of AWS'}.")
            # Once the storage is ours (a second `make run` on this var/ stops above, leaving
            # the first one's record alone), and before the children that read it start.
            _runtime_record()
            self._say_how_to_log_in()
            # The periodic commands beside the web server: the sealer, reminders, reports.
            periodic = [
                subprocess.Popen(  # noqa: S603 (our own interpreter and fixed arguments)
                    [sys.executable, str(settings.BASE_DIR / "manage.py"), *command]
                )
                for command in self._background_commands()
            ]
            web = subprocess.Popen(  # noqa: S603 (our own interpreter and fixed arguments)
                gunicorn_command(port=settings.PORT, workers=workers),
                # Out of the terminal's process group: Ctrl-C reaches this command alone, which
                # stops gunicorn gracefully (SIGTERM). A SIGINT to the whole group made gunicorn
                # quit its workers at once, and a worker holding a kept-alive browser connection
                # then outlived the graceful timeout and was killed ("was sent SIGKILL!").
                process_group=0,
            )
            web.wait()
        except EmbeddedS3Error as error:
            raise CommandError(f"The embedded S3 server did not start: {error}") from error
        except KeyboardInterrupt:
            self.stdout.write("\nStopping …")
        finally:
            stopping = time.monotonic()
            stop_children([process for process in (web, *periodic) if process])
            children_stopped = time.monotonic()
            if storage:
                storage.stop()
            _runtime_forget()
        self.stdout.write(
            f"Stopped in {time.monotonic() - stopping:.1f} s "
            f"(web server and commands {children_stopped - stopping:.1f} s)."
        )

    def _background_commands(self) -> list[list[str]]:
        """The periodic commands, and the task worker when tasks are rows in this database."""
        commands = [[name, "--every", str(every)] for name, every in PERIODIC_COMMANDS]
        if settings.TASKS_BACKEND == DATABASE_TASKS_BACKEND:
            commands.append(TASK_WORKER_COMMAND)
        else:
            self.stdout.write(
                f"Tasks go to {settings.TASKS_BACKEND}: run its worker (README, Background work)."
            )
        return commands

    def _say_how_to_log_in(self) -> None:
        password_file = settings.VAR_DIR / "first-admin-password.txt"
        password = services.first_admin_create()
        if password:
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
        url = f"http://127.0.0.1:{settings.PORT}/"
        self.stdout.write(self.style.SUCCESS(f"\nS3 Portal is starting on {url}"))
        if password:
            self.stdout.write(f"Log in as  admin  with password  {password}")
            self.stdout.write(f"(kept in {password_file}; change it at {url}account/password/)\n")
        elif password_file.exists():
            self.stdout.write(f"Log in as  admin  with the password in {password_file}\n")
        else:
            self.stdout.write("Log in with your account; `manage.py createsuperuser` adds one.\n")
