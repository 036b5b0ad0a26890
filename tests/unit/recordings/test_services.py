"""Recording services and the in-process index, against the test database."""

from __future__ import annotations

import asyncio
import json

import pytest

from generators_app.services import read_config_version
from recordings_app import services
from recordings_app.index import HitCounter, RecordingIndex
from recordings_app.matching import match_key, normalize_body
from recordings_app.models import Recording, RecordingSet
from recordings_app.recorder import Capture

QUESTION = {"messages": [{"role": "user", "content": "What is 4200 + 42?"}], "model": "gpt-4o-mini"}


def answer(text: str = "4242", status: int = 200, complete: bool = True) -> Capture:
    body = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]})
    return Capture(status=status, headers={"content-type": "application/json"}, body=body, duration_ms=250,
                   complete=complete)


def save(recording_set: RecordingSet, payload: dict = QUESTION, capture: Capture | None = None,
         deployment: str = "gpt-4o-mini", save_errors: bool = False) -> Recording | None:
    return services.save_recording(recording_set_id=recording_set.pk, deployment_name=deployment, operation="chat",
                                   method="POST", request_payload=payload, capture=capture or answer(),
                                   save_errors=save_errors)


def request_key(recording_set: RecordingSet, payload: dict = QUESTION) -> str:
    return match_key("POST", "chat", normalize_body(payload), recording_set.ignore_fields)


@pytest.fixture
def golden(db) -> RecordingSet:
    return RecordingSet.objects.create(name="golden")


def test_a_saved_recording_is_found_by_the_request_key(golden: RecordingSet) -> None:
    recording = save(golden, {**QUESTION, "stream": True, "user": "u-1"})
    assert recording.match_key == request_key(golden)
    assert recording.request_body["stream"] is True  # kept in the body, left out of the key
    assert json.loads(recording.body)["choices"][0]["message"]["content"] == "4242"


def test_errors_are_saved_only_when_the_set_says_so_and_broken_answers_never(golden: RecordingSet) -> None:
    assert save(golden, capture=answer(status=429)) is None
    assert save(golden, capture=answer(status=429), save_errors=True).status == 429
    assert save(golden, capture=answer(complete=False), save_errors=True) is None
    assert Recording.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_edits_bump_the_configuration_version_and_hit_counts_do_not() -> None:
    golden = RecordingSet.objects.create(name="golden")
    before = read_config_version()
    recording = save(golden)
    after_save = read_config_version()
    assert after_save > before
    services.add_hits({recording.pk: (3, recording.created_at)})
    assert read_config_version() == after_save
    assert Recording.objects.get(pk=recording.pk).hit_count == 3
    services.set_enabled(Recording.objects.filter(pk=recording.pk), False)
    assert read_config_version() > after_save


def test_changing_ignored_fields_rekeys_the_set_losslessly(golden: RecordingSet) -> None:
    recording = save(golden, {**QUESTION, "temperature": 0.5})
    assert recording.match_key != request_key(golden)  # temperature matters
    golden.ignore_fields = [*golden.ignore_fields, "temperature"]
    golden.save()
    assert Recording.objects.get(pk=recording.pk).match_key == request_key(golden)
    golden.ignore_fields = ["stream"]
    golden.save()
    assert Recording.objects.get(pk=recording.pk).match_key == request_key(golden, {**QUESTION, "temperature": 0.5})


def test_moving_rekeys_with_the_target_sets_ignored_fields(golden: RecordingSet) -> None:
    strict = RecordingSet.objects.create(name="strict", ignore_fields=[])
    recording = save(golden, {**QUESTION, "seed": 7})
    assert services.move_recordings(Recording.objects.filter(pk=recording.pk), strict) == 1
    moved = Recording.objects.get(pk=recording.pk)
    assert moved.recording_set == strict
    assert moved.match_key == request_key(strict, {**QUESTION, "seed": 7})
    assert moved.match_key != request_key(strict)


def test_duplicates_are_fresh_copies(golden: RecordingSet) -> None:
    recording = save(golden)
    Recording.objects.filter(pk=recording.pk).update(hit_count=5)
    (copy,) = services.duplicate_recordings(Recording.objects.filter(pk=recording.pk))
    assert copy.pk != recording.pk and copy.hit_count == 0 and copy.body == recording.body
    assert copy.match_key == recording.match_key


