"""The data plane's configuration snapshot: loaded once, reloaded when the version stamp moves."""

from __future__ import annotations

import asyncio

import pytest

from generators_app.registry import load_snapshot, registry
from generators_app.services import do_create_api_key, do_upsert_deployment, hash_api_key, read_config_version


@pytest.mark.django_db(transaction=True)
def test_saving_configuration_bumps_the_version_and_the_snapshot_follows() -> None:
    before = read_config_version()
    do_upsert_deployment("unit-bot", model="gpt-4o-mini")
    created = do_create_api_key("unit-key")
    assert read_config_version() > before

    snapshot = load_snapshot()
    assert snapshot.deployments["unit-bot"].model.version_string == "gpt-4o-mini-2024-07-18"
    assert hash_api_key(created.secret) in snapshot.key_hashes
    assert created.secret not in repr(snapshot)


@pytest.mark.django_db(transaction=True)
def test_registry_reloads_after_a_local_change() -> None:
    registry.reset()

    async def deployment_names() -> set[str]:
        return set((await registry.current()).deployments)

    async def scenario() -> None:
        assert "late-bot" not in await deployment_names()
        from asgiref.sync import sync_to_async

        await sync_to_async(do_upsert_deployment)("late-bot", model="gpt-4.1")
        assert "late-bot" in await deployment_names()
        registry.reset()

    asyncio.run(scenario())


@pytest.mark.django_db
def test_unknown_models_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown model"):
        do_upsert_deployment("bad", model="gpt-9")
