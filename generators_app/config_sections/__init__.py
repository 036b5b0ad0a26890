"""Config-file sections contributed per concern (limits, latency and faults, recordings, ...).

Each module registers its SectionHandlers and deployment fields with generators_app.config_file when
imported; config_file imports this package once its own registry exists. One module per concern keeps
concurrent work from colliding in config_file.py.
"""

import importlib
import pkgutil


def load_all() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
