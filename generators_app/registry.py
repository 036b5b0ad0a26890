"""The data plane's in-process view of configuration.

The hot path never awaits the ORM: it reads an immutable snapshot. The snapshot is loaded once per process,
then reloaded when the version stamp in the database changes (a background task polls it every
SIMULATOR_CONFIG_POLL_SECONDS) or at once when this process itself saved a change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from asgiref.sync import sync_to_async
from django.conf import settings

from generators_app.catalogue import ModelSpec, get_model
from limits_app.config import FaultProfileConfig, LatencyProfileConfig, LimitProfileConfig
from recordings_app.config import RecordingSetConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeploymentConfig:
    name: str
    model: ModelSpec
    mode: str
    output_tokens_mean: int
    output_tokens_std: int
    tool_call_probability: float = 0.5
    limit_profile: LimitProfileConfig | None = None
    latency_profile: LatencyProfileConfig | None = None
    fault_profile: FaultProfileConfig | None = None
    recording_set: RecordingSetConfig | None = None
    upstream_endpoint: str = ""
    # Resolved from upstream_key or the environment variable upstream_key_env; kept in memory only.
    upstream_key: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class ConfigSnapshot:
    version: int
    deployments: Mapping[str, DeploymentConfig] = field(default_factory=dict)
    key_hashes: frozenset[str] = frozenset()


def load_snapshot() -> ConfigSnapshot:
    """Read everything the data plane needs in one go (sync: runs in a thread, off the hot path)."""
    from generators_app.models import ApiKey, Deployment
    from generators_app.services import read_config_version

    version = read_config_version()
    deployments = {}
    rows = Deployment.objects.filter(enabled=True).select_related(
        "limit_profile", "latency_profile", "fault_profile", "recording_set"
    )
    for row in rows:
        spec = get_model(row.model)
        if spec is None:
            logger.warning("deployment %s names unknown model %s; skipped", row.name, row.model)
            continue
        deployments[row.name] = DeploymentConfig(
            name=row.name,
            model=spec,
            mode=row.mode,
            output_tokens_mean=row.output_tokens_mean,
            output_tokens_std=row.output_tokens_std,
            tool_call_probability=row.tool_call_probability,
            limit_profile=LimitProfileConfig.from_model(row.limit_profile) if row.limit_profile else None,
            latency_profile=LatencyProfileConfig.from_model(row.latency_profile) if row.latency_profile else None,
            fault_profile=FaultProfileConfig.from_model(row.fault_profile) if row.fault_profile else None,
            recording_set=RecordingSetConfig.from_model(row.recording_set) if row.recording_set else None,
            upstream_endpoint=row.upstream_endpoint,
            upstream_key=row.upstream_key or (os.environ.get(row.upstream_key_env, "") if row.upstream_key_env else ""),
        )
    key_hashes = frozenset(ApiKey.objects.filter(enabled=True).values_list("key_hash", flat=True))
    return ConfigSnapshot(version=version, deployments=MappingProxyType(deployments), key_hashes=key_hashes)


class ConfigRegistry:
    def __init__(self) -> None:
        self._snapshot: ConfigSnapshot | None = None
        self._stale = True
        self._load_lock: asyncio.Lock | None = None
        self._watcher: asyncio.Task | None = None

    def invalidate_local(self) -> None:
        """Called after this process committed a change: the next request reloads."""
        self._stale = True

    async def current(self) -> ConfigSnapshot:
        snapshot = self._snapshot
        if snapshot is not None and not self._stale:
            return snapshot
        return await self._reload()

    async def _reload(self) -> ConfigSnapshot:
        if self._load_lock is None:
            self._load_lock = asyncio.Lock()
        async with self._load_lock:
            if self._snapshot is None or self._stale:
                self._stale = False
                self._snapshot = await sync_to_async(load_snapshot, thread_sensitive=False)()
                self._ensure_watcher()
        return self._snapshot

    def _ensure_watcher(self) -> None:
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        from generators_app.services import read_config_version

        interval = settings.SIMULATOR_CONFIG_POLL_SECONDS
        read_version = sync_to_async(read_config_version, thread_sensitive=False)
        while True:
            await asyncio.sleep(interval)
            try:
                version = await read_version()
            except Exception:  # the database may be restarting: keep serving the last snapshot
                logger.warning("could not read the configuration version; keeping the cached one", exc_info=True)
                continue
            if self._snapshot is None or version != self._snapshot.version:
                self._stale = True

    def reset(self) -> None:
        """Forget everything (tests)."""
        if self._watcher is not None:
            with contextlib.suppress(RuntimeError):
                self._watcher.cancel()
        self._snapshot, self._stale, self._watcher, self._load_lock = None, True, None, None


registry = ConfigRegistry()
