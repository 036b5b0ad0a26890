"""Who may call /api/: staff users with a DRF token, or holders of SIMULATOR_MANAGEMENT_TOKEN.

Data-plane API keys (generators_app.ApiKey) are a different table and never authenticate here.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.request import Request

SERVICE_USERNAME = "simulator-management"
_SCHEMES = (b"token", b"bearer")


def management_service_user() -> AbstractBaseUser:
    """The staff user that SIMULATOR_MANAGEMENT_TOKEN acts as (created on first use, no password)."""
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        username=SERVICE_USERNAME, defaults={"is_staff": True, "is_active": True}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    elif not (user.is_staff and user.is_active):
        # Someone demoted the service user in admin: the environment token then opens nothing.
        raise exceptions.AuthenticationFailed("The management service user is disabled.")
    return user


class ManagementTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <value>`` or ``Authorization: Bearer <value>``.

    The value is first compared (in constant time) with SIMULATOR_MANAGEMENT_TOKEN, then looked up as a
    staff user's DRF token. Any other scheme is left to the next class (session auth).
    """

    keyword = "Token"

    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, object] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in _SCHEMES:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header: give exactly one token after the scheme.")
        try:
            value = parts[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Invalid token header: the token has invalid characters.") from None
        configured = settings.SIMULATOR_MANAGEMENT_TOKEN
        if configured and hmac.compare_digest(value.encode(), configured.encode()):
            return management_service_user(), None
        return self.authenticate_credentials(value)
