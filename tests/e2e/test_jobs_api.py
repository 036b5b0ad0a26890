"""The management API's scenario for jobs: upload a YAML file, poll the job, replay through the SDK."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import openai

from tests.support.server import SimulatorServer

CASSETTE = Path(__file__).resolve().parents[1] / "reference" / "aoai-recordings" / "basic-chat-sync.yaml"
TOKEN = "mgmt-token-for-the-jobs-scenario-0123456789"


def test_upload_poll_and_replay() -> None:
    # The embedded setup: no broker, so the job runs in the web process (the worker path is covered by
    # tests/e2e/test_recording_jobs_worker.py).
    embedded = {"SIMULATOR_MANAGEMENT_TOKEN": TOKEN, "REDIS_URL": "", "CELERY_BROKER_URL": ""}
    with SimulatorServer(extra_env=embedded) as server:
        api = httpx.Client(base_url=f"{server.base_url}/api", headers={"Authorization": f"Token {TOKEN}"},
                           timeout=30)
        started = api.post("/jobs/import/", data={"recording_set": "golden"},
                           files={"file": (CASSETTE.name, CASSETTE.read_bytes(), "application/x-yaml")})
        assert started.status_code == 202, started.text
        job_url = started.headers["location"].removeprefix("/api")
        deadline = time.monotonic() + 30
        job = started.json()
        while job["status"] not in ("succeeded", "failed") and time.monotonic() < deadline:
            time.sleep(0.2)
            job = api.get(job_url).json()
        assert job["status"] == "succeeded", job
        created = api.post("/deployments/", json={"name": "golden-bot", "model": "gpt-4o-mini", "mode": "replay",
                                                  "recording_set": "golden"})
        assert created.status_code == 201, created.text

        client = openai.AzureOpenAI(azure_endpoint=server.base_url, api_key=server.api_key,
                                    api_version="2024-10-21", max_retries=0)
        deadline = time.monotonic() + 10
        while True:  # the new deployment reaches the data plane within the config poll interval
            try:
                completion = client.chat.completions.create(
                    model="golden-bot", messages=[{"role": "user", "content": "What is 4200 + 42?"}]
                )
                break
            except openai.NotFoundError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert completion.id == "chatcmpl-CYljXG7URhfUajUrf04DzDMUn59Fm"
        assert completion.choices[0].message.content == "4200 + 42 equals 4242."
