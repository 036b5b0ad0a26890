"""Actions on deployments and keys: the one place that admin, the config file, commands and the API call."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F

from generators_app.catalogue import MODELS, get_model
from generators_app.models import ApiKey, ConfigStamp, Deployment

logger = logging.getLogger(__name__)

DEFAULT_KEY_NAME = "default"


def hash_api_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def generate_api_key_secret() -> str:
    return "sim-" + secrets.token_urlsafe(24)


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    secret: str  # shown once to whoever created it, never stored


def do_create_api_key(name: str, secret: str | None = None) -> CreatedKey:
    secret = secret or generate_api_key_secret()
    key = ApiKey.objects.create(name=name, key_hash=hash_api_key(secret), key_prefix=secret[:8])
    return CreatedKey(key=key, secret=secret)


def do_set_api_key(name: str, secret: str) -> ApiKey:
    """Create the named key, or point it at a new secret; idempotent for the same secret."""
    key_hash = hash_api_key(secret)
    key, created = ApiKey.objects.get_or_create(
        name=name, defaults={"key_hash": key_hash, "key_prefix": secret[:8]}
    )
    if not created and (key.key_hash != key_hash or not key.enabled):
        key.key_hash, key.key_prefix, key.enabled = key_hash, secret[:8], True
        key.save()
    return key


def do_upsert_deployment(name: str, **fields: object) -> tuple[Deployment, bool]:
    """Create or update a deployment by name; unknown models are refused."""
    model = fields.get("model")
    if model is not None and get_model(str(model)) is None:
        raise ValueError(f"unknown model '{model}'")
    deployment = Deployment.objects.filter(name=name).first()
    created = deployment is None
    if created:
        if model is None:
            raise ValueError(f"deployment '{name}' needs a model")
        deployment = Deployment(name=name)
    for attr, value in fields.items():
        setattr(deployment, attr, value)
    deployment.full_clean()
    deployment.save()
    return deployment, created


def do_create_deployment(**fields: object) -> Deployment:
    """Create a deployment from already type-checked values; the model's rules (clean) decide the rest."""
    deployment = Deployment(**fields)
    deployment.full_clean()
    deployment.save()
    return deployment


def do_update_deployment(deployment: Deployment, **fields: object) -> Deployment:
    """Change the given fields (a name change included) and re-check the whole deployment."""
    for attr, value in fields.items():
        setattr(deployment, attr, value)
    deployment.full_clean()
    deployment.save()
    return deployment


def do_rotate_api_key(key: ApiKey, secret: str | None = None) -> CreatedKey:
    """Give a key a new secret (the old one stops working on every process); the new one is shown once."""
    secret = secret or generate_api_key_secret()
    key.key_hash, key.key_prefix = hash_api_key(secret), secret[:8]
    key.save(update_fields=["key_hash", "key_prefix"])
    return CreatedKey(key=key, secret=secret)


def api_key_secret_in_use(secret: str) -> bool:
    return ApiKey.objects.filter(key_hash=hash_api_key(secret)).exists()


def do_seed_default_deployments() -> list[str]:
    """At first start, one deployment per catalogue model, named like the model."""
    created = []
    if Deployment.objects.exists():
        return created
    for name in MODELS:
        Deployment.objects.create(name=name, model=name)
        created.append(name)
    return created


def do_ensure_default_key(configured_secret: str) -> str | None:
    """Make sure the data plane has a key. Returns a freshly generated secret, to print once, or None."""
    if configured_secret:
        do_set_api_key(DEFAULT_KEY_NAME, configured_secret)
        return None
    if ApiKey.objects.exists():
        return None
    return do_create_api_key(DEFAULT_KEY_NAME).secret


def bump_config_version() -> None:
    """Tell every process that configuration changed (each polls the stamp, see registry.py)."""

    def bump() -> None:
        updated = ConfigStamp.objects.filter(pk=1).update(version=F("version") + 1)
        if not updated:
            ConfigStamp.objects.get_or_create(pk=1, defaults={"version": 1})
        from generators_app.registry import registry

        registry.invalidate_local()

    transaction.on_commit(bump)


def read_config_version() -> int:
    return ConfigStamp.objects.filter(pk=1).values_list("version", flat=True).first() or 0
