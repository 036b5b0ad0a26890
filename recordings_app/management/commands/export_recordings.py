"""`python manage.py export_recordings --set NAME --out FILE`: write a set in this simulator's YAML format."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from recordings_app.jobs import export_to_path
from recordings_app.models import RecordingSet


class Command(BaseCommand):
    help = "Export a recording set to a YAML file (format: aoai-simulator-recordings, version 1)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--set", dest="set_name", required=True, help="The recording set to export.")
        parser.add_argument("--out", required=True, type=Path, help="The file to write (replaced if it exists).")

    def handle(self, *args: object, **options: object) -> None:
        name = str(options["set_name"])
        recording_set = RecordingSet.objects.filter(name=name).first()
        if recording_set is None:
            known = ", ".join(RecordingSet.objects.values_list("name", flat=True)[:20]) or "none"
            raise CommandError(f"no recording set named '{name}' (sets: {known})")
        out: Path = options["out"]  # type: ignore[assignment]
        if not out.parent.is_dir():
            raise CommandError(f"{out.parent}: no such directory")
        job = export_to_path(recording_set, out)
        self.stdout.write(self.style.SUCCESS(f"{job.message} (job {job.pk})"))
