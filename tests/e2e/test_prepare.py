"""`manage.py prepare` (the compose `migrate` service, and `serve` without --no-prepare) is safe to run from
several processes at once against one PostgreSQL: an advisory lock lets one prepare while the others wait."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server import PROJECT_DIR, _FreshPostgresDatabase, is_postgres_url


def test_concurrent_prepares_on_a_fresh_database_all_succeed(tmp_path: Path) -> None:
    database_url = os.environ.get("DATABASE_URL", "")
    if not is_postgres_url(database_url):
        pytest.skip("needs PostgreSQL: set DATABASE_URL (CI's second pass does)")
    database = _FreshPostgresDatabase(database_url)
    database.create()
    try:
        env = {**os.environ, "DATABASE_URL": database.url, "SIMULATOR_DATA_DIR": str(tmp_path),
               "SIMULATOR_API_KEY": "sim-prepare-test", "SIMULATOR_ADMIN_USERNAME": "boss",
               "SIMULATOR_ADMIN_PASSWORD": "pw-0123456789"}
        env.pop("SIMULATOR_CONFIG", None)
        runs = [subprocess.Popen([sys.executable, "manage.py", "prepare"], cwd=PROJECT_DIR, env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(3)]
        outputs = [run.communicate(timeout=180)[0] for run in runs]
        assert [run.returncode for run in runs] == [0, 0, 0], "\n---\n".join(outputs)
        # Exactly one of them did the first-start work; the others found it done.
        assert sum("Created default deployments" in output for output in outputs) == 1, outputs
        assert sum("Created the admin user 'boss'" in output for output in outputs) == 1, outputs
    finally:
        database.drop()
