"""Every environment variable the code reads is documented (docs/team-setup.md) and listed in .env.example."""

from __future__ import annotations

import re
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
CODE_DIRS = ("simulator_project", "generators_app", "limits_app", "recordings_app")
# env_str("NAME", ...), env_bool(...), os.environ.get("NAME"), os.environ["NAME"], os.getenv("NAME")
_READ = re.compile(
    r"""(?:env_(?:str|bool|float|int|list)\(|environ(?:\.get)?[(\[]|getenv\()\s*["']([A-Z][A-Z0-9_]+)["']"""
)
# Read by libraries or set for them, not settings of the simulator.
NOT_SETTINGS = {"DJANGO_SETTINGS_MODULE"}


def variables_read_by_the_code() -> dict[str, str]:
    found = {}
    for directory in CODE_DIRS:
        for path in (PROJECT_DIR / directory).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for name in _READ.findall(path.read_text()):
                found.setdefault(name, str(path.relative_to(PROJECT_DIR)))
    return {name: where for name, where in found.items() if name not in NOT_SETTINGS}


def test_the_scan_finds_the_variables_it_must() -> None:
    found = variables_read_by_the_code()
    must = {"DATABASE_URL", "REDIS_URL", "SIMULATOR_API_KEY", "SIMULATOR_WORKERS", "PROMETHEUS_MULTIPROC_DIR"}
    assert must <= set(found)


def test_every_variable_is_in_the_docs_and_env_example() -> None:
    docs = (PROJECT_DIR / "docs" / "team-setup.md").read_text()
    env_example = (PROJECT_DIR / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", env_example, re.M))
    undocumented = {name: where for name, where in variables_read_by_the_code().items() if f"`{name}`" not in docs}
    unlisted = {name: where for name, where in variables_read_by_the_code().items() if name not in listed}
    assert not undocumented, f"add these to the variable tables of docs/team-setup.md: {undocumented}"
    assert not unlisted, f"add these to .env.example (as NAME=value, or '# NAME=default'): {unlisted}"
