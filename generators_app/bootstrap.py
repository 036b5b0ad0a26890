"""Preparing an instance before it serves: migrate, seed the default deployments, the data-plane key, the first
admin user, SIMULATOR_CONFIG. Called by `manage.py prepare` (the compose `migrate` service) and by
`manage.py serve` unless --no-prepare.

Several replicas may start at once against one PostgreSQL: the whole preparation holds a PostgreSQL
advisory lock, so one process prepares while the others wait and then find nothing left to do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from django.conf import settings
from django.core.management import call_command
from django.db import connection

# Any constant unique to this application; pg_advisory_lock takes a 64-bit key.
_PREPARE_LOCK_KEY = 0x51_4D_55_4C_41_54_4F_52  # "SIMULATOR"


@contextlib.contextmanager
def _prepare_lock() -> Iterator[None]:
    if connection.vendor != "postgresql":
        yield  # SQLite: one host, and its own file lock serialises writers
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [_PREPARE_LOCK_KEY])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_PREPARE_LOCK_KEY])


def ensure_admin_user(username: str, password: str, email: str = "") -> bool:
    """Create the superuser if it does not exist; returns whether it was created.

    An existing user is left as it is (its password may have been changed in admin since).
    """
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    if user_model.objects.filter(username=username).exists():
        return False
    user_model.objects.create_superuser(username=username, email=email, password=password)
    return True


def prepare_instance(say: Callable[[str], None]) -> None:
    """Idempotent: safe to run at every start and from several processes at once."""
    from generators_app.config_file import apply_config_from_settings
    from generators_app.latency_defaults import do_apply_default_latency
    from generators_app.services import do_ensure_default_key, do_seed_default_deployments
    from limits_app.profile_services import do_seed_latency_profiles

    with _prepare_lock():
        call_command("migrate", interactive=False, verbosity=0)
        if settings.SIMULATOR_SEED_DEFAULT_DEPLOYMENTS:
            seeded = do_seed_default_deployments()
            if seeded:
                say(f"Created default deployments: {', '.join(seeded)}")
                # their latency: realistic per model family, or zero (SIMULATOR_DEFAULT_LATENCY)
                do_apply_default_latency(seeded, settings.SIMULATOR_DEFAULT_LATENCY)
        do_seed_latency_profiles()  # the named presets, so a config file can name them
        generated = do_ensure_default_key(settings.SIMULATOR_API_KEY)
        if generated:
            # Shown this once only: the database keeps just its hash.
            say(f"Created the data-plane API key 'default': {generated}\n"
                "It is shown only now. Set SIMULATOR_API_KEY to choose your own.")
        username, password = settings.SIMULATOR_ADMIN_USERNAME, settings.SIMULATOR_ADMIN_PASSWORD
        if username and password and ensure_admin_user(username, password, settings.SIMULATOR_ADMIN_EMAIL):
            say(f"Created the admin user '{username}' (SIMULATOR_ADMIN_USERNAME).")
        report = apply_config_from_settings()  # raises ConfigError for a bad file
        if report is not None:
            say(report.summary())
