"""Curating a recording in Django admin changes what the running server replays, in every worker, without a
restart. The test's Django is pointed at the server's own database and drives the real admin views with the
Django test client, logged in as a superuser."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dj_database_url
import openai
import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import connections
from django.db.utils import load_backend
from django.test import Client

from tests.support.reference import load_cassette
from tests.support.server import SimulatorServer
from tests.support.waiting import eventually

CONFIG = """\
recording_sets:
  - name: curated
    timing_factor: 0
deployments:
  - name: gpt-4o-mini
    model: gpt-4o-mini
    mode: replay
    recording_set: curated
"""
CASSETTE = load_cassette("basic-chat-sync")[0]
REQUEST = CASSETTE.request.body  # {"messages": [...], "model": "gpt-4o-mini"}: a real AOAI exchange
RECORDED_TEXT = CASSETTE.response.body["choices"][0]["message"]["content"]


@contextmanager
def database_of(server: SimulatorServer) -> Iterator[None]:
    """Point this process's default database connection at the server's database for the block."""
    url = server.child_env.get("DATABASE_URL")
    previous = connections["default"]
    if url:
        target = dj_database_url.parse(url)
    else:
        target = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(server.data_dir / "simulator.sqlite3"),
                  "OPTIONS": {"timeout": 20}}
    settings_dict = {**previous.settings_dict, **target, "TEST": previous.settings_dict.get("TEST", {})}
    wrapper = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, "default")
    connections["default"] = wrapper
    ContentType.objects.clear_cache()  # ids differ from those of the test database
    try:
        yield
    finally:
        wrapper.close()
        connections["default"] = previous
        ContentType.objects.clear_cache()


_eventually = functools.partial(eventually, timeout=10.0, interval=0.1)


def _error_of(call: Callable[[], Any]) -> openai.APIError | None:
    """The SDK error a call raises, or None (a check polled by _eventually must fail by assertion)."""
    try:
        call()
    except openai.APIError as error:
        return error
    return None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorServer]:
    config = Path(tmp_path_factory.mktemp("admin-edit")) / "config.yaml"
    config.write_text(CONFIG)
    with SimulatorServer(workers=2, extra_env={"SIMULATOR_CONFIG": str(config),
                                               "SIMULATOR_CONFIG_POLL_SECONDS": "0.2",
                                               "SIMULATOR_HIT_FLUSH_SECONDS": "0.2"}) as running:
        yield running


def _form_data(recording: Any, **changes: Any) -> dict[str, Any]:
    """What the admin change form posts for this recording (checkboxes: present when ticked)."""
    data = {
        "recording_set": str(recording.recording_set_id),
        "deployment_name": recording.deployment_name,
        "operation": recording.operation,
        "status": str(recording.status),
        "duration_ms": str(recording.duration_ms),
        "request_body": json.dumps(recording.request_body),
        "headers": json.dumps(recording.headers),
        "body": recording.body,
        "stream_events": json.dumps(recording.stream_events),
        "_save": "Save",
    }
    if recording.enabled:
        data["enabled"] = "on"
    if recording.is_stream:
        data["is_stream"] = "on"
    data.update(changes)
    return data


def test_an_admin_edit_is_served_by_the_running_server(server: SimulatorServer, django_db_blocker: Any) -> None:
    from recordings_app import services
    from recordings_app.models import Recording, RecordingSet
    from recordings_app.recorder import Capture

    azure = openai.AzureOpenAI(azure_endpoint=server.base_url, api_key=server.api_key, api_version="2024-10-21",
                               max_retries=0)

    def answer_text(stream: bool = False) -> str:
        if stream:
            chunks = azure.chat.completions.create(stream=True, **REQUEST)
            return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return azure.chat.completions.create(**REQUEST).choices[0].message.content

    def serves(text: str) -> Callable[[], None]:
        def check() -> None:
            for _ in range(4):  # two workers: each must serve it
                assert answer_text() == text
            assert answer_text(stream=True) == text
        return check

    with django_db_blocker.unblock(), database_of(server):
        recording_set = RecordingSet.objects.get(name="curated")
        recording = services.save_recording(
            recording_set_id=recording_set.pk, deployment_name="gpt-4o-mini", operation="chat", method="POST",
            request_payload=REQUEST, save_errors=False,
            capture=Capture(status=200, headers={"x-ms-region": "East US"}, body=CASSETTE.response.raw.strip(),
                            duration_ms=812.0, complete=True),
        )
        get_user_model().objects.create_superuser("curator", "curator@example.com", "not-used")
        admin = Client()
        admin.force_login(get_user_model().objects.get(username="curator"))
        change_url = f"/admin/recordings_app/recording/{recording.pk}/change/"

    _eventually(serves(RECORDED_TEXT))

    with django_db_blocker.unblock(), database_of(server):
        page = admin.get(change_url)
        assert page.status_code == 200
        assert RECORDED_TEXT in page.content.decode()
        listing = admin.get("/admin/recordings_app/recording/", {"q": "4200 + 42"})
        assert f"/admin/recordings_app/recording/{recording.pk}/change/" in listing.content.decode()

        # The editor refuses invalid JSON and keeps what was stored.
        refused = admin.post(change_url, _form_data(recording, body='{"choices": [ '))
        assert refused.status_code == 200
        assert "not valid JSON" in refused.content.decode()
        assert Recording.objects.get(pk=recording.pk).body == recording.body

        edited = json.loads(recording.body)
        edited["choices"][0]["message"]["content"] = "Edited by a curator: 4242."
        saved = admin.post(change_url, _form_data(recording, body=json.dumps(edited, indent=2)))
        assert saved.status_code == 302, saved.content.decode()[:2000]

    _eventually(serves("Edited by a curator: 4242."))

    # A stored body that is not valid JSON (e.g. changed behind admin's back): a clear error, nothing lost.
    with django_db_blocker.unblock(), database_of(server):
        from generators_app.services import bump_config_version

        Recording.objects.filter(pk=recording.pk).update(body='{"choices": [')
        bump_config_version()

    def refuses_broken_recording() -> None:
        error = _error_of(answer_text)
        assert isinstance(error, openai.InternalServerError), error
        assert error.body["code"] == "simulator_invalid_recording"
        assert f"recording {recording.pk}" in error.body["message"]

    _eventually(refuses_broken_recording)
    with django_db_blocker.unblock(), database_of(server):
        page = admin.get(change_url)
        assert page.status_code == 200 and '{&quot;choices&quot;: [' in page.content.decode()
        fixed = admin.post(change_url, _form_data(Recording.objects.get(pk=recording.pk),
                                                  body=json.dumps(edited)))
        assert fixed.status_code == 302

    _eventually(serves("Edited by a curator: 4242."))

    # Admin actions take effect the same way: disabled, the request is a replay miss; enabled, served again.
    with django_db_blocker.unblock(), database_of(server):
        changelist = "/admin/recordings_app/recording/"
        done = admin.post(changelist, {"action": "disable_recordings", "_selected_action": [recording.pk]})
        assert done.status_code == 302

    def misses() -> None:
        error = _error_of(answer_text)
        assert isinstance(error, openai.NotFoundError), error
        assert error.body["code"] == "simulator_replay_miss"

    _eventually(misses)
    with django_db_blocker.unblock(), database_of(server):
        admin.post(changelist, {"action": "enable_recordings", "_selected_action": [recording.pk]})
    _eventually(serves("Edited by a curator: 4242."))

    # Hits are counted (in batches, off the request path) without reloading anyone's cache.
    def counted() -> None:
        with django_db_blocker.unblock(), database_of(server):
            stored = Recording.objects.get(pk=recording.pk)
        assert stored.hit_count >= 10 and stored.last_hit_at is not None

    _eventually(counted)
