"""An import started from the admin runs on a real Celery worker process (Redis broker, PostgreSQL), its
progress visible in the admin while it runs, and the imported recordings replay through the server."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import orjson
import pytest

from recordings_app.formats import ours
from recordings_app.formats.common import SetOptions
from tests.support.server import PROJECT_DIR, SimulatorServer, _FreshPostgresDatabase, is_postgres_url

RECORDINGS = 8000  # enough for the import to run for a few seconds
ADMIN_USER = "jobs-admin"


def _postgres_url() -> str:
    inherited = os.environ.get("DATABASE_URL", "")
    return inherited if is_postgres_url(inherited) else os.environ.get(
        "SIMULATOR_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")


def _redis_url() -> str:
    return os.environ.get("REDIS_URL") or os.environ.get("SIMULATOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _fresh_database_or_skip(postgres_url: str, redis_url: str) -> _FreshPostgresDatabase:
    """A new database next to the one the URL names (dropped at the end); skip when the services are absent."""
    import redis

    try:
        redis.Redis.from_url(redis_url, socket_timeout=3).ping()
    except redis.RedisError as error:
        pytest.skip(f"needs a local Redis ({error})")
    database = _FreshPostgresDatabase(postgres_url)
    try:
        database.create()
    except RuntimeError as error:
        pytest.skip(f"needs a local PostgreSQL ({error})")
    return database


def _recording_file(path: Path) -> None:
    """A set in our format: RECORDINGS chat answers, each for its own question."""
    with path.open("w", encoding="utf-8") as out:
        out.write(ours.header_text(SetOptions(name="ignored", ignore_fields=["stream", "user", "seed"],
                                              timing_factor=0.0), "2026-01-01T00:00:00+00:00"))
        for index in range(RECORDINGS):
            body = orjson.dumps({
                "id": f"chatcmpl-worker{index:05d}", "object": "chat.completion", "created": 1762402675,
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None, "message": {
                    "role": "assistant", "content": f"Answer {index}", "refusal": None, "annotations": []}}],
                "usage": {"prompt_tokens": 14, "completion_tokens": 3, "total_tokens": 17},
            }).decode()
            out.write(ours.recording_text(
                deployment_name="worker-replay", operation="chat", enabled=True,
                request_body={"messages": [{"role": "user", "content": f"Question {index}"}]}, status=200,
                duration_ms=0.0, headers={"x-ms-region": "East US"}, body=body, is_stream=False, stream_events=[],
            ))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimulatorServer, Path]]:
    redis_url = _redis_url()
    database = _fresh_database_or_skip(_postgres_url(), redis_url)
    token = secrets.token_hex(4)
    env = {
        "DATABASE_URL": database.url,
        "REDIS_URL": redis_url,
        # Our own queue and limiter keys: other simulators and workers on this Redis never see these jobs.
        "CELERY_TASK_DEFAULT_QUEUE": f"simulator-test-jobs-{token}",
        "SIMULATOR_LIMITER_KEY_PREFIX": f"simulator-test-jobs-{token}",
        "SIMULATOR_ADMIN_USERNAME": ADMIN_USER,
        "SIMULATOR_ADMIN_PASSWORD": f"pw-{token}",
        "SIMULATOR_CONFIG_POLL_SECONDS": "0.2",
    }
    worker_log = tmp_path_factory.mktemp("worker") / "worker.log"
    worker = None
    try:
        with SimulatorServer(extra_env=env) as server, worker_log.open("wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "manage.py", "worker", "--concurrency", "1", "--loglevel", "INFO",
                 "--hostname", f"jobs-{token}@%h"],
                cwd=PROJECT_DIR, env=server.child_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
            deadline = time.monotonic() + 60
            while b" ready." not in worker_log.read_bytes():
                assert worker.poll() is None, worker_log.read_text()
                assert time.monotonic() < deadline, "the worker did not start:\n" + worker_log.read_text()
                time.sleep(0.2)
            yield server, worker_log
    finally:
        if worker is not None:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=10)
        database.drop()
        _forget_queue(redis_url, env["CELERY_TASK_DEFAULT_QUEUE"])


def _forget_queue(redis_url: str, queue: str) -> None:
    """Remove what the broker keeps for our one-off queue (kombu's bindings), so runs leave Redis as it was."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=3)
    client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    client.close()


def _admin(server: SimulatorServer) -> httpx.Client:
    client = httpx.Client(base_url=server.base_url, timeout=30)
    client.get("/admin/login/")
    response = client.post("/admin/login/?next=/admin/", data={
        "username": ADMIN_USER, "password": server.child_env["SIMULATOR_ADMIN_PASSWORD"],
        "csrfmiddlewaretoken": client.cookies["csrftoken"], "next": "/admin/"})
    assert response.status_code == 302, response.text[:500]
    return client


def test_an_admin_import_runs_on_the_worker_with_progress_visible(stack, tmp_path: Path) -> None:
    server, worker_log = stack
    upload = tmp_path / "worker-set.yaml"
    _recording_file(upload)
    admin = _admin(server)
    assert admin.get("/admin/recordings_app/job/import/").status_code == 200
    with upload.open("rb") as handle:
        started = admin.post("/admin/recordings_app/job/import/",
                             data={"csrfmiddlewaretoken": admin.cookies["csrftoken"], "new_set_name": "from-worker"},
                             files={"file": (upload.name, handle, "application/yaml")})
    assert started.status_code == 302, started.text[:1000]
    progress_page = started.headers["location"]
    job_id = int(re.search(r"/job/(\d+)/progress/", progress_page).group(1))

    seen = []
    page = None
    deadline = time.monotonic() + 300
    while True:
        state = admin.get(f"/admin/recordings_app/job/{job_id}/progress.json").json()
        seen.append((state["status"], state["progress"], state["processed"]))
        if state["done"]:
            break
        if page is None and state["status"] == "running" and 0 < state["progress"] < 100:
            page = admin.get(progress_page).text  # the admin's progress page, mid-run
        assert time.monotonic() < deadline, seen[-5:]
        time.sleep(0.1)

    assert state["status"] == "succeeded", state
    assert (state["created"], state["set"], state["format"]) == (RECORDINGS, "from-worker", ours.FORMAT)
    running = [(progress, processed) for status, progress, processed in seen if status == "running"]
    midway = [(progress, processed) for progress, processed in running if 0 < progress < 100 and processed > 0]
    assert len({progress for progress, _ in midway}) >= 2, f"no progress seen while it ran: {seen}"
    assert [p for p, _ in midway] == sorted(p for p, _ in midway)  # progress only goes forward
    assert page is not None  # the admin's progress page while it ran: a bar, refreshing itself
    assert 'http-equiv="refresh"' in page and "<progress" in page and 'data-status="running"' in page
    log = worker_log.read_text()
    assert "recordings.run_job" in log and "succeeded" in log, log[-2000:]  # the worker ran it, not the web

    (tmp_path / "replay.yaml").write_text(
        "deployments:\n  - {name: worker-replay, model: gpt-4o-mini, mode: replay, recording_set: from-worker}\n")
    subprocess.run([sys.executable, "manage.py", "apply_config", str(tmp_path / "replay.yaml")], cwd=PROJECT_DIR,
                   env=server.child_env, check=True, capture_output=True, timeout=120)
    client = openai.AzureOpenAI(azure_endpoint=server.base_url, api_key=server.api_key, api_version="2024-10-21",
                                max_retries=0)
    deadline = time.monotonic() + 15
    while True:
        try:
            completion = client.chat.completions.create(
                model="worker-replay", messages=[{"role": "user", "content": "Question 4321"}])
            break
        except (openai.NotFoundError, openai.BadRequestError):
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert completion.id == "chatcmpl-worker04321" and completion.choices[0].message.content == "Answer 4321"
