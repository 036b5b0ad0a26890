"""Admin curation of recordings (Django test client, logged in as a superuser)."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from generators_app.models import Deployment
from recordings_app import services
from recordings_app.matching import match_key, normalize_body
from recordings_app.models import Recording, RecordingSet
from recordings_app.recorder import Capture

CHANGELIST = "/admin/recordings_app/recording/"
QUESTION = {"messages": [{"role": "user", "content": "What is 4200 + 42?"}]}
STREAM_EVENTS = [
    {"offset_ms": 120.0, "data": '{"choices":[],"id":"","object":"","created":0,"model":""}'},
    {"offset_ms": 150.5, "data": '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
                                 '"choices":[{"index":0,"delta":{"content":"lighthouse"},"finish_reason":null}]}'},
    {"offset_ms": 180.0, "data": "[DONE]"},
]


def change_url(recording: Recording) -> str:
    return f"{CHANGELIST}{recording.pk}/change/"


@pytest.fixture
def golden(db) -> RecordingSet:
    return RecordingSet.objects.create(name="golden", description="from production")


@pytest.fixture
def recording(golden: RecordingSet) -> Recording:
    body = json.dumps({"id": "chatcmpl-1", "choices": [{"message": {"role": "assistant", "content": "4242"}}]})
    return services.save_recording(
        recording_set_id=golden.pk, deployment_name="gpt-4o-mini", operation="chat", method="POST",
        request_payload=QUESTION, save_errors=False,
        capture=Capture(status=200, headers={"x-request-id": "r-1"}, body=body, duration_ms=300, complete=True))


@pytest.fixture
def stream_recording(golden: RecordingSet) -> Recording:
    return services.save_recording(
        recording_set_id=golden.pk, deployment_name="gpt-4o", operation="chat", method="POST",
        request_payload={"messages": [{"role": "user", "content": "A story about a lighthouse"}]},
        save_errors=False, capture=Capture(status=200, headers={}, is_stream=True, events=STREAM_EVENTS,
                                           duration_ms=180, complete=True))


def form_data(recording: Recording, **changes: str) -> dict[str, str]:
    data = {
        "recording_set": str(recording.recording_set_id), "deployment_name": recording.deployment_name,
        "operation": recording.operation, "status": str(recording.status), "duration_ms": str(recording.duration_ms),
        "request_body": json.dumps(recording.request_body), "headers": json.dumps(recording.headers),
        "body": recording.body, "stream_events": json.dumps(recording.stream_events), "enabled": "on",
    }
    if recording.is_stream:
        data["is_stream"] = "on"
    data.update(changes)
    return data


def test_the_list_filters_and_searches_request_and_response_text(
    admin_client: Client, recording: Recording, stream_recording: Recording
) -> None:
    RecordingSet.objects.create(name="second")  # a set filter shows once there is a choice to make
    page = admin_client.get(CHANGELIST)
    assert page.status_code == 200
    text = page.content.decode()
    for facet in ("recording set", "deployment name", "operation", "status", "enabled"):
        assert f'data-filter-title="{facet}"' in text
    found = admin_client.get(CHANGELIST, {"q": "4200"}).content.decode()  # request text
    assert change_url(recording) in found and change_url(stream_recording) not in found
    found = admin_client.get(CHANGELIST, {"q": "lighthouse"}).content.decode()  # streamed response text
    assert change_url(stream_recording) in found and change_url(recording) not in found
    only_streams = admin_client.get(CHANGELIST, {"deployment_name": "gpt-4o"}).content.decode()
    assert change_url(stream_recording) in only_streams and change_url(recording) not in only_streams


def test_the_editor_refuses_invalid_json_and_loses_nothing(admin_client: Client, recording: Recording) -> None:
    answer = admin_client.post(change_url(recording), form_data(recording, body='{"choices": ['))
    assert answer.status_code == 200
    assert "the body is not valid JSON" in answer.content.decode()
    assert Recording.objects.get(pk=recording.pk).body == recording.body


def test_an_unchanged_body_keeps_its_bytes_and_an_edit_is_stored_compact(
    admin_client: Client, recording: Recording
) -> None:
    page = admin_client.get(change_url(recording)).content.decode()
    assert "&quot;content&quot;: &quot;4242&quot;" in page  # shown pretty-printed
    pretty = json.dumps(json.loads(recording.body), indent=2)
    assert admin_client.post(change_url(recording), form_data(recording, body=pretty)).status_code == 302
    assert Recording.objects.get(pk=recording.pk).body == recording.body
    edited = pretty.replace("4242", "Edited")
    assert admin_client.post(change_url(recording), form_data(recording, body=edited)).status_code == 302
    stored = Recording.objects.get(pk=recording.pk).body
    assert json.loads(stored)["choices"][0]["message"]["content"] == "Edited" and "\n" not in stored


def test_editing_the_request_rekeys_the_recording(admin_client: Client, recording: Recording) -> None:
    other = {"messages": [{"role": "user", "content": "What is 1 + 1?"}], "temperature": 0}
    response = admin_client.post(change_url(recording), form_data(recording, request_body=json.dumps(other)))
    assert response.status_code == 302
    stored = Recording.objects.get(pk=recording.pk)
    assert stored.match_key == match_key("POST", "chat", normalize_body(other), stored.recording_set.ignore_fields)


def test_stream_events_are_shown_in_order_and_validated(admin_client: Client, stream_recording: Recording) -> None:
    page = admin_client.get(change_url(stream_recording)).content.decode()
    assert page.index("<td>120.0</td>") < page.index("<td>150.5</td>") < page.index("<td>180.0</td>")
    backwards = json.dumps([STREAM_EVENTS[1], STREAM_EVENTS[0]])
    refused = admin_client.post(change_url(stream_recording), form_data(stream_recording, stream_events=backwards))
    assert refused.status_code == 200 and "goes back in time" in refused.content.decode()
    leaky = form_data(stream_recording, headers=json.dumps({"api-key": "upstream-secret"}))
    refused = admin_client.post(change_url(stream_recording), leaky)
    assert "is a credential" in refused.content.decode()
    assert Recording.objects.get(pk=stream_recording.pk).stream_events == STREAM_EVENTS


def test_actions_enable_disable_duplicate_and_move(
    admin_client: Client, golden: RecordingSet, recording: Recording
) -> None:
    selected = {"_selected_action": [recording.pk]}
    admin_client.post(CHANGELIST, {"action": "disable_recordings", **selected})
    assert not Recording.objects.get(pk=recording.pk).enabled
    admin_client.post(CHANGELIST, {"action": "enable_recordings", **selected})
    assert Recording.objects.get(pk=recording.pk).enabled
    admin_client.post(CHANGELIST, {"action": "duplicate_recordings", **selected})
    assert Recording.objects.filter(match_key=recording.match_key).count() == 2
    strict = RecordingSet.objects.create(name="strict", ignore_fields=[])
    refused = admin_client.post(CHANGELIST, {"action": "move_to_set", **selected}, follow=True)
    assert "Choose the target set first" in refused.content.decode()
    admin_client.post(CHANGELIST, {"action": "move_to_set", "target_set": strict.pk, **selected})
    assert Recording.objects.get(pk=recording.pk).recording_set == strict
    admin_client.post(CHANGELIST, {"action": "delete_selected", "post": "yes", **selected})
    assert not Recording.objects.filter(pk=recording.pk).exists()


def test_recording_sets_list_their_counts(admin_client: Client, recording: Recording, stream_recording: Recording
                                          ) -> None:
    Recording.objects.filter(pk=stream_recording.pk).update(enabled=False)
    page = admin_client.get("/admin/recordings_app/recordingset/").content.decode()
    assert '<td class="field-recording_count">2</td>' in page
    assert '<td class="field-enabled_count">1</td>' in page


def test_the_upstream_key_is_write_only_in_admin(admin_client: Client, golden: RecordingSet) -> None:
    deployment = Deployment.objects.create(name="rec", model="gpt-4o-mini", mode="record", recording_set=golden,
                                           upstream_endpoint="https://example.openai.azure.com",
                                           upstream_key="upstream-secret-123")
    url = f"/admin/generators_app/deployment/{deployment.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert "upstream-secret-123" not in page
    fields = {"name": "rec", "model": "gpt-4o-mini", "mode": "record", "recording_set": golden.pk,
              "upstream_endpoint": "https://example.openai.azure.com", "output_tokens_mean": 60,
              "output_tokens_std": 20, "tool_call_probability": 0.5, "enabled": "on"}
    assert admin_client.post(url, {**fields, "upstream_key": ""}).status_code == 302
    assert Deployment.objects.get(pk=deployment.pk).upstream_key == "upstream-secret-123"  # empty keeps it
    assert admin_client.post(url, {**fields, "upstream_key": "rotated-456"}).status_code == 302
    assert Deployment.objects.get(pk=deployment.pk).upstream_key == "rotated-456"
    assert admin_client.post(url, {**fields, "clear_upstream_key": "on"}).status_code == 302
    assert Deployment.objects.get(pk=deployment.pk).upstream_key == ""
