"""`python manage.py management_token --user admin`: print the staff user's token for the management API.

The token is created on first use and printed each time (DRF tokens are stored as they are, which is what
lets a script fetch it again); `--rotate` replaces it, so the old one stops working.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Create (or show) the management-API token of a staff user; --rotate replaces it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="A staff user (see `manage.py createsuperuser`).")
        parser.add_argument("--rotate", action="store_true", help="Replace the token; the old one stops working.")

    def handle(self, *args: object, **options: object) -> None:
        username = str(options["user"])
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user '{username}'. Create one with `python manage.py createsuperuser`.")
        if not (user.is_staff and user.is_active):
            raise CommandError(f"User '{username}' is not an active staff user; the management API would refuse it.")
        if options["rotate"]:
            Token.objects.filter(user=user).delete()
        token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(token.key)
