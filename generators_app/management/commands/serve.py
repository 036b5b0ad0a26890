"""`python manage.py serve`: prepare the instance (unless --no-prepare), then serve the ASGI app with uvicorn.

uvicorn (httptools + uvloop) is the production server: measured against daphne on the same consumer it
answers several times more requests per second (see README, Benchmarks). daphne stays for `runserver`.

Metrics across worker processes: the workers write prometheus_client's multiprocess files into
PROMETHEUS_MULTIPROC_DIR. Set here before any worker starts (a fresh directory under SIMULATOR_DATA_DIR when the
variable is unset, emptied when it is set), so each start counts from zero and every worker writes to the same place.

Graceful shutdown: on SIGTERM uvicorn stops accepting connections and lets in-flight requests and streams
finish for up to SIMULATOR_GRACEFUL_SHUTDOWN_SECONDS before it cuts them.
"""

from __future__ import annotations

import contextlib
import glob
import math
import os
import shutil
import tempfile

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from generators_app.bootstrap import prepare_instance
from generators_app.config_file import ConfigError

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def setup_metrics_dir() -> str | None:
    """Point every worker at one clean metrics directory; returns a directory to delete at exit, if ours."""
    directory = os.environ.get(MULTIPROC_ENV, "").strip()
    if directory:
        os.makedirs(directory, exist_ok=True)
        for path in glob.glob(os.path.join(directory, "*.db")):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
        return None
    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    directory = tempfile.mkdtemp(prefix="metrics-", dir=settings.DATA_DIR)
    os.environ[MULTIPROC_ENV] = directory
    return directory


class Command(BaseCommand):
    help = "Prepare the database and serve the simulator (data plane, probes, admin and management API)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("SIMULATOR_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("SIMULATOR_PORT", "8000")))
        parser.add_argument("--workers", type=int, default=int(os.environ.get("SIMULATOR_WORKERS", "1")),
                            help="Worker processes (each one event loop).")
        parser.add_argument("--no-prepare", action="store_true",
                            help="Skip migrate/seed/key/admin/config (the compose `migrate` service did it).")

    def handle(self, *args: object, **options: object) -> None:
        if not options["no_prepare"]:
            try:
                prepare_instance(self.stdout.write)
            except ConfigError as error:
                raise CommandError(str(error)) from None
        own_metrics_dir = setup_metrics_dir()
        import uvicorn

        self.stdout.write(f"Serving on http://{options['host']}:{options['port']} with {options['workers']} "
                          "worker(s)")
        self.stdout.flush()
        try:
            uvicorn.run(
                "simulator_project.asgi:application",
                host=str(options["host"]),
                port=int(options["port"]),  # type: ignore[arg-type]
                workers=int(options["workers"]),  # type: ignore[arg-type]
                loop="uvloop",
                http="httptools",
                lifespan="off",
                access_log=False,  # the consumer writes one structured line per data-plane request instead
                server_header=False,
                log_level=os.environ.get("SIMULATOR_SERVER_LOG_LEVEL", "warning"),
                timeout_graceful_shutdown=math.ceil(settings.SIMULATOR_GRACEFUL_SHUTDOWN_SECONDS),
            )
        finally:
            if own_metrics_dir:
                shutil.rmtree(own_metrics_dir, ignore_errors=True)
