"""`python manage.py serve`: migrate, seed, apply SIMULATOR_CONFIG, then serve the ASGI app with uvicorn.

uvicorn (httptools + uvloop) is the production server: measured against daphne on the same consumer it
answers several times more requests per second (see README, Benchmarks). daphne stays for `runserver`.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Prepare the database and serve the simulator (data plane, admin and management API)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("SIMULATOR_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("SIMULATOR_PORT", "8000")))
        parser.add_argument("--workers", type=int, default=int(os.environ.get("SIMULATOR_WORKERS", "1")),
                            help="Worker processes (each one event loop).")
        parser.add_argument("--no-prepare", action="store_true",
                            help="Skip migrate/seed/config (when another process already did it).")

    def handle(self, *args: object, **options: object) -> None:
        if not options["no_prepare"]:
            self.prepare()
        import uvicorn

        self.stdout.write(f"Serving on http://{options['host']}:{options['port']} with {options['workers']} "
                          "worker(s)")
        self.stdout.flush()
        uvicorn.run(
            "simulator_project.asgi:application",
            host=str(options["host"]),
            port=int(options["port"]),  # type: ignore[arg-type]
            workers=int(options["workers"]),  # type: ignore[arg-type]
            loop="uvloop",
            http="httptools",
            lifespan="off",
            access_log=False,
            server_header=False,
            log_level=os.environ.get("SIMULATOR_SERVER_LOG_LEVEL", "warning"),
            timeout_graceful_shutdown=int(os.environ.get("SIMULATOR_GRACEFUL_SHUTDOWN_SECONDS", "10")),
        )

    def prepare(self) -> None:
        from generators_app.config_file import ConfigError, apply_config_from_settings
        from generators_app.services import do_ensure_default_key, do_seed_default_deployments

        call_command("migrate", interactive=False, verbosity=0)
        if settings.SIMULATOR_SEED_DEFAULT_DEPLOYMENTS:
            seeded = do_seed_default_deployments()
            if seeded:
                self.stdout.write(f"Created default deployments: {', '.join(seeded)}")
        generated = do_ensure_default_key(settings.SIMULATOR_API_KEY)
        if generated:
            # Shown this once only: the database keeps just its hash.
            self.stdout.write(self.style.WARNING(
                f"Created the data-plane API key 'default': {generated}\n"
                "It is shown only now. Set SIMULATOR_API_KEY to choose your own."
            ))
        try:
            report = apply_config_from_settings()
        except ConfigError as error:
            raise CommandError(str(error)) from None
        if report is not None:
            self.stdout.write(report.summary())
        self.stdout.flush()
