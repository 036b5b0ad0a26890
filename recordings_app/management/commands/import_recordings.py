"""`python manage.py import_recordings FILE… [--set NAME] [--replace]`: import recordings in this process.

The format of each file is detected (this simulator's YAML, the aoai-api-simulator format, vcr.py cassettes).
All files go in one transaction: any error fails the command, names the file and line, and changes nothing.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from recordings_app.jobs import import_files
from recordings_app.models import JobStatus


class Command(BaseCommand):
    help = "Import recordings from YAML files (our format, aoai-api-simulator, vcr.py cassettes) into a set."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
        parser.add_argument("--set", dest="set_name", default="",
                            help="The recording set to import into (created if missing). Default: the set the "
                                 "file names (our format only).")
        parser.add_argument("--replace", action="store_true",
                            help="Delete the set's recordings first (in the same transaction).")

    def handle(self, *args: object, **options: object) -> None:
        files: list[Path] = options["files"]  # type: ignore[assignment]
        for path in files:
            if not path.is_file():
                raise CommandError(f"{path}: no such file")
        verbosity = int(options["verbosity"])  # type: ignore[arg-type]

        def echo(done: int, percent: float, total: int | None) -> None:
            if verbosity > 1:
                self.stderr.write(f"  {done} recordings read ({percent:.0f}%)")

        job = import_files(files, set_name=str(options["set_name"]), replace=bool(options["replace"]), echo=echo)
        for warning in job.warnings:
            self.stderr.write(self.style.WARNING(f"{warning['file']} line {warning['line']}: {warning['message']}"))
        if job.status != JobStatus.SUCCEEDED:
            lines = [f"{error['file']} line {error['line']}: {error['message']}" for error in job.errors]
            raise CommandError("\n".join([f"import failed (job {job.pk}); nothing was imported:", *lines]))
        self.stdout.write(self.style.SUCCESS(f"{job.message} (job {job.pk}, format: {job.format})"))
