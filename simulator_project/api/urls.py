"""/api/: every app's viewsets on one router (so the API root lists them all), the OpenAPI schema, the
interactive docs (assets served locally by drf-spectacular-sidecar) and the browsable API's login."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from generators_app.api.urls import router as generators_router
from limits_app.api.urls import router as limits_router
from recordings_app.api.urls import router as recordings_router
from simulator_project.api import schema  # noqa: F401  (registers the OpenAPI description of our auth)


class ManagementRouter(DefaultRouter):
    # No format suffixes: deployment names contain dots ("gpt-4.1"), which a suffix route would swallow.
    include_format_suffixes = False


router = ManagementRouter()
for app_router in (generators_router, limits_router, recordings_router):
    router.registry.extend(app_router.registry)

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("auth/", include("rest_framework.urls")),
    path("", include(router.urls)),
]
