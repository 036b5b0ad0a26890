"""The config file's ``recording_sets:`` section and the deployments' record/replay fields (SPEC §3, §10).

```yaml
recording_sets:
  - name: golden
    description: answers recorded from the real service
    ignore_fields: [stream, user, seed, metadata, stream_options]
    timing_factor: 1.0                # 0 = replay as fast as possible
    save_errors: false                # record upstream error answers too
deployments:
  - name: gpt-4o-mini
    model: gpt-4o-mini
    mode: replay_or_record            # generate | replay | replay_or_generate | replay_or_record | record
    recording_set: golden
    upstream_endpoint: https://example.openai.azure.com   # record modes only
    upstream_key_env: AZURE_OPENAI_KEY                    # or upstream_key: … (write-only)
```

``upstream_key`` is write-only: it is stored for the server to use and never printed, reported or logged.
``upstream_key_env`` names an environment variable the server reads at run time; giving one clears the other.
"""

from __future__ import annotations

import os
from typing import Any

import yaml

from generators_app.config_file import (
    DEPLOYMENTS,
    Field,
    MappingReader,
    ParseContext,
    SectionHandler,
    boolean_field,
    number_field,
    reference_field,
    register_deployment_field,
    register_section,
    string_list_field,
    upsert_by_name,
)
from generators_app.models import RECORDING_MODES, Deployment, DeploymentMode
from recordings_app.models import RecordingSet

MAX_TIMING_FACTOR = 1000.0


def _read_description(ctx: ParseContext, node: yaml.Node, what: str) -> dict[str, Any]:
    return {"description": ctx.string(node, what, allow_empty=True)}


RECORDING_SETS = SectionHandler(
    key="recording_sets",
    item_label="recording set",
    model=RecordingSet,
    fields={
        "description": Field("description", _read_description),
        "ignore_fields": string_list_field("ignore_fields"),
        "timing_factor": number_field("timing_factor", minimum=0, maximum=MAX_TIMING_FACTOR),
        "save_errors": boolean_field("save_errors"),
    },
    apply=upsert_by_name(RecordingSet),
)


def _read_upstream_endpoint(ctx: ParseContext, node: yaml.Node, what: str) -> dict[str, Any]:
    endpoint = ctx.string(node, what)
    if "@" in endpoint.split("//", 1)[-1].split("/", 1)[0]:
        raise ctx.error(node, f"{what} must not carry credentials; use upstream_key_env or upstream_key")
    return {"upstream_endpoint": endpoint.rstrip("/")}


def _read_upstream_key(ctx: ParseContext, node: yaml.Node, what: str) -> dict[str, Any]:
    return {"upstream_key": ctx.string(node, what), "upstream_key_env": ""}


def _read_upstream_key_env(ctx: ParseContext, node: yaml.Node, what: str) -> dict[str, Any]:
    # The stored key would win over the variable (registry.load_snapshot), so naming a variable clears it.
    return {"upstream_key_env": ctx.string(node, what), "upstream_key": ""}


def _check_record_settings(ctx: ParseContext, reader: MappingReader, values: dict[str, Any]) -> None:
    """A replay or record mode needs a recording set; a record mode an endpoint and a key it can read."""
    name = ctx.string(reader.value_node("name"), "name")
    existing = Deployment.objects.filter(name=name).first()
    mode = values.get("mode", existing.mode if existing else DeploymentMode.GENERATE)
    if mode == DeploymentMode.GENERATE:
        return
    where = reader.value_node("mode") if "mode" in reader else reader.node
    if "recording_set" not in values and (existing is None or existing.recording_set_id is None):
        raise ctx.error(where, f"mode '{mode}' needs a recording_set")
    if mode not in RECORDING_MODES:
        return
    endpoint = values.get("upstream_endpoint", existing.upstream_endpoint if existing else "")
    if not endpoint:
        raise ctx.error(where, f"mode '{mode}' needs an upstream_endpoint")
    if "upstream_key_env" in reader:
        variable = values["upstream_key_env"]
        if not os.environ.get(variable, "").strip():
            node = reader.value_node("upstream_key_env")
            raise ctx.error(node, f"upstream_key_env: the environment variable '{variable}' is not set or is empty")


register_section(RECORDING_SETS, before="deployments")
register_deployment_field(reference_field("recording_set", "recording_sets", RecordingSet))
register_deployment_field(Field("upstream_endpoint", _read_upstream_endpoint))
register_deployment_field(Field("upstream_key", _read_upstream_key))
register_deployment_field(Field("upstream_key_env", _read_upstream_key_env))
DEPLOYMENTS.at_most_one.append(("upstream_key", "upstream_key_env"))
DEPLOYMENTS.entry_checks.append(_check_record_settings)
