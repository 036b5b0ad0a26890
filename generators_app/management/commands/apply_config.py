"""``python manage.py apply_config path.yaml``: create or update what a config file names (SPEC §10)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from generators_app.config_file import ConfigError, apply_config_file, plan_config_file


class Command(BaseCommand):
    help = (
        "Apply a simulator config file: create or update the keys and deployments it names and leave "
        "everything else alone. A file with any error changes nothing."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", help="the YAML config file")
        parser.add_argument("--check", action="store_true", help="only validate the file; change nothing")

    def handle(self, *args, **options) -> None:
        path = options["path"]
        try:
            if options["check"]:
                self.stdout.write(plan_config_file(path).summary())
                return
            report = apply_config_file(path)
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(report.summary())
