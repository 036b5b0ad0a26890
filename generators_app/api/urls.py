"""The routes this app adds under /api/ (collected by simulator_project.api.urls)."""

from rest_framework.routers import SimpleRouter

from generators_app.api.views import ApiKeyViewSet, DeploymentViewSet

router = SimpleRouter()
router.register("deployments", DeploymentViewSet, basename="deployment")
router.register("keys", ApiKeyViewSet, basename="apikey")
