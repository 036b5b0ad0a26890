"""Read docker-compose.yml, .env.example and the Dockerfile the way Docker does, to run the services here.

No Docker engine runs on these machines, so tests/e2e/test_compose.py runs each service's command itself.
This module gives it what a container would get: compose's variable interpolation (``${VAR}``,
``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``, ``${VAR?error}``, ``${VAR:+alt}``, ``$$``), YAML
anchors and merge keys, the image's ``ENV`` (the Dockerfile's last stage) and the service's ``environment``.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from tests.support.server import PROJECT_DIR

COMPOSE_FILE = PROJECT_DIR / "docker-compose.yml"
ENV_EXAMPLE = PROJECT_DIR / ".env.example"
DOCKERFILE = PROJECT_DIR / "Dockerfile"

_REFERENCE = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?|:\+|\+)(?P<arg>.*))?$", re.S)


class MissingVariable(ValueError):
    pass


def read_env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """KEY=VALUE lines as compose reads a .env file (comments, blank lines, optional quotes)."""
    variables = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path}: not KEY=VALUE: {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        variables[name.strip()] = value
    return variables


def referenced_variables(text: str) -> set[str]:
    names = set()
    for match in _REFERENCE.finditer(text):
        name = match.group("plain") or (match.group("braced") and _BRACED.match(match.group("braced")).group("name"))
        if name:
            names.add(name)
    return names


def interpolate(text: str, variables: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        if match.group("plain"):
            return variables.get(match.group("plain"), "")
        braced = _BRACED.match(match.group("braced"))
        if braced is None:
            raise ValueError(f"invalid interpolation: {match.group(0)}")
        name, op, arg = braced.group("name"), braced.group("op"), braced.group("arg") or ""
        value = variables.get(name)
        unset_or_empty = not value
        if op == ":-":
            return interpolate(arg, variables) if unset_or_empty else value  # type: ignore[return-value]
        if op == "-":
            return interpolate(arg, variables) if value is None else value
        if op in (":?", "?") and (unset_or_empty if op == ":?" else value is None):
            raise MissingVariable(f"{name}: {arg}")
        if op == ":+":
            return "" if unset_or_empty else interpolate(arg, variables)
        if op == "+":
            return "" if value is None else interpolate(arg, variables)
        return value or ""

    return _REFERENCE.sub(replace, text)


def _interpolate_tree(node: Any, variables: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, list):
        return [_interpolate_tree(item, variables) for item in node]
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, variables) for key, value in node.items()}
    return node


def load_compose(variables: dict[str, str]) -> dict[str, Any]:
    """The compose file with anchors merged and variables interpolated (the `docker compose config` view)."""
    return _interpolate_tree(yaml.safe_load(COMPOSE_FILE.read_text()), variables)


def as_argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: "" if value is None else str(value) for key, value in environment.items()}


def image_env(dockerfile: Path = DOCKERFILE) -> dict[str, str]:
    """The ENV of the Dockerfile's last stage: what every container of the image starts with."""
    logical_lines, current = [], ""
    for raw in dockerfile.read_text().splitlines():
        if raw.strip().startswith("#") and not current:
            continue
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        logical_lines.append(current + raw)
        current = ""
    env: dict[str, str] = {}
    for line in logical_lines:
        words = line.strip().split(None, 1)
        if not words:
            continue
        if words[0].upper() == "FROM":
            env = {}
        elif words[0].upper() == "ENV" and len(words) == 2:
            for item in shlex.split(words[1]):
                name, _, value = item.partition("=")
                env[name] = value
    return env


def healthcheck_argv(service: dict[str, Any]) -> list[str] | None:
    """The healthcheck's command as an argv (CMD-SHELL runs under /bin/sh -c), None when disabled."""
    check = service.get("healthcheck") or {}
    if check.get("disable"):
        return None
    test = check.get("test")
    if not test:
        return None
    if isinstance(test, str):
        return ["/bin/sh", "-c", test]
    kind, *rest = test
    if kind == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(rest)]
    if kind == "CMD":
        return rest
    return None
