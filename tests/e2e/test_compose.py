"""docker-compose.yml, without a Docker engine: its structure, and each service's command run here.

The run test reads docker-compose.yml with .env.example as the .env, gives every service the environment a
container would get (the image's ENV, env_file, environment), maps the `db` and `redis` hosts to the local
PostgreSQL (a fresh database) and Redis, and runs `migrate` to completion, then `web` and `worker` side by
side: web must pass its own healthcheck and answer the data plane and admin with the credentials from
.env.example, and the worker must pass its healthcheck and run a job it takes from the broker.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import yaml

from tests.support.compose import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    as_argv,
    environment_of,
    healthcheck_argv,
    image_env,
    interpolate,
    load_compose,
    read_env_file,
    referenced_variables,
)
from tests.support.server import PROJECT_DIR, _FreshPostgresDatabase, free_port, is_postgres_url

OUR_SERVICES = {"migrate", "web", "worker"}


@pytest.fixture(scope="module")
def dotenv() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def compose(dotenv: dict[str, str]) -> dict:
    return load_compose(dotenv)


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration))


# --- the file's structure ------------------------------------------------------------------------------------
def test_every_variable_the_compose_file_uses_is_in_env_example(dotenv: dict[str, str]) -> None:
    text = COMPOSE_FILE.read_text()
    missing = referenced_variables(text) - set(dotenv)
    assert not missing, f"docker-compose.yml uses variables that .env.example does not set: {sorted(missing)}"
    # Without them `docker compose up` refuses to start, naming the variable (the `:?` form).
    for secret in ("POSTGRES_PASSWORD", "DJANGO_SECRET_KEY", "SIMULATOR_API_KEY", "SIMULATOR_ADMIN_PASSWORD"):
        with pytest.raises(ValueError, match=secret):
            load_compose({k: v for k, v in dotenv.items() if k != secret})


def test_services_order_health_and_shutdown(compose: dict, dotenv: dict[str, str]) -> None:
    services = compose["services"]
    assert set(services) == {"db", "redis", *OUR_SERVICES}
    assert services["db"]["image"].startswith("postgres:")
    assert any(volume.endswith(":/var/lib/postgresql/data") for volume in services["db"]["volumes"])
    assert services["redis"]["image"].startswith("redis:")
    for name in OUR_SERVICES:  # one image for all three
        assert services[name]["build"] == "." and services[name]["image"] == services["web"]["image"]
    # Migrations once, before any web replica or worker starts.
    assert services["migrate"]["restart"] == "no"
    assert as_argv(services["migrate"]["command"])[-1] == "prepare"
    for name in ("web", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["db"]["condition"] == depends["redis"]["condition"] == "service_healthy"
    assert "--no-prepare" in as_argv(services["web"]["command"])
    for name in ("db", "redis", "web", "worker"):
        assert healthcheck_argv(services[name]) is not None, f"{name} has no healthcheck"
    assert healthcheck_argv(services["migrate"]) is None
    # Docker's SIGKILL must come after the simulator's own bound for in-flight requests.
    assert _seconds(services["web"]["stop_grace_period"]) > float(dotenv["SIMULATOR_GRACEFUL_SHUTDOWN_SECONDS"])
    assert int(environment_of(services["web"])["SIMULATOR_WORKERS"]) >= 2
    # Job files: web (uploads, downloads) and worker (imports, exports) see the same directory.
    media = f"{image_env()['SIMULATOR_DATA_DIR']}/media"
    assert f"media:{media}" in services["web"]["volumes"] and f"media:{media}" in services["worker"]["volumes"]


def test_replicas_override_moves_the_port_to_a_load_balancer() -> None:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!reset", lambda loader, node: "!reset")
    override = yaml.load((PROJECT_DIR / "docker-compose.replicas.yml").read_text(), Loader=Loader)
    assert override["services"]["web"]["ports"] == "!reset"
    lb = override["services"]["lb"]
    (mount,) = lb["volumes"]
    config = (PROJECT_DIR / mount.split(":")[0]).read_text()
    assert "server web:8000 resolve" in config and "proxy_buffering off" in config
    assert lb["depends_on"]["web"]["condition"] == "service_healthy"


# --- running the commands --------------------------------------------------------------------------------------
class LocalStack:
    """The compose services' environments, mapped onto this machine's PostgreSQL and Redis."""

    def __init__(self, compose: dict, dotenv: dict[str, str], database: _FreshPostgresDatabase, redis_url: str,
                 workdir: Path) -> None:
        self.compose, self.dotenv, self.database, self.workdir = compose, dotenv, database, workdir
        redis = urlsplit(redis_url)
        self.redis_netloc = redis.netloc
        # Our own Redis database numbers, so nothing else using the local Redis takes our jobs.
        self.redis_db_base = random.choice([6, 8, 10, 12, 14])
        self.web_port = free_port()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def _localize(self, value: str) -> str:
        if "://" not in value:
            return value
        parts = urlsplit(value)
        if parts.hostname == "db":
            return self.database.url
        if parts.hostname == "redis":
            index = int(parts.path.strip("/") or 0)
            return urlunsplit((parts.scheme, self.redis_netloc, f"/{self.redis_db_base + index}", "", ""))
        return value

    def env(self, name: str) -> dict[str, str]:
        service = self.compose["services"][name]
        env = {key: value for key, value in image_env().items() if key != "PATH"}
        for entry in service.get("env_file") or []:  # .env: here, .env.example
            path = entry["path"] if isinstance(entry, dict) else entry
            assert path == ".env"
            env.update(self.dotenv)
        env.update({key: self._localize(value) for key, value in environment_of(service).items()})
        data_dir = self.workdir / name
        data_dir.mkdir(exist_ok=True)
        for volume in service.get("volumes") or []:  # named volumes: one directory shared by the services
            volume_name, _, mount = volume.partition(":")
            if mount == f"{env['SIMULATOR_DATA_DIR']}/media":
                shared = self.workdir / "volumes" / volume_name
                shared.mkdir(parents=True, exist_ok=True)
                env["SIMULATOR_MEDIA_ROOT"] = str(shared)
        env.update({
            # What the container has that a local run must not share: its filesystem, its port, its name.
            "SIMULATOR_DATA_DIR": str(data_dir),
            "SIMULATOR_HOST": "127.0.0.1",
            "SIMULATOR_PORT": str(self.web_port),
            "HOSTNAME": socket.gethostname(),
            "HOME": str(data_dir),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "PYTHONUNBUFFERED": "1",
        })
        assert "PROMETHEUS_MULTIPROC_DIR" not in env  # else two local runs would share one metrics directory
        return env

    def argv(self, name: str) -> list[str]:
        return as_argv(self.compose["services"][name]["command"])

    def run(self, name: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(name), cwd=PROJECT_DIR, env=self.env(name), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def start(self, name: str) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(self.argv(name), cwd=PROJECT_DIR, env=self.env(name), stdout=log,
                                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                start_new_session=True)

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def healthcheck(self, name: str) -> subprocess.CompletedProcess[str]:
        argv = healthcheck_argv(self.compose["services"][name])
        assert argv is not None
        return subprocess.run(argv, cwd=PROJECT_DIR, env=self.env(name), capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)

    def wait_healthy(self, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            process = self.processes[name]
            assert process.poll() is None, f"{name} exited with {process.returncode}:\n{self.log(name)[-3000:]}"
            check = self.healthcheck(name)
            if check.returncode == 0:
                return
            assert time.monotonic() < deadline, (
                f"{name} never became healthy: {check.stdout}{check.stderr}\n{self.log(name)[-3000:]}")
            time.sleep(0.5)

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@pytest.fixture(scope="module")
def stack(compose: dict, dotenv: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    database_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not (is_postgres_url(database_url) and redis_url.startswith("redis://")):
        pytest.skip("the compose services need PostgreSQL and Redis: set DATABASE_URL and REDIS_URL "
                    "(CI's second pass does)")
    database = _FreshPostgresDatabase(database_url)
    database.create()
    local = LocalStack(compose, dotenv, database, redis_url, tmp_path_factory.mktemp("compose"))
    try:
        yield local
    finally:
        local.stop_all()
        database.drop()


@pytest.fixture(scope="module")
def running(stack: LocalStack) -> LocalStack:
    migrate = stack.run("migrate", timeout=180)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    assert f"Created the admin user '{stack.dotenv['SIMULATOR_ADMIN_USERNAME']}'" in migrate.stdout
    again = stack.run("migrate", timeout=180)  # a re-run (a restart, a second `up`) changes nothing and succeeds
    assert again.returncode == 0 and "Created" not in again.stdout, again.stdout + again.stderr
    stack.start("web")
    stack.start("worker")
    stack.wait_healthy("web", timeout=90)
    stack.wait_healthy("worker", timeout=90)
    return stack


def test_web_answers_the_data_plane_admin_and_probes(running: LocalStack) -> None:
    base = f"http://127.0.0.1:{running.web_port}"
    readiness = httpx.get(f"{base}/readyz", timeout=10).json()
    assert readiness == {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}
    chat = httpx.post(
        f"{base}/openai/deployments/gpt-4o-mini/chat/completions", params={"api-version": "2024-10-21"},
        headers={"api-key": running.dotenv["SIMULATOR_API_KEY"]}, timeout=30,
        json={"messages": [{"role": "user", "content": "hello"}], "max_tokens": 4},
    )
    assert chat.status_code == 200, chat.text
    assert chat.json()["usage"]["completion_tokens"] == 4
    assert httpx.post(f"{base}/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21",
                      headers={"api-key": "wrong"}, json={}).status_code == 401
    with httpx.Client(base_url=base, timeout=30) as browser:  # the admin user from .env.example logs in
        login = browser.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        answer = browser.post("/admin/login/?next=/admin/", headers={"referer": f"{base}/admin/login/"}, data={
            "csrfmiddlewaretoken": token, "username": running.dotenv["SIMULATOR_ADMIN_USERNAME"],
            "password": running.dotenv["SIMULATOR_ADMIN_PASSWORD"], "next": "/admin/",
        })
        assert answer.status_code == 302 and answer.headers["location"] == "/admin/", answer.text[:500]
        assert browser.get("/admin/").status_code == 200
    metrics = httpx.get(f"{base}/metrics", timeout=10).text
    assert 'simulator_requests_total{deployment="gpt-4o-mini",mode="generate",operation="chat",status="200"}' in metrics
    # Several worker processes, as the compose file asks: uvicorn's supervisor spawns SIMULATOR_WORKERS of them.
    workers = int(running.env("web")["SIMULATOR_WORKERS"])
    assert len(_spawned_children(running.processes["web"].pid)) == workers >= 2


def _spawned_children(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            text = stat.read_text()
            cmdline = (stat.parent / "cmdline").read_bytes()
            if int(text[text.rindex(")") + 2:].split()[1]) == pid and b"spawn_main" in cmdline:
                children.append(int(stat.parent.name))
    return children


def test_worker_takes_a_job_from_the_broker_and_reaches_the_database(running: LocalStack) -> None:
    from celery import Celery

    env = running.env("worker")
    client = Celery("compose-test", broker=env["CELERY_BROKER_URL"], backend=env["CELERY_RESULT_BACKEND"])
    marker = f"compose-{random.randrange(10**9)}"
    result = client.send_task("simulator.ping", args=[marker])
    try:
        answer = result.get(timeout=60)
    finally:
        result.forget()
        client.close()
    assert answer["echo"] == marker
    assert answer["worker"] == f"worker@{socket.gethostname()}"  # ours, by the --hostname the compose file gives
    assert answer["database"] == running.database.name
    assert answer["deployments"] > 0  # it sees what `migrate` seeded
    assert "simulator.ping" in running.log("worker")


def test_commands_interpolate_like_compose(dotenv: dict[str, str]) -> None:
    """The little interpolation engine the run test relies on, on the forms the compose file uses."""
    assert interpolate("${A:-x} ${B-y} $${HOSTNAME} ${C:+set}", {"A": "", "B": "", "C": "1"}) == "x  ${HOSTNAME} set"
    with pytest.raises(ValueError, match="D: needed"):
        interpolate("${D:?needed}", {})