def test_stream_events_are_validated() -> None:
    good = [{"offset_ms": 10, "data": "{}"}, {"offset_ms": 12.5, "data": "[DONE]", "event": "done"}]
    assert services.validate_stream_events(good) == good
    for bad, message in [
        ({"offset_ms": 1}, "must be a JSON list"),
        ([{"offset_ms": 5, "data": "{}"}, {"offset_ms": 1, "data": "{}"}], "goes back in time"),
        ([{"offset_ms": 0, "data": "{not json"}], "neither JSON nor"),
        ([{"offset_ms": 0, "data": "{}", "extra": 1}], "unknown keys"),
        ([{"offset_ms": -1, "data": "{}"}], "at least 0"),
    ]:
        with pytest.raises(services.InvalidContent, match=message):
            services.validate_stream_events(bad)


def test_headers_never_keep_credentials() -> None:
    assert services.clean_headers({"X-Request-Id": "r", "Content-Length": "3"}) == {"x-request-id": "r"}
    with pytest.raises(services.InvalidContent, match="credential"):
        services.clean_headers({"api-key": "secret"})


def test_parse_json_text_names_the_line() -> None:
    with pytest.raises(services.InvalidContent, match=r"line 2, column 3"):
        services.parse_json_text('{\n  oops}')


# --- the in-process index -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_index_finds_caches_and_forgets_on_a_new_version() -> None:
    golden = RecordingSet.objects.create(name="golden")
    recording = save(golden)
    index = RecordingIndex()
    key = request_key(golden)

    async def scenario() -> None:
        found = await index.find(1, golden.pk, "chat", key, "gpt-4o-mini")
        assert found is not None and found.recording_id == recording.pk
        assert await index.find(1, golden.pk, "chat", "no-such-key", "gpt-4o-mini") is None
        await asyncio.to_thread(lambda: Recording.objects.filter(pk=recording.pk).delete())
        # Same version: served from memory, no database read.
        assert (await index.find(1, golden.pk, "chat", key, "gpt-4o-mini")).recording_id == recording.pk
        # A new version (the delete bumped it) drops the cache.
        assert await index.find(2, golden.pk, "chat", key, "gpt-4o-mini") is None

    asyncio.run(scenario())


@pytest.mark.django_db(transaction=True)
def test_equal_matches_prefer_the_deployment_then_take_turns() -> None:
    golden = RecordingSet.objects.create(name="golden")
    first = save(golden, capture=answer("one"), deployment="other")
    second = save(golden, capture=answer("two"), deployment="other")
    own = save(golden, capture=answer("mine"), deployment="gpt-4o-mini")
    index = RecordingIndex()
    key = request_key(golden)

    async def picks(deployment: str, times: int) -> list[int]:
        return [(await index.find(1, golden.pk, "chat", key, deployment)).recording_id for _ in range(times)]

    assert asyncio.run(picks("gpt-4o-mini", 2)) == [own.pk, own.pk]
    assert asyncio.run(picks("another", 4)) == [first.pk, second.pk, own.pk, first.pk]


@pytest.mark.django_db(transaction=True)
def test_a_miss_is_explained_with_the_nearest_recordings() -> None:
    golden = RecordingSet.objects.create(name="golden")
    near = save(golden)
    save(golden, {"messages": [{"role": "system", "content": "be brief"}], "n": 2})
    asked = normalize_body({**QUESTION, "max_tokens": 5})
    explanation = asyncio.run(RecordingIndex().explain(
        recording_set_id=golden.pk, recording_set="golden", operation="chat", deployment="gpt-4o-mini",
        key="k", normalized=asked, ignore_fields=frozenset(golden.ignore_fields)))
    assert explanation.nearest[0].recording_id == near.pk
    assert explanation.nearest[0].differing_fields == ("max_tokens",)


@pytest.mark.django_db(transaction=True)
def test_hits_are_counted_in_batches() -> None:
    golden = RecordingSet.objects.create(name="golden")
    recording = save(golden)
    counter = HitCounter()

    async def scenario() -> None:
        for _ in range(5):
            counter.hit(recording.pk)
        await counter.flush()

    asyncio.run(scenario())
    stored = Recording.objects.get(pk=recording.pk)
    assert stored.hit_count == 5 and stored.last_hit_at is not None
