"""/api/recording-sets/ and /api/recordings/: CRUD, filters, answer edits with JSON validation, permissions."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from generators_app.models import Deployment
from recordings_app import services
from recordings_app.models import Recording, RecordingSet
from tests.unit.api.conftest import field_errors

CHAT_BODY = '{"id": "chatcmpl-1", "object": "chat.completion", "choices": []}'


def _recording(recording_set: RecordingSet, **fields: object) -> Recording:
    values = {
        "deployment_name": "gpt-4o-mini", "operation": "chat",
        "request_body": {"messages": [{"role": "user", "content": "hi"}]}, "body": CHAT_BODY,
    }
    values.update(fields)
    recording = Recording(recording_set=recording_set, **values)
    services.refresh_key(recording)  # the key a recording made by record mode would have
    recording.save()
    return recording


@pytest.fixture
def recordings(db) -> dict[str, Recording]:
    golden, other = RecordingSet.objects.create(name="golden"), RecordingSet.objects.create(name="other")
    return {
        "chat": _recording(golden),
        "embed": _recording(golden, operation="embeddings", deployment_name="embed", body='{"data": []}'),
        "disabled": _recording(golden, enabled=False),
        "stream": _recording(other, is_stream=True, body="", stream_events=[{"offset_ms": 1.5, "data": "{}"}]),
    }


def test_recording_set_crud(staff: APIClient) -> None:
    created = staff.post("/api/recording-sets/", {"name": "golden", "timing_factor": 0.5}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["ignore_fields"] == ["stream", "user", "seed", "metadata", "stream_options"]
    assert body["recording_count"] == 0 and body["timing_factor"] == 0.5
    patched = staff.patch("/api/recording-sets/golden/", {"ignore_fields": ["user"], "description": "CI"},
                          format="json")
    assert patched.status_code == 200, patched.content
    assert RecordingSet.objects.get(name="golden").ignore_fields == ["user"]
    _recording(RecordingSet.objects.get(name="golden"))
    assert staff.get("/api/recording-sets/golden/").json()["recording_count"] == 1
    assert staff.delete("/api/recording-sets/golden/").status_code == 204
    assert not Recording.objects.exists()  # a set's recordings go with it


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"timing_factor": -1}, "timing_factor"),
        ({"timing_factor": 10**6}, "timing_factor"),
        ({"ignore_fields": "stream"}, "ignore_fields"),
        ({"ignore_fields": [{"a": 1}]}, "ignore_fields"),
        ({"name": "a/b"}, "name"),
        ({"name": ""}, "name"),
    ],
)
def test_recording_set_validation(staff: APIClient, payload: dict, field: str) -> None:
    response = staff.post("/api/recording-sets/", {"name": "s", **payload}, format="json")
    assert field in field_errors(response)
    assert not RecordingSet.objects.exists()


def test_a_set_in_use_cannot_be_deleted(staff: APIClient, recordings: dict[str, Recording]) -> None:
    Deployment.objects.create(name="replayer", model="gpt-4o-mini", mode="replay",
                              recording_set=RecordingSet.objects.get(name="golden"))
    response = staff.delete("/api/recording-sets/golden/")
    assert response.status_code == 409 and response.json()["in_use_by"] == ["replayer (gpt-4o-mini)"]
    assert Recording.objects.count() == 4


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["chat", "embed", "disabled", "stream"]),
        ("?recording_set=golden", ["chat", "embed", "disabled"]),
        ("?recording_set=other", ["stream"]),
        ("?deployment=embed", ["embed"]),
        ("?operation=chat", ["chat", "disabled", "stream"]),
        ("?enabled=false", ["disabled"]),
        ("?enabled=true&recording_set=golden&operation=chat", ["chat"]),
        ("?recording_set=missing", []),
    ],
)
def test_recording_filters(staff: APIClient, recordings: dict[str, Recording], query: str, expected: list) -> None:
    response = staff.get("/api/recordings/" + query)
    assert response.status_code == 200
    page = response.json()
    assert page["count"] == len(expected)
    assert [row["id"] for row in page["results"]] == [recordings[name].pk for name in expected]


def test_recording_list_leaves_bodies_to_the_detail(staff: APIClient, recordings: dict[str, Recording]) -> None:
    row = staff.get("/api/recordings/?deployment=embed").json()["results"][0]
    assert "body" not in row and row["recording_set"] == "golden" and row["operation"] == "embeddings"
    detail = staff.get(f"/api/recordings/{recordings['embed'].pk}/").json()
    assert detail["body"] == '{"data": []}' and detail["request_body"] == recordings["embed"].request_body


def test_recording_list_paginates(staff: APIClient, recordings: dict[str, Recording]) -> None:
    page = staff.get("/api/recordings/?page_size=3").json()
    assert page["count"] == 4 and len(page["results"]) == 3 and page["next"]


def test_bad_enabled_filter_is_400(staff: APIClient, recordings: dict[str, Recording]) -> None:
    assert "enabled" in field_errors(staff.get("/api/recordings/?enabled=maybe"))


def test_edit_a_recording_answer(staff: APIClient, recordings: dict[str, Recording]) -> None:
    pk = recordings["chat"].pk
    new_body = '{"id": "chatcmpl-2", "choices": [{"message": {"content": "edited"}}]}'
    response = staff.patch(f"/api/recordings/{pk}/", {"body": new_body, "status": 200, "enabled": False,
                                                      "match_key": "forged", "hit_count": 99}, format="json")
    assert response.status_code == 200, response.content
    row = Recording.objects.get(pk=pk)
    assert row.body == new_body and row.enabled is False and row.hit_count == 0
    assert row.match_key == response.json()["match_key"] != "forged"  # computed, never taken from the client


@pytest.mark.parametrize(
    ("payload", "field", "fragment"),
    [
        ({"body": '{"id": "chatcmpl-2",'}, "body", "not valid JSON"),
        ({"body": "NaN"}, "body", "not valid JSON"),
        ({"body": ""}, "body", "not valid JSON"),  # a JSON recording needs a JSON answer
        ({"status": 700}, "status", "599"),
        ({"status": 42}, "status", "100"),
        ({"headers": {"api-key": "leaked"}}, "headers", "credential"),
        ({"headers": {"x-a": {"nested": "object"}}}, "headers", "valid string"),
        ({"request_body": ["not", "an", "object"]}, "request_body", ""),
        ({"request_body": {"a": "nul\x00"}}, "request_body", "NUL"),
        ({"operation": "teleport"}, "operation", "not a valid choice"),
        ({"recording_set": "missing"}, "recording_set", "No recording set named 'missing'"),
        ({"is_stream": True}, "stream_events", "needs its events"),
        ({"stream_events": [{"offset_ms": -1, "data": "{}"}]}, "stream_events", "offset_ms"),
        ({"stream_events": [{"offset_ms": 1, "data": "not json"}]}, "stream_events", "neither JSON nor [DONE]"),
    ],
)
def test_recording_edit_validation(
    staff: APIClient, recordings: dict[str, Recording], payload: dict, field: str, fragment: str
) -> None:
    pk = recordings["chat"].pk
    errors = field_errors(staff.patch(f"/api/recordings/{pk}/", payload, format="json"))
    assert field in errors, errors
    assert fragment in str(errors[field])
    row = Recording.objects.get(pk=pk)
    assert row.body == CHAT_BODY and row.headers == {} and row.operation == "chat" and not row.is_stream


def test_invalid_json_error_says_where(staff: APIClient, recordings: dict[str, Recording]) -> None:
    errors = field_errors(staff.patch(f"/api/recordings/{recordings['chat'].pk}/", {"body": "{\n  oops"},
                                      format="json"))
    assert "not valid JSON" in errors["body"][0] and "line 2" in errors["body"][0]


def test_a_stream_recording_may_keep_an_empty_body(staff: APIClient, recordings: dict[str, Recording]) -> None:
    response = staff.patch(f"/api/recordings/{recordings['stream'].pk}/", {"body": ""}, format="json")
    assert response.status_code == 200


def test_editing_the_request_or_the_set_re_keys(staff: APIClient, recordings: dict[str, Recording]) -> None:
    pk = recordings["chat"].pk
    before = staff.get(f"/api/recordings/{pk}/").json()["match_key"]
    # "user" is an ignored field of the set by default: the key stays; a new message changes it.
    same = staff.patch(f"/api/recordings/{pk}/", {"request_body": {**recordings["chat"].request_body, "user": "u1"}},
                       format="json").json()["match_key"]
    assert same == before
    changed = staff.patch(f"/api/recordings/{pk}/", {"request_body": {"messages": [{"role": "user", "content": "yo"}]}},
                          format="json").json()["match_key"]
    assert changed != before
    RecordingSet.objects.filter(name="other").update(ignore_fields=["messages"])
    moved = staff.patch(f"/api/recordings/{pk}/", {"recording_set": "other"}, format="json").json()
    assert moved["recording_set"] == "other" and moved["match_key"] not in (before, changed)


def test_create_a_recording(staff: APIClient, recordings: dict[str, Recording]) -> None:
    payload = {
        "recording_set": "golden", "deployment_name": "gpt-4o-mini", "operation": "chat",
        "request_body": {"messages": [{"role": "user", "content": "new"}], "model": "gpt-4o-mini"},
        "body": CHAT_BODY, "headers": {"x-request-id": "abc", "Connection": "keep-alive"},
    }
    created = staff.post("/api/recordings/", payload, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == 200 and body["enabled"] is True and len(body["match_key"]) == 64
    assert body["headers"] == {"x-request-id": "abc"}  # hop-by-hop headers are not kept
    assert staff.get("/api/recordings/?recording_set=golden").json()["count"] == 4


def test_create_a_stream_recording_needs_events(staff: APIClient, recordings: dict[str, Recording]) -> None:
    payload = {"recording_set": "golden", "deployment_name": "d", "operation": "chat", "request_body": {},
               "is_stream": True}
    assert "stream_events" in field_errors(staff.post("/api/recordings/", payload, format="json"))
    events = [{"offset_ms": 0, "data": '{"choices": []}'}, {"offset_ms": 12.5, "data": "[DONE]"}]
    created = staff.post("/api/recordings/", {**payload, "stream_events": events}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["stream_events"] == events and created.json()["body"] == ""


def test_create_requires_the_request_side(staff: APIClient, recordings: dict[str, Recording]) -> None:
    errors = field_errors(staff.post("/api/recordings/", {"body": "{}"}, format="json"))
    assert {"recording_set", "deployment_name", "operation", "request_body"} <= set(errors)


def test_duplicate_set_enabled_and_move(staff: APIClient, recordings: dict[str, Recording]) -> None:
    chat = recordings["chat"]
    copy = staff.post(f"/api/recordings/{chat.pk}/duplicate/")
    assert copy.status_code == 201
    assert copy.json()["id"] != chat.pk and copy.json()["match_key"] == Recording.objects.get(pk=chat.pk).match_key

    ids = [chat.pk, copy.json()["id"], 999_999]
    assert staff.post("/api/recordings/set-enabled/", {"ids": ids, "enabled": False}, format="json").json() == {
        "count": 2}
    assert not Recording.objects.filter(pk__in=ids, enabled=True).exists()

    moved = staff.post("/api/recordings/move/", {"ids": ids, "recording_set": "other"}, format="json")
    assert moved.json() == {"count": 2}
    assert set(Recording.objects.filter(recording_set__name="other").values_list("pk", flat=True)) >= set(ids[:2])
    assert "recording_set" in field_errors(
        staff.post("/api/recordings/move/", {"ids": ids, "recording_set": "nope"}, format="json"))
    assert "ids" in field_errors(staff.post("/api/recordings/set-enabled/", {"ids": [], "enabled": True},
                                            format="json"))


def test_bulk_changes_bump_the_shared_config_version(
    staff: APIClient, recordings: dict[str, Recording], django_capture_on_commit_callbacks
) -> None:
    from generators_app.services import read_config_version

    before = read_config_version()
    with django_capture_on_commit_callbacks(execute=True):
        staff.post("/api/recordings/set-enabled/", {"ids": [recordings["chat"].pk], "enabled": False}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        staff.post("/api/recordings/move/", {"ids": [recordings["chat"].pk], "recording_set": "other"}, format="json")
    assert read_config_version() == before + 2


def test_delete_a_recording(staff: APIClient, recordings: dict[str, Recording]) -> None:
    assert staff.delete(f"/api/recordings/{recordings['chat'].pk}/").status_code == 204
    assert staff.get(f"/api/recordings/{recordings['chat'].pk}/").status_code == 404
    assert staff.get("/api/recordings/not-a-number/").status_code == 404


def test_recording_permissions(anonymous: APIClient, non_staff: APIClient, recordings: dict[str, Recording]) -> None:
    pk = recordings["chat"].pk
    for client, status in ((anonymous, 401), (non_staff, 403)):
        assert client.get("/api/recordings/").status_code == status
        assert client.get("/api/recording-sets/").status_code == status
        assert client.patch(f"/api/recordings/{pk}/", {"enabled": False}, format="json").status_code == status
        assert client.delete("/api/recording-sets/golden/").status_code == status
    assert Recording.objects.get(pk=pk).enabled is True


def test_ids_beyond_64_bits_are_refused_not_crashed(staff: APIClient, recordings: dict[str, Recording]) -> None:
    huge = 2**70
    assert "ids" in field_errors(staff.post("/api/recordings/set-enabled/", {"ids": [huge], "enabled": True},
                                            format="json"))
    assert "ids" in field_errors(staff.post("/api/recordings/move/", {"ids": [huge], "recording_set": "golden"},
                                            format="json"))
    assert staff.get(f"/api/recordings/{huge}/").status_code == 404
    assert staff.patch(f"/api/recordings/{huge}/", {"enabled": False}, format="json").status_code == 404


def test_nul_characters_find_nothing_instead_of_failing(staff: APIClient, recordings: dict[str, Recording]) -> None:
    # PostgreSQL cannot compare a text with NUL: such names must be refused or find nothing, never a 500.
    assert "recording_set" in field_errors(
        staff.post("/api/recordings/move/", {"ids": [recordings["chat"].pk], "recording_set": "gol\x00den"},
                   format="json"))
    assert staff.get("/api/recordings/?recording_set=gol%00den&deployment=%00").json()["count"] == 0
    assert staff.get("/api/recording-sets/gol%00den/").status_code == 404
