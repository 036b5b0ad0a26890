"""Import/export jobs against the database: recordings keyed and stored as record mode stores them, the
round trip, all-or-nothing failures with file and line, the management commands and the admin triggers."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from recordings_app import jobs, transfer
from recordings_app.formats import ours
from recordings_app.matching import match_key, normalize_body
from recordings_app.models import Job, JobStatus, Recording, RecordingSet
from recordings_app.replay import ReplayedJson, ReplayedStream, StoredAnswer, replay
from tests.support.reference import RECORDINGS_DIR, cassette_names, load_cassette

pytestmark = pytest.mark.django_db(transaction=True)  # real commits and rollbacks, as a worker sees them

ALL_CASSETTES = sorted(RECORDINGS_DIR.glob("*.yaml"))
_ROW_FIELDS = ("recording_set__name", "deployment_name", "operation", "match_key", "request_body", "status",
               "headers", "body", "is_stream", "stream_events", "duration_ms", "enabled")


@pytest.fixture(autouse=True)
def eager_jobs() -> Iterator[None]:
    """The embedded setup: tasks run in this process, even when REDIS_URL points the suite at a real broker
    (a task sent there would reach whatever worker listens, with a job id from this test's database)."""
    from simulator_project.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def import_paths(paths: list[Path], set_name: str = "golden", replace: bool = False) -> Job:
    return jobs.import_files(paths, set_name=set_name, replace=replace)


def import_upload(content: bytes, name: str = "upload.yaml", set_name: str = "golden", replace: bool = False) -> Job:
    """The path admin and the API take: a stored upload, a queued task (eager here), the job's outcome."""
    job = jobs.create_import_job(ContentFile(content, name=name), set_name=set_name, replace=replace)
    jobs.enqueue(job)
    job.refresh_from_db()
    return job


def rows(set_name: str | None = None) -> list[dict]:
    query = Recording.objects.order_by("pk")
    if set_name:
        query = query.filter(recording_set__name=set_name)
    return list(query.values(*_ROW_FIELDS))


def database_state() -> tuple[list, list]:
    sets = list(RecordingSet.objects.order_by("pk").values("pk", "name", "ignore_fields", "timing_factor"))
    return sets, list(Recording.objects.order_by("pk").values("pk", *_ROW_FIELDS))


def stored(recording: dict) -> StoredAnswer:
    return StoredAnswer.from_values(1, recording["status"], recording["headers"], recording["body"],
                                    recording["is_stream"], recording["stream_events"], recording["duration_ms"])


def replayed(recording: dict, want_stream: bool) -> ReplayedJson | ReplayedStream:
    return replay(stored(recording), recording["operation"], want_stream=want_stream, include_usage=True,
                  timing_factor=0)


# --- importing the real traffic -------------------------------------------------------------------------


def test_imported_cassettes_are_keyed_like_record_mode_and_replay_the_recorded_bytes() -> None:
    job = import_paths(ALL_CASSETTES)
    assert (job.status, job.created_count, job.format, job.errors) == (JobStatus.SUCCEEDED, 20, "vcr", [])
    golden = RecordingSet.objects.get(name="golden")
    imported = rows("golden")
    interactions = [item for name in cassette_names() for item in load_cassette(name)]
    assert len(imported) == len(interactions)
    for recording, interaction in zip(imported, interactions, strict=True):
        normalized = normalize_body(interaction.request.body)
        assert recording["request_body"] == normalized
        # The key the data plane computes for this request (generators_app.modes) finds this recording.
        assert recording["match_key"] == match_key("POST", recording["operation"], normalized, golden.ignore_fields)
        answer = replayed(recording, want_stream=interaction.response.is_stream)
        assert answer.status == interaction.response.status
        if isinstance(answer, ReplayedStream):
            assert b"".join(answer.frames) == interaction.response.raw.encode()  # the exact wire bytes
        else:
            assert answer.body == interaction.response.raw.encode()
        assert "api-key" not in recording["headers"] and "authorization" not in recording["headers"]


def test_export_wipe_import_gives_the_same_recordings_and_the_same_replays(tmp_path: Path) -> None:
    import_paths(ALL_CASSETTES)
    RecordingSet.objects.filter(name="golden").update(ignore_fields=["stream", "seed"], timing_factor=0.25,
                                                      description="real AOAI traffic")
    before = rows("golden")
    out = tmp_path / "golden.yaml"
    export = jobs.export_to_path(RecordingSet.objects.get(name="golden"), out)
    assert (export.status, export.created_count) == (JobStatus.SUCCEEDED, 20)
    RecordingSet.objects.filter(name="golden").delete()
    assert not Recording.objects.exists()

    again = import_upload(out.read_bytes(), name=out.name, set_name="")  # the file names its own set
    assert (again.status, again.created_count, again.format) == (JobStatus.SUCCEEDED, 20, ours.FORMAT)
    restored = RecordingSet.objects.get(name="golden")
    assert (restored.ignore_fields, restored.timing_factor, restored.description) == (
        ["stream", "seed"], 0.25, "real AOAI traffic")
    after = rows("golden")
    for old, new in zip(before, after, strict=True):
        # Compact JSON bodies come back as compact JSON (AOAI's trailing newline aside); everything else as is.
        assert {**old, "body": old["body"].strip()} == {**new, "body": new["body"].strip()}
        for want_stream in (False, True):
            first, second = replayed(old, want_stream), replayed(new, want_stream)
            assert first.status == second.status and first.headers == second.headers
            if isinstance(first, ReplayedStream):
                assert first.frames == second.frames
            else:
                assert orjson.loads(first.body) == orjson.loads(second.body)


def test_importing_into_an_existing_set_keys_with_that_sets_ignored_fields() -> None:
    RecordingSet.objects.create(name="strict", ignore_fields=[])
    job = import_paths([RECORDINGS_DIR / "basic-chat-stream.yaml"], set_name="strict")
    [recording] = rows("strict")
    assert job.status == JobStatus.SUCCEEDED
    assert recording["match_key"] == match_key("POST", "chat", recording["request_body"], [])
    assert recording["match_key"] != match_key("POST", "chat", recording["request_body"], ["stream"])


def test_export_of_selected_recordings_only(tmp_path: Path) -> None:
    import_paths(ALL_CASSETTES)
    chosen = list(Recording.objects.order_by("pk").values_list("pk", flat=True)[:3])
    job = jobs.create_export_job(RecordingSet.objects.get(name="golden"), recording_ids=chosen)
    jobs.enqueue(job)
    job.refresh_from_db()
    assert (job.status, job.created_count) == (JobStatus.SUCCEEDED, 3)
    assert job.file.read().decode().count("\n- deployment: ") == 3


# --- a bad file changes nothing -------------------------------------------------------------------------


def _good_file() -> bytes:
    out = io.StringIO()
    transfer.export_recordings(RecordingSet.objects.get(name="golden"), out)
    return out.getvalue().encode()


def _bad_in_the_middle(text: str) -> str:
    second = text.index("\n- deployment:", text.index("\n- deployment:") + 1)
    status_at = text.index("    status: 200", second)
    return text[:status_at] + "    status: 2000" + text[status_at + len("    status: 200"):]


@pytest.mark.parametrize(
    ("case", "make", "line_check", "message"),
    [
        ("corrupt", lambda text: text[: len(text) // 2] + "\n  - : [unclosed\n", lambda line: line > 1,
         "not valid YAML"),
        ("bad recording in the middle", _bad_in_the_middle, lambda line: line > 20, "'response.status' must be"),
        ("wrong version", lambda text: text.replace("version: 1", "version: 7", 1), lambda line: line == 2,
         "unsupported version 7"),
        ("empty", lambda text: "", lambda line: line == 1, "the file is empty"),
    ],
)
def test_a_bad_file_fails_the_job_with_its_line_and_changes_nothing(case, make, line_check, message) -> None:
    import_paths(ALL_CASSETTES)
    content = make(_good_file().decode()).encode()
    before = database_state()
    for target in ("golden", "brand-new"):  # replacing an existing set, and creating a new one
        job = import_upload(content, name=f"{case}.yaml", set_name=target, replace=True)
        assert job.status == JobStatus.FAILED, job.message
        assert job.errors and job.errors[0]["file"] == f"{case}.yaml"
        assert line_check(job.errors[0]["line"]), job.errors
        assert message in job.errors[0]["message"], job.errors
        assert f"line {job.errors[0]['line']}" in job.message and "Nothing was imported" in job.message
        assert job.created_count == 0 and job.finished_at is not None
        assert database_state() == before


def test_every_bad_recording_is_reported_not_only_the_first() -> None:
    import_paths(ALL_CASSETTES)
    text = _good_file().decode().replace("operation: chat", "operation: chatter")
    job = import_upload(text.encode(), set_name="other")
    assert job.status == JobStatus.FAILED
    assert len(job.errors) == 10  # the ten chat recordings, each at its own line
    assert len({error["line"] for error in job.errors}) == 10
    assert not RecordingSet.objects.filter(name="other").exists()


def test_a_cassette_needs_a_target_set() -> None:
    job = import_paths([RECORDINGS_DIR / "basic-chat-sync.yaml"], set_name="")
    assert job.status == JobStatus.FAILED and "--set" in job.errors[0]["message"]
    assert not Recording.objects.exists()


# --- scripts --------------------------------------------------------------------------------------------


def test_import_and_export_commands(tmp_path: Path) -> None:
    out = io.StringIO()
    call_command("import_recordings", *map(str, ALL_CASSETTES[:3]), "--set", "cli", stdout=out)
    assert "Imported 3 recording(s) into 'cli'" in out.getvalue()
    target = tmp_path / "cli.yaml"
    call_command("export_recordings", "--set", "cli", "--out", str(target), stdout=out)
    assert target.read_text().startswith("format: aoai-simulator-recordings\nversion: 1\n")
    call_command("import_recordings", str(target), "--set", "cli", "--replace", stdout=out)
    assert Recording.objects.filter(recording_set__name="cli").count() == 3


def test_a_failing_import_command_names_file_and_line_and_exits_non_zero(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("format: aoai-simulator-recordings\nversion: 2\nrecordings: []\n")
    with pytest.raises(CommandError, match=r"bad.yaml line 2: unsupported version 2"):
        call_command("import_recordings", str(bad), "--set", "x")
    assert not RecordingSet.objects.filter(name="x").exists()


def test_the_worker_command_needs_a_broker(settings) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True  # what settings.py derives when no broker URL is set
    with pytest.raises(CommandError, match="No broker configured"):
        call_command("worker")


# --- admin ----------------------------------------------------------------------------------------------


def test_admin_import_form_starts_a_job_and_shows_its_progress(admin_client) -> None:
    form = admin_client.get(reverse("admin:recordings_app_job_import"))
    assert form.status_code == 200 and b"import-recordings-form" in form.content
    with (RECORDINGS_DIR / "tools-chat-stream.yaml").open("rb") as upload:
        response = admin_client.post(reverse("admin:recordings_app_job_import"),
                                     {"file": upload, "new_set_name": "from-admin"})
    assert response.status_code == 302
    job = Job.objects.get()
    assert response["Location"] == reverse("admin:recordings_app_job_progress", args=[job.pk])
    state = admin_client.get(reverse("admin:recordings_app_job_progress_json", args=[job.pk])).json()
    assert (state["status"], state["created"], state["progress"], state["set"]) == ("succeeded", 2, 100.0,
                                                                                   "from-admin")
    page = admin_client.get(response["Location"])
    assert b"Imported 2 recording(s) into" in page.content
    listing = admin_client.get(reverse("admin:recordings_app_job_changelist"))
    assert reverse("admin:recordings_app_job_import").encode() in listing.content  # the "Import recordings" link
    assert f"/job/{job.pk}/progress/".encode() in listing.content
    assert job.created_by.username == "admin"


def test_admin_export_action_produces_a_downloadable_file_that_imports_again(admin_client) -> None:
    import_paths(ALL_CASSETTES[:4])
    golden = RecordingSet.objects.get(name="golden")
    response = admin_client.post(reverse("admin:recordings_app_recordingset_changelist"),
                                 {"action": "export_selected_sets", "_selected_action": [golden.pk]})
    job = Job.objects.get(kind="export")
    assert response.status_code == 302 and response["Location"].endswith(f"/job/{job.pk}/progress/")
    state = admin_client.get(reverse("admin:recordings_app_job_progress_json", args=[job.pk])).json()
    assert (state["status"], state["created"]) == ("succeeded", 4)
    download = admin_client.get(state["download"])
    content = b"".join(download.streaming_content)
    assert download["Content-Disposition"].startswith("attachment")
    again = import_upload(content, set_name="copy")
    assert (again.status, again.created_count) == (JobStatus.SUCCEEDED, 4)


def test_admin_import_into_set_action_preselects_the_set(admin_client) -> None:
    target = RecordingSet.objects.create(name="target")
    response = admin_client.post(reverse("admin:recordings_app_recordingset_changelist"),
                                 {"action": "import_into_set", "_selected_action": [target.pk]})
    assert response.status_code == 302 and response["Location"].endswith(f"?set={target.pk}")
    form = admin_client.get(response["Location"])
    assert f'<option value="{target.pk}" selected>'.encode() in form.content


# --- job bookkeeping ------------------------------------------------------------------------------------


def test_a_redelivered_task_does_not_run_its_job_twice() -> None:
    job = import_upload((RECORDINGS_DIR / "basic-chat-sync.yaml").read_bytes(), set_name="once")
    assert job.status == JobStatus.SUCCEEDED
    again = jobs.run_job(job.pk)
    assert again.status == JobStatus.SUCCEEDED and Recording.objects.count() == 1
    assert jobs.run_job(job.pk + 1000) is None  # a job deleted before a worker got to it


def test_deleting_a_job_deletes_its_file(media_root: Path) -> None:
    job = import_upload((RECORDINGS_DIR / "basic-chat-sync.yaml").read_bytes(), set_name="files")
    stored = Path(job.file.path)
    assert stored.is_file() and stored.is_relative_to(media_root)
    job.delete()
    assert not stored.exists()
