"""`python manage.py worker`: the Celery worker that runs background jobs (recording imports and exports).

Needs a broker (CELERY_BROKER_URL or REDIS_URL); without one, jobs run eagerly in the process that starts
them and no worker is needed. Extra Celery worker options can follow ``--``.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Run a Celery worker for the simulator's background jobs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--concurrency", type=int, default=2, help="Jobs run at once (processes).")
        parser.add_argument("--loglevel", default="INFO")
        parser.add_argument("--queues", default="", help="Comma-separated queues (default: the task queue).")
        parser.add_argument("--hostname", default="", help="The worker's node name (default: celery@host).")
        parser.add_argument("extra", nargs="*", help="More `celery worker` options, after --.")

    def handle(self, *args: object, **options: object) -> None:
        if settings.CELERY_TASK_ALWAYS_EAGER:
            raise CommandError("No broker configured: set CELERY_BROKER_URL or REDIS_URL. Without one, jobs run "
                               "in the process that starts them and no worker is needed.")
        from simulator_project.celery import app

        argv = ["worker", f"--loglevel={options['loglevel']}", f"--concurrency={options['concurrency']}"]
        if options["queues"]:
            argv.append(f"--queues={options['queues']}")
        if options["hostname"]:
            argv.append(f"--hostname={options['hostname']}")
        argv.extend(str(item) for item in options["extra"])  # type: ignore[union-attr]
        app.worker_main(argv=argv)
