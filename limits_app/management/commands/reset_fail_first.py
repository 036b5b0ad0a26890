"""``python manage.py reset_fail_first [PROFILE ...]``: start "fail the first N requests" again.

For CI scripts that replay the scenario: every running process sees the change through the configuration
version stamp (within SIMULATOR_CONFIG_POLL_SECONDS) and its deployments fail their first N requests again.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from limits_app.models import FaultProfile
from limits_app.profile_services import do_reset_fail_first


class Command(BaseCommand):
    help = 'Start the "fail the first N requests" scenario of fault profiles again (all profiles if none named).'

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("profiles", nargs="*", help="fault profile names (default: every one with fail_first)")

    def handle(self, *args: Any, **options: Any) -> None:
        names = options["profiles"]
        profiles = FaultProfile.objects.filter(name__in=names) if names else FaultProfile.objects.filter(
            fail_first__gt=0)
        missing = sorted(set(names) - set(profiles.values_list("name", flat=True)))
        if missing:
            raise CommandError(f"no fault profile named {', '.join(repr(name) for name in missing)}")
        reset = do_reset_fail_first(profiles)
        self.stdout.write(f"fail-first count restarted for: {', '.join(reset)}" if reset else "nothing to reset")
