from django.contrib import admin
from django.urls import include, path

# /healthz, /readyz and /metrics are served ahead of Django: generators_app/probes.py.
urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("simulator_project.api.urls")),
]
