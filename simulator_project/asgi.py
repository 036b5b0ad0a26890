"""ASGI entry point: probes (/healthz, /readyz, /metrics) and data-plane paths go ahead of Django."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "simulator_project.settings")

# Django must be set up before the consumers (and the models they import) load.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.urls import re_path  # noqa: E402

from generators_app.probes import probe_urlpatterns  # noqa: E402
from generators_app.routing import (  # noqa: E402
    catchall_urlpatterns,
    dataplane_urlpatterns,
    extension_urlpatterns,
)

django_app = ASGIStaticFilesHandler(django_asgi_app)

application = ProtocolTypeRouter(
    {
        "http": URLRouter(
            [
                *probe_urlpatterns,
                *dataplane_urlpatterns,
                # Django's own paths before the extensions' routes: no extension pattern can hide them.
                re_path(r"^(?:api|admin|static)/", django_app),
                *extension_urlpatterns,
                *catchall_urlpatterns,
                re_path(r"", django_app),
            ]
        ),
    }
)

# Everything imported so far lives as long as the process: keep it out of the cyclic garbage collector's full
# collections. Without this, each full collection walked ~125k long-lived objects and stalled the event loop
# for ~60-200 ms every few seconds under load, which made paced answers that late (bench/latency.py, p99).
gc.freeze()
