"""Who can open /api/: staff tokens, the environment's management token, staff sessions — nobody else."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import DataError, IntegrityError
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from generators_app.services import do_create_api_key
from simulator_project.api.authentication import SERVICE_USERNAME
from simulator_project.api.exceptions import management_exception_handler

ENV_TOKEN = "mgmt-token-for-tests-0123456789"


def test_staff_token_opens_the_api(staff: APIClient) -> None:
    assert staff.get("/api/deployments/").status_code == 200


def test_staff_token_also_works_as_bearer(staff_token: str) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {staff_token}")
    assert client.get("/api/keys/").status_code == 200


def test_nobody_gets_401_with_the_scheme_to_use(anonymous: APIClient) -> None:
    response = anonymous.get("/api/deployments/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_a_wrong_token_is_401(anonymous: APIClient) -> None:
    anonymous.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert anonymous.get("/api/deployments/").status_code == 401


def test_a_token_header_without_a_value_is_401(anonymous: APIClient) -> None:
    anonymous.credentials(HTTP_AUTHORIZATION="Token")
    assert anonymous.get("/api/deployments/").status_code == 401


def test_a_non_staff_user_is_403(non_staff: APIClient) -> None:
    assert non_staff.get("/api/deployments/").status_code == 403
    assert non_staff.post("/api/keys/", {"name": "sneaky"}, format="json").status_code == 403


@pytest.mark.parametrize("header", ["HTTP_AUTHORIZATION", "HTTP_API_KEY"])
def test_a_data_plane_key_never_opens_the_api(anonymous: APIClient, header: str) -> None:
    secret = do_create_api_key("data-plane").secret
    value = f"Bearer {secret}" if header == "HTTP_AUTHORIZATION" else secret
    anonymous.credentials(**{header: value})
    assert anonymous.get("/api/deployments/").status_code == 401


def test_environment_token_maps_to_a_staff_service_user(anonymous: APIClient, settings) -> None:
    settings.SIMULATOR_MANAGEMENT_TOKEN = ENV_TOKEN
    for scheme in ("Token", "Bearer", "bearer"):
        anonymous.credentials(HTTP_AUTHORIZATION=f"{scheme} {ENV_TOKEN}")
        assert anonymous.get("/api/limit-profiles/").status_code == 200, scheme
    user = get_user_model().objects.get(username=SERVICE_USERNAME)
    assert user.is_staff and not user.has_usable_password()


def test_environment_token_is_compared_whole(anonymous: APIClient, settings) -> None:
    settings.SIMULATOR_MANAGEMENT_TOKEN = ENV_TOKEN
    for wrong in (ENV_TOKEN[:-1], ENV_TOKEN + "x", ENV_TOKEN.upper()):
        anonymous.credentials(HTTP_AUTHORIZATION=f"Token {wrong}")
        assert anonymous.get("/api/limit-profiles/").status_code == 401


def test_no_environment_token_configured_opens_nothing(anonymous: APIClient, settings) -> None:
    settings.SIMULATOR_MANAGEMENT_TOKEN = ""
    anonymous.credentials(HTTP_AUTHORIZATION="Token ")
    assert anonymous.get("/api/limit-profiles/").status_code == 401


def test_a_demoted_service_user_closes_the_environment_token(anonymous: APIClient, settings) -> None:
    settings.SIMULATOR_MANAGEMENT_TOKEN = ENV_TOKEN
    get_user_model().objects.create_user(SERVICE_USERNAME, is_staff=False)
    anonymous.credentials(HTTP_AUTHORIZATION=f"Token {ENV_TOKEN}")
    assert anonymous.get("/api/limit-profiles/").status_code == 401


def test_staff_session_opens_the_browsable_api(anonymous: APIClient) -> None:
    admin = get_user_model().objects.create_user("admin", is_staff=True)
    anonymous.force_login(admin)
    response = anonymous.get("/api/deployments/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"Deployment List" in response.content


def test_api_root_lists_every_resource(staff: APIClient) -> None:
    root = staff.get("/api/").json()
    assert set(root) == {
        "deployments", "keys", "limit-profiles", "latency-profiles", "fault-profiles", "recording-sets", "recordings",
        "jobs",
    }


# --- manage.py management_token ---------------------------------------------------------------------------

def _token_command(*args: str) -> str:
    out = io.StringIO()
    call_command("management_token", *args, stdout=out)
    return out.getvalue().strip()


@pytest.mark.django_db
def test_management_token_command_creates_once_and_rotates() -> None:
    user = get_user_model().objects.create_superuser("admin")
    first = _token_command("--user", "admin")
    assert first == Token.objects.get(user=user).key
    assert _token_command("--user", "admin") == first
    rotated = _token_command("--user", "admin", "--rotate")
    assert rotated != first
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {first}")
    assert client.get("/api/keys/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Token {rotated}")
    assert client.get("/api/keys/").status_code == 200


@pytest.mark.django_db
def test_management_token_command_refuses_unknown_and_non_staff_users() -> None:
    with pytest.raises(CommandError, match="createsuperuser"):
        _token_command("--user", "ghost")
    get_user_model().objects.create_user("viewer")
    with pytest.raises(CommandError, match="not an active staff user"):
        _token_command("--user", "viewer")
    assert not Token.objects.exists()


# --- database errors that slip past the serializers still answer 4xx ------------------------------------------

@pytest.mark.parametrize(
    ("error", "status"),
    [(DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes\nmore"), 400),
     (DataError(""), 400),
     (IntegrityError("duplicate key value violates unique constraint"), 409)],
)
def test_database_errors_become_client_errors(error: Exception, status: int) -> None:
    response = management_exception_handler(error, {})
    assert response is not None and response.status_code == status
    assert "\n" not in response.data["detail"]
