"""Celery tasks of generators_app: only a health ping for now (the recording import/export jobs live in
recordings_app). The ping proves a worker consumes from the broker and reaches the database; the compose test
and `docs/team-setup.md` use it."""

from __future__ import annotations

import os

from celery import shared_task


@shared_task(name="simulator.ping")
def ping(self_check: str = "") -> dict[str, object]:
    """Answer with who ran the task and what it saw in the database."""
    from celery import current_task
    from django.db import connection

    from generators_app.models import Deployment
    from generators_app.services import read_config_version

    return {
        "echo": self_check,
        "worker": current_task.request.hostname or "",
        "pid": os.getpid(),
        "database": connection.settings_dict["NAME"],
        "deployments": Deployment.objects.count(),
        "config_version": read_config_version(),
    }
