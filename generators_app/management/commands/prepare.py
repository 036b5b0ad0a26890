"""``python manage.py prepare``: migrate, seed, key, admin user, SIMULATOR_CONFIG; then exit.

The compose file runs it once as the one-shot `migrate` service before any web replica or worker starts.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from generators_app.bootstrap import prepare_instance
from generators_app.config_file import ConfigError


class Command(BaseCommand):
    help = "Prepare the database (migrations, default deployments, API key, admin user, config file) and exit."

    def handle(self, *args: object, **options: object) -> None:
        try:
            prepare_instance(self.stdout.write)
        except ConfigError as error:
            raise CommandError(str(error)) from None
        self.stdout.write("Prepared.")
