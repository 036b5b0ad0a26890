"""Run the real simulator (``manage.py serve``) as a subprocess for end-to-end tests and benchmarks.

The e2e tests and the benchmark must exercise exactly what a user runs, so this starts the same command
a user types, in a child process, on a free port, with its own throw-away data directory (and its own
PostgreSQL database when the environment points at PostgreSQL), and tears all of it down afterwards.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO
from urllib.parse import urlsplit, urlunsplit

import httpx

PROJECT_DIR = Path(__file__).resolve().parents[2]
DEFAULT_API_KEY = "sim-test-key-0123456789"
STARTUP_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 10.0
LOG_TAIL_LINES = 60
_POSTGRES_SCHEMES = ("postgres", "postgresql", "pgsql", "postgis")


class SimulatorStartError(RuntimeError):
    """The server died or never answered /healthz; the message carries the tail of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free right now (the OS picks it), for a server we are about to start."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def is_postgres_url(url: str) -> bool:
    """Whether DATABASE_URL names PostgreSQL (the only backend we can clone a fresh database on)."""
    scheme = urlsplit(url).scheme.lower().split("+", 1)[0]
    return scheme in _POSTGRES_SCHEMES


def _with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{dbname}", parts.query, parts.fragment))


def _libpq_url(url: str) -> str:
    """dj-database-url accepts schemes libpq does not (``pgsql://``, ``postgres+psycopg://``)."""
    parts = urlsplit(url)
    return urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, parts.fragment))


