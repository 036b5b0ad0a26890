"""Load the extensions SIMULATOR_EXTENSIONS names, once per process, when Django starts (apps.py).

Each entry is a dotted module path (``examples.echo_extension``) or a path to a Python file
(``./my_ext.py``, relative to the working directory). Anything wrong (a missing file, an import or syntax
error, no ``register`` function, a ``register`` that raises or registers something invalid) raises
ExtensionLoadError, whose message names the extension, the cause and, where there is one, the file and line:
the start fails there, before the server listens.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from generators_app.extensions.registry import LoadedExtensions

_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class ExtensionLoadError(ImproperlyConfigured):
    """An extension could not be loaded; the message says which and why, in one paragraph."""


def _is_file(entry: str) -> bool:
    return entry.endswith(".py") or "/" in entry or "\\" in entry


def _what(error: BaseException) -> str:
    """``SyntaxError: expected ':'``: the message without the location _where adds."""
    message = error.msg if isinstance(error, SyntaxError) and error.msg else str(error)
    return f"{type(error).__name__}: {message}"


def _where(error: BaseException, extension_file: str | None) -> str:
    """`file.py, line N` of the innermost frame in the extension's own file (or the last frame)."""
    if isinstance(error, SyntaxError) and error.filename:
        return f" ({error.filename}, line {error.lineno})"
    frames = traceback.extract_tb(error.__traceback__)
    own_file = Path(extension_file).resolve() if extension_file else None
    own = [frame for frame in frames if own_file is not None and Path(frame.filename).resolve() == own_file]
    frame = (own or frames or [None])[-1]
    return f" ({frame.filename}, line {frame.lineno})" if frame is not None else ""


def _import(entry: str) -> ModuleType:
    if _is_file(entry):
        path = Path(entry).expanduser().resolve()
        if not path.is_file():
            raise ExtensionLoadError(f"SIMULATOR_EXTENSIONS: extension file '{entry}' does not exist ({path})")
        # Unique per file: two my_ext.py in different folders are two modules.
        digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
        stem = re.sub(r"\W", "_", path.stem)
        module_name = f"simulator_extension_{stem}_{digest}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise ExtensionLoadError(f"SIMULATOR_EXTENSIONS: cannot load '{entry}' as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as error:
            sys.modules.pop(module_name, None)
            raise ExtensionLoadError(
                f"SIMULATOR_EXTENSIONS: extension '{entry}' failed to import: {_what(error)}{_where(error, str(path))}"
            ) from error
        return module
    if not _DOTTED.match(entry):
        raise ExtensionLoadError(f"SIMULATOR_EXTENSIONS: '{entry}' is neither a dotted module path nor a .py file")
    try:
        return importlib.import_module(entry)
    except ModuleNotFoundError as error:
        if error.name and (entry == error.name or entry.startswith(error.name + ".")):
            raise ExtensionLoadError(
                f"SIMULATOR_EXTENSIONS: no module named '{error.name}' (for extension '{entry}'; a dotted path "
                "is imported from the working directory and the installed packages)"
            ) from error
        raise ExtensionLoadError(
            f"SIMULATOR_EXTENSIONS: extension '{entry}' failed to import: {_what(error)}{_where(error, None)}"
        ) from error
    except Exception as error:
        raise ExtensionLoadError(
            f"SIMULATOR_EXTENSIONS: extension '{entry}' failed to import: {_what(error)}{_where(error, None)}"
        ) from error


def load_extensions(entries: Iterable[str], loaded: LoadedExtensions | None = None) -> LoadedExtensions:
    """Import each extension and call its ``register(sim)``; returns the LoadedExtensions (the process-wide
    one unless ``loaded`` is given)."""
    from generators_app.extensions.registry import EXTENSIONS, ExtensionError, ExtensionRegistry

    target = EXTENSIONS if loaded is None else loaded
    for entry in entries:
        entry = entry.strip()
        if not entry or entry in target.names:
            continue
        module = _import(entry)
        register = getattr(module, "register", None)
        if not callable(register):
            raise ExtensionLoadError(
                f"SIMULATOR_EXTENSIONS: extension '{entry}' has no register(sim) function "
                f"({getattr(module, '__file__', entry)})"
            )
        try:
            register(ExtensionRegistry(target, entry))
        except Exception as error:
            kind = "" if isinstance(error, ExtensionError) else f"{type(error).__name__}: "
            raise ExtensionLoadError(
                f"SIMULATOR_EXTENSIONS: register() of extension '{entry}' failed: {kind}{error}"
                f"{_where(error, getattr(module, '__file__', None))}"
            ) from error
        target.names.append(entry)
    try:
        target.validate()
    except ExtensionError as error:
        raise ExtensionLoadError(f"SIMULATOR_EXTENSIONS: {error}") from error
    return target


_loaded_once = False


def load_configured_extensions() -> None:
    """Called once per process from GeneratorsAppConfig.ready()."""
    global _loaded_once
    if _loaded_once:
        return
    from django.conf import settings

    _loaded_once = True
    entries = list(settings.SIMULATOR_EXTENSIONS)
    if entries:
        load_extensions(entries)
