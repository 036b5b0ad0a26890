"""Celery app: eager in the embedded setup, a real broker when CELERY_BROKER_URL or REDIS_URL is set."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "simulator_project.settings")

app = Celery("simulator_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
