"""Import/export jobs through the management API (Celery runs eagerly in the embedded setup)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from recordings_app.models import Recording, RecordingSet

REFERENCE = Path(__file__).resolve().parents[2] / "reference"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def media_in_tmp(settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def eager_jobs() -> Iterator[None]:
    """Run jobs in process even when REDIS_URL names a broker (CI's second pass): no worker runs here."""
    from simulator_project.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


def _upload(path: Path) -> SimpleUploadedFile:
    return SimpleUploadedFile(path.name, path.read_bytes(), content_type="application/x-yaml")


def test_import_a_cassette_then_export_and_download(staff: APIClient) -> None:
    cassette = REFERENCE / "aoai-recordings" / "basic-chat-sync.yaml"
    response = staff.post("/api/jobs/import/", {"file": _upload(cassette), "recording_set": "golden"},
                          format="multipart")
    assert response.status_code == 202, response.content
    job = response.json()
    assert job["kind"] == "import" and job["status"] == "succeeded", job
    assert job["created_count"] == 1
    assert Recording.objects.filter(recording_set__name="golden").count() == 1

    polled = staff.get(f"/api/jobs/{job['id']}/").json()
    assert polled["status"] == "succeeded" and polled["progress"] == 100

    export = staff.post("/api/jobs/export/", {"recording_set": "golden"}, format="json")
    assert export.status_code == 202, export.content
    exported = export.json()
    assert exported["status"] == "succeeded" and exported["download_url"]
    download = staff.get(exported["download_url"])
    assert download.status_code == 200
    document = yaml.safe_load(b"".join(download.streaming_content))
    assert document["format"] == "aoai-simulator-recordings"
    assert len(document["recordings"]) == 1
    assert staff.get("/api/jobs/?kind=export").json()["results"][0]["id"] == exported["id"]


def test_a_bad_file_fails_the_job_and_changes_nothing(staff: APIClient) -> None:
    RecordingSet.objects.create(name="golden")
    bad = SimpleUploadedFile("bad.yaml", b"format: aoai-simulator-recordings\nversion: 99\nrecordings: []\n")
    job = staff.post("/api/jobs/import/", {"file": bad, "recording_set": "golden"}, format="multipart").json()
    assert job["status"] == "failed"
    assert job["errors"] and job["errors"][0]["line"] >= 1
    assert not Recording.objects.exists()
    assert staff.get(f"/api/jobs/{job['id']}/download/").status_code == 404


def test_validation_and_permissions(staff: APIClient, non_staff: APIClient, anonymous: APIClient) -> None:
    assert staff.post("/api/jobs/import/", {}, format="multipart").status_code == 400
    assert staff.post("/api/jobs/export/", {"recording_set": "nope"}, format="json").status_code == 400
    assert staff.get("/api/jobs/?status=bogus").status_code == 400
    assert anonymous.get("/api/jobs/").status_code == 401
    assert non_staff.get("/api/jobs/").status_code == 403
