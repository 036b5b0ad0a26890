"""Fixtures for end-to-end tests: one real simulator process per session, driven over HTTP.

Everything collected under tests/e2e is marked ``e2e`` so ``pytest -m "not e2e"`` gives the fast suite.
"""

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.server import DEFAULT_API_KEY, SimulatorServer

E2E_DIR = Path(__file__).resolve().parent
AZURE_API_VERSION = "2024-10-21"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark e2e tests by location, so no test author can forget the marker."""
    for item in items:
        if item.path.is_relative_to(E2E_DIR):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def api_key() -> str:
    """The key the session's server accepts (given to it as SIMULATOR_API_KEY)."""
    return DEFAULT_API_KEY


@pytest.fixture(scope="session")
def simulator(api_key: str) -> Iterator[SimulatorServer]:
    """One server for the whole e2e session (startup migrates and seeds, so it is not per test)."""
    with SimulatorServer(api_key=api_key, workers=1) as server:
        yield server


@pytest.fixture(scope="session")
def base_url(simulator: SimulatorServer) -> str:
    return simulator.base_url


@pytest.fixture(scope="session")
def azure_client(base_url: str, api_key: str) -> Iterator[openai.AzureOpenAI]:
    """The Azure SDK client, deployment-based URLs, GA api-version; no retries so errors surface."""
    client = openai.AzureOpenAI(azure_endpoint=base_url, api_key=api_key, api_version=AZURE_API_VERSION, max_retries=0)
    yield client
    client.close()


@pytest.fixture(scope="session")
def openai_client(base_url: str, api_key: str) -> Iterator[openai.OpenAI]:
    """The plain OpenAI client against the OpenAI-style /v1 surface."""
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=api_key, max_retries=0)
    yield client
    client.close()


@pytest.fixture(scope="session")
def aoai_v1_client(base_url: str, api_key: str) -> Iterator[openai.OpenAI]:
    """The OpenAI client against Azure's /openai/v1 surface (the "v1 API" without api-version)."""
    client = openai.OpenAI(base_url=f"{base_url}/openai/v1", api_key=api_key, max_retries=0)
    yield client
    client.close()


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    """A raw client with no default auth header, for wire-level checks (status, headers, SSE framing).

    Function-scoped so cookies from an admin login in one test never leak into another.
    """
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        yield client
