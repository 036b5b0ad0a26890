"""Configuration changed by another process (config file, admin, API) reaches a running server without a
restart: every process polls the shared version stamp."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import openai

from tests.support.server import SimulatorServer
from tests.support.waiting import eventually

REPO = Path(__file__).resolve().parents[2]


def _apply_config(server: SimulatorServer, text: str, tmp_path: Path) -> None:
    config = tmp_path / "change.yaml"
    config.write_text(text)
    env = server.child_env  # the same database as the running server
    subprocess.run([sys.executable, "manage.py", "apply_config", str(config)], cwd=REPO, env=env, check=True,
                   capture_output=True, timeout=60)


def test_changes_from_another_process_reach_every_worker(tmp_path: Path) -> None:
    with SimulatorServer(workers=2) as server:
        client = openai.AzureOpenAI(azure_endpoint=server.base_url, api_key=server.api_key,
                                    api_version="2024-10-21", max_retries=0)
        messages = [{"role": "user", "content": "hi"}]
        _apply_config(server, "keys:\n  - name: ci\n    key: sim-ci-key-0123\n"
                              "deployments:\n  - name: team-bot\n    model: gpt-4.1-mini\n", tmp_path)

        def new_deployment_and_key_work() -> None:
            for _ in range(6):  # several requests, so both worker processes answer at least once
                try:
                    completion = client.chat.completions.create(model="team-bot", messages=messages, max_tokens=3)
                except openai.NotFoundError as error:
                    raise AssertionError("deployment not visible yet") from error
                assert completion.model == "gpt-4.1-mini-2025-04-14"
                response = httpx.post(
                    f"{server.base_url}/openai/deployments/team-bot/chat/completions?api-version=2024-10-21",
                    json={"messages": messages}, headers={"api-key": "sim-ci-key-0123"},
                )
                assert response.status_code == 200

        eventually(new_deployment_and_key_work, timeout=5.0)
