"""The routes this app adds under /api/ (collected by simulator_project.api.urls)."""

from rest_framework.routers import SimpleRouter

from limits_app.api.views import FaultProfileViewSet, LatencyProfileViewSet, LimitProfileViewSet

router = SimpleRouter()
router.register("limit-profiles", LimitProfileViewSet, basename="limitprofile")
router.register("latency-profiles", LatencyProfileViewSet, basename="latencyprofile")
router.register("fault-profiles", FaultProfileViewSet, basename="faultprofile")
