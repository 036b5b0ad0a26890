"""Suite-wide pytest configuration, kept minimal on purpose.

pytest-django is configured in pyproject.toml; the end-to-end fixtures (a real server, SDK clients) live
in tests/e2e/conftest.py so that unit tests never pay for starting a server.
"""

from pathlib import Path

import pytest

REFERENCE_DIR = Path(__file__).resolve().parent / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The copied ground truth (recordings, spec); tests read it here, never from ../shared."""
    return REFERENCE_DIR
