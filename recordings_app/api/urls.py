"""The routes this app adds under /api/ (collected by simulator_project.api.urls)."""

from rest_framework.routers import SimpleRouter

from recordings_app.api.jobs import JobViewSet
from recordings_app.api.views import RecordingSetViewSet, RecordingViewSet

router = SimpleRouter()
router.register("recording-sets", RecordingSetViewSet, basename="recordingset")
router.register("recordings", RecordingViewSet, basename="recording")
router.register("jobs", JobViewSet, basename="job")
