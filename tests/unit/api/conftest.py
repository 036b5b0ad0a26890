"""Clients for the management API: a staff user with a DRF token, a non-staff user, and nobody."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


@pytest.fixture
def staff_token(db) -> str:
    user = get_user_model().objects.create_user("ops", is_staff=True)
    return Token.objects.create(user=user).key


@pytest.fixture
def staff(staff_token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {staff_token}")
    return client


@pytest.fixture
def non_staff(db) -> APIClient:
    user = get_user_model().objects.create_user("viewer")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def anonymous(db) -> APIClient:
    return APIClient()


def field_errors(response) -> dict:
    """The 400 body: field name -> list of messages."""
    assert response.status_code == 400, (response.status_code, response.content)
    return response.json()
