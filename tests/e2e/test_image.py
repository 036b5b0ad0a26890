"""The Docker image, without a Docker engine: build what the Dockerfile builds and run it the way it runs.

The build stage copies a few paths and `pip install .`s them; here the same paths are copied to a scratch
directory, built into a wheel and installed into an empty target, and the image's CMD is run from a directory
holding only manage.py, with the image's ENV, an empty tiktoken cache and the source tree out of sys.path.
So a data file missing from the package (tokenizer ranks, corpus, templates) fails here, not in production.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.compose import DOCKERFILE, image_env
from tests.support.server import PROJECT_DIR, free_port

PACKAGES = ("simulator_project", "generators_app", "limits_app", "recordings_app")


def _stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile as stages of (instruction, arguments), continuation lines joined."""
    stages: list[list[tuple[str, str]]] = []
    current = ""
    for raw in DOCKERFILE.read_text().splitlines():
        if raw.strip().startswith("#") and not current:
            continue
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        line, current = (current + raw).strip(), ""
        if not line:
            continue
        instruction, _, arguments = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), arguments.strip()))
    return stages


def test_runtime_stage_is_slim_non_root_and_health_checked() -> None:
    build, runtime = _stages()[0], _stages()[-1]
    assert len(_stages()) == 2  # build tools and pip caches stay in the build stage
    assert runtime[0][1].split()[0].endswith("-slim")
    users = [arguments for instruction, arguments in runtime if instruction == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert any(instruction == "HEALTHCHECK" and "healthcheck" in arguments for instruction, arguments in runtime)
    assert not any(instruction in ("ADD",) or "curl" in arguments or "wget" in arguments
                   for instruction, arguments in build + runtime)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The build stage's COPYs into a scratch dir, `pip wheel` + install into an empty target directory."""
    scratch = tmp_path_factory.mktemp("image")
    source, site = scratch / "src", scratch / "site"
    source.mkdir()
    for instruction, arguments in _stages()[0]:
        if instruction != "COPY":
            continue
        *sources, _destination = shlex.split(arguments)
        for name in sources:
            origin = PROJECT_DIR / name
            if origin.is_dir():
                shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(origin, source / name)
    wheel_dir = scratch / "wheel"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    built = subprocess.run([*pip, "wheel", "--no-deps", "-q", "-w", str(wheel_dir), str(source)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = wheel_dir.glob("*.whl")
    done = subprocess.run([*pip, "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return site


def test_every_file_of_the_packages_ships(installed: Path) -> None:
    missing = []
    for package in PACKAGES:
        for path in (PROJECT_DIR / package).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                relative = path.relative_to(PROJECT_DIR)
                if not (installed / relative).is_file():
                    missing.append(str(relative))
    assert not missing, f"not in the installed package (add them to package-data in pyproject.toml): {missing}"


@pytest.fixture(scope="module")
def image_server(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    runtime = _stages()[-1]
    app = tmp_path_factory.mktemp("app")
    for instruction, arguments in runtime:
        if instruction == "COPY" and not arguments.startswith("--from"):
            *sources, _ = shlex.split(arguments)
            for name in sources:
                if (PROJECT_DIR / name).is_dir():
                    shutil.copytree(PROJECT_DIR / name, app / name, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(PROJECT_DIR / name, app / name)
    (cmd,) = [json.loads(arguments) for instruction, arguments in runtime if instruction == "CMD"]
    # An empty tiktoken cache: the rank files must come from the package (this machine cannot download them).
    data, empty_cache, port = app / "data", app / "tiktoken-cache", free_port()
    data.mkdir()
    empty_cache.mkdir()
    env = {key: value for key, value in image_env().items() if key != "PATH"}
    env.update({
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(installed),  # ahead of the virtualenv, where the project may be installed editable
        "SIMULATOR_DATA_DIR": str(data), "SIMULATOR_HOST": "127.0.0.1", "SIMULATOR_PORT": str(port),
        "SIMULATOR_API_KEY": "sim-image-test-key", "SIMULATOR_DEFAULT_LATENCY": "zero",
        "TIKTOKEN_CACHE_DIR": str(empty_cache), "HOME": str(app),
    })
    where = subprocess.run([sys.executable, "-c", "import generators_app; print(generators_app.__file__)"],
                           cwd=app, env=env, capture_output=True, text=True, timeout=60)
    assert where.stdout.startswith(str(installed)), where.stdout + where.stderr
    log = (app / "server.log").open("wb")
    process = subprocess.Popen(cmd, cwd=app, env=env, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, (app / "server.log").read_text()
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (app / "server.log").read_text()
            time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(timeout=10)
        log.close()


@pytest.mark.parametrize("deployment", ["gpt-4o-mini", "gpt-4"])  # o200k_base and cl100k_base
def test_the_image_command_serves_from_the_installed_package(image_server: str, deployment: str) -> None:
    answer = httpx.post(
        f"{image_server}/openai/deployments/{deployment}/chat/completions", params={"api-version": "2024-10-21"},
        headers={"api-key": "sim-image-test-key"}, timeout=30,
        json={"messages": [{"role": "user", "content": "Count the tokens of this."}], "max_tokens": 6},
    )
    assert answer.status_code == 200, answer.text
    usage = answer.json()["usage"]
    assert usage["completion_tokens"] == 6 and usage["prompt_tokens"] > 0