class _FreshPostgresDatabase:
    """A uniquely named database next to the one DATABASE_URL names, so parallel runs never collide."""

    def __init__(self, url: str) -> None:
        self.source_url = url
        source_db = urlsplit(url).path.lstrip("/") or "postgres"
        self.name = f"{source_db}_e2e_{secrets.token_hex(4)}"
        self.url = _with_database(url, self.name)
        self._created = False

    def _admin_execute(self, statement: str) -> None:
        import psycopg  # only needed when testing against PostgreSQL
        from psycopg import sql

        query = sql.SQL(statement).format(name=sql.Identifier(self.name))
        last_error: Exception | None = None
        # CREATE/DROP DATABASE cannot run inside the target database, and the maintenance db may be
        # closed to us, so try "postgres" first and fall back to the database the URL names.
        for candidate in (_with_database(self.source_url, "postgres"), self.source_url):
            try:
                with psycopg.connect(_libpq_url(candidate), autocommit=True, connect_timeout=10) as conn:
                    conn.execute(query)
                return
            except psycopg.OperationalError as exc:
                last_error = exc
        raise RuntimeError(f"cannot run {statement!r} on PostgreSQL: {last_error}") from last_error

    def create(self) -> None:
        self._admin_execute("CREATE DATABASE {name}")
        self._created = True

    def drop(self) -> None:
        if self._created:
            self._admin_execute("DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            self._created = False


class SimulatorServer:
    """``with SimulatorServer() as server: httpx.get(server.base_url + "/healthz")``.

    ``extra_env`` wins over everything; passing ``DATABASE_URL`` there uses that database as is. An
    inherited PostgreSQL ``DATABASE_URL`` is replaced by a fresh database that is dropped on exit; any
    other inherited ``DATABASE_URL`` is removed so the child gets a fresh SQLite file in its data dir.
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        workers: int = 1,
        extra_env: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout: float = STARTUP_TIMEOUT_S,
        keep_data_dir: bool = False,
    ) -> None:
        self.api_key = api_key
        self.workers = workers
        self.extra_env = dict(extra_env or {})
        self.host = host
        self.port = port or free_port(host)
        self.startup_timeout = startup_timeout
        self.keep_data_dir = keep_data_dir
        self.data_dir: Path | None = None
        self.log_path: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._database: _FreshPostgresDatabase | None = None
        self._log_file: IO[bytes] | None = None

    # ----------------------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def __enter__(self) -> SimulatorServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ----------------------------------------------------------------------------------------------------
    def _child_env(self) -> dict[str, str]:
        assert self.data_dir is not None
        env = dict(os.environ)
        env["SIMULATOR_DATA_DIR"] = str(self.data_dir)
        env["SIMULATOR_API_KEY"] = self.api_key
        env["PYTHONUNBUFFERED"] = "1"  # so the log file is current when we show its tail
        # Default deployments without latency, so tests and benchmarks run at full speed (extra_env may override).
        env["SIMULATOR_DEFAULT_LATENCY"] = "zero"
        inherited_db = env.get("DATABASE_URL", "").strip()
        if "DATABASE_URL" not in self.extra_env and inherited_db:
            if is_postgres_url(inherited_db):
                self._database = _FreshPostgresDatabase(inherited_db)
                self._database.create()
                env["DATABASE_URL"] = self._database.url
            else:
                del env["DATABASE_URL"]
        env.update(self.extra_env)
        return env

    def command(self) -> list[str]:
        """The exact command line, printed in errors so a failure can be reproduced by hand."""
        return [
            sys.executable,
            "manage.py",
            "serve",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]

    def start(self) -> None:
        """Start the server and block until /healthz answers 200; raise SimulatorStartError otherwise."""
        if self.process is not None:
            raise RuntimeError("server already started")
        self.data_dir = Path(tempfile.mkdtemp(prefix="simulator-e2e-"))
        self.log_path = self.data_dir / "server.log"
        try:
            env = self._child_env()
            self.child_env = env  # so a test can run another command (apply_config, ...) on the same database
            log_file = self.log_path.open("wb")
            self._log_file = log_file
            self.process = subprocess.Popen(
                self.command(),
                cwd=PROJECT_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                # Own process group: uvicorn's worker processes can be killed with it if shutdown hangs.
                start_new_session=True,
            )
            atexit.register(self.stop)
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        last_problem = "no answer yet"
        with httpx.Client(timeout=2.0) as client:
            while True:
                code = self.process.poll()
                if code is not None:
                    raise SimulatorStartError(self._failure(f"server exited with code {code} before healthy"))
                try:
                    response = client.get(f"{self.base_url}/healthz")
                    if response.status_code == 200:
                        return
                    last_problem = f"/healthz answered {response.status_code}"
                except httpx.HTTPError as exc:
                    last_problem = f"{type(exc).__name__}: {exc}"
                if time.monotonic() > deadline:
                    raise SimulatorStartError(
                        self._failure(f"not healthy after {self.startup_timeout:.0f} s ({last_problem})")
                    )
                time.sleep(0.2)

    def _failure(self, what: str) -> str:
        tail = "\n".join(self.log_text().splitlines()[-LOG_TAIL_LINES:])
        return (
            f"{what}\ncommand: {' '.join(self.command())} (cwd {PROJECT_DIR})\n"
            f"--- last {LOG_TAIL_LINES} lines of {self.log_path} ---\n{tail}"
        )

    # ----------------------------------------------------------------------------------------------------
    def log_text(self) -> str:
        """Everything the server has written to stdout/stderr so far."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def process_ids(self) -> list[int]:
        """The server's process and all its descendants (uvicorn workers), read from /proc (Linux)."""
        if self.process is None or self.process.poll() is not None:
            return []
        children: dict[int, list[int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2 :].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        found: list[int] = []
        todo = [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return sorted(found)

    def stop(self) -> None:
        """SIGTERM, wait up to 10 s, then SIGKILL the process group; drop the database and data dir."""
        atexit.unregister(self.stop)
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    self._kill_group(process.pid)
                    process.wait(timeout=STOP_TIMEOUT_S)
            # Workers that outlived their parent would keep the port and the database busy.
            self._kill_group(process.pid)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._database is not None:
            database, self._database = self._database, None
            database.drop()
        if self.data_dir is not None and not self.keep_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    @staticmethod
    def _kill_group(pgid: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
