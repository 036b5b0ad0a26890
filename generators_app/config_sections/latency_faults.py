"""The config file's ``latency_profiles:`` and ``fault_profiles:`` sections and the deployments'
``latency_profile`` and ``fault_profile`` fields (SPEC §5, §6, §10; docs/latency-faults.md).

```yaml
latency_profiles:
  - name: realistic-4o-mini
    ttft_ms: {mean: 350, std: 80}     # time to first token
    itl_ms: {mean: 12, std: 3}        # time per further token
    request_ms: {mean: 60, std: 15}   # embeddings, images, audio
    per_input_token_ms: 0.005
    inflight_growth: 0                # optional: +x of the latency per request in flight
fault_profiles:
  - name: flaky
    error_rate: 0.05
    kinds: {"500": 3, "503": 1, "429": 1, timeout: 1, reset: 1, "truncate:5": 1, malformed: 1}
    timeout_ms: 30000
    fail_first: 0
    content_filter_terms: ["forbidden phrase", "completion:violence:another phrase"]
deployments:
  - name: gpt-4o-mini
    model: gpt-4o-mini
    latency_profile: realistic-4o-mini
    fault_profile: flaky
```
"""

from __future__ import annotations

from typing import Any

import yaml
from django.forms.models import model_to_dict

from generators_app.config_file import (
    Field,
    MappingReader,
    ParseContext,
    SectionHandler,
    integer_field,
    mean_std_field,
    number_field,
    reference_field,
    register_deployment_field,
    register_section,
    upsert_by_name,
)
from limits_app.faults import parse_fault, parse_term
from limits_app.models import FaultProfile, LatencyProfile
from limits_app.validation import MAX_INFLIGHT_GROWTH, MAX_PER_INPUT_TOKEN_MS, latency_problems

MAX_TIMEOUT_MS = 600_000
# model attribute -> the YAML key that sets it, to point a problem at the right place
_LATENCY_KEYS = {
    "ttft_mean_ms": "ttft_ms", "ttft_std_ms": "ttft_ms", "itl_mean_ms": "itl_ms", "itl_std_ms": "itl_ms",
    "request_mean_ms": "request_ms", "request_std_ms": "request_ms", "per_input_token_ms": "per_input_token_ms",
    "inflight_growth": "inflight_growth",
}


def _check_latency(ctx: ParseContext, reader: MappingReader, values: dict[str, Any]) -> None:
    """The management API's rules (limits_app.validation), on the values merged with the stored profile."""
    name = ctx.string(reader.value_node("name"), "name")
    stored = LatencyProfile.objects.filter(name=name).first()
    merged = {**(model_to_dict(stored) if stored is not None else {}), **values}
    for attr, problem in latency_problems(merged).items():
        key = _LATENCY_KEYS.get(attr, attr)
        node = reader.value_node(key) if key in reader else reader.node
        raise ctx.error(node, f"{key}: {problem}")


LATENCY_PROFILES = SectionHandler(
    key="latency_profiles",
    item_label="latency profile",
    model=LatencyProfile,
    fields={
        "ttft_ms": mean_std_field("ttft_ms", "ttft_mean_ms", "ttft_std_ms"),
        "itl_ms": mean_std_field("itl_ms", "itl_mean_ms", "itl_std_ms"),
        "request_ms": mean_std_field("request_ms", "request_mean_ms", "request_std_ms"),
        "per_input_token_ms": number_field("per_input_token_ms", maximum=MAX_PER_INPUT_TOKEN_MS),
        "inflight_growth": number_field("inflight_growth", maximum=MAX_INFLIGHT_GROWTH),
    },
    apply=upsert_by_name(LatencyProfile),
    entry_checks=[_check_latency],
)


def _read_kinds(ctx: ParseContext, node: yaml.Node, what: str) -> dict[str, Any]:
    kinds: dict[str, float] = {}
    for key_node, value_node in ctx.pairs(node, what):
        kind = str(ctx.scalar(key_node, f"a key of {what}"))
        try:
            fault = parse_fault(kind)
        except ValueError as problem:
            raise ctx.error(key_node, f"{what}: {problem}") from None
        canonical = f"{fault.kind}:{fault.argument}" if fault.argument is not None else fault.kind
        weight = ctx.number(value_node, f"the weight of '{kind}' in {what}", minimum=0)
        kinds[canonical] = int(weight) if weight.is_integer() else weight
    return {"kinds": kinds}


def _read_terms(ctx: ParseContext, node: yaml.Node, what: str) -> dict[str, Any]:
    terms = []
    for item in ctx.sequence(node, what):
        term = ctx.string(item, f"each item of {what}")
        try:
            parse_term(term)
        except ValueError as problem:
            raise ctx.error(item, f"{what}: {problem}") from None
        terms.append(term)
    return {"content_filter_terms": terms}


FAULT_PROFILES = SectionHandler(
    key="fault_profiles",
    item_label="fault profile",
    model=FaultProfile,
    fields={
        "error_rate": number_field("error_rate", maximum=1),
        "kinds": Field("kinds", _read_kinds),
        "timeout_ms": integer_field("timeout_ms", maximum=MAX_TIMEOUT_MS),
        "fail_first": integer_field("fail_first"),
        "content_filter_terms": Field("content_filter_terms", _read_terms),
    },
    apply=upsert_by_name(FaultProfile),
)

register_section(LATENCY_PROFILES, before="deployments")
register_section(FAULT_PROFILES, before="deployments")
register_deployment_field(reference_field("latency_profile", "latency_profiles", LatencyProfile))
register_deployment_field(reference_field("fault_profile", "fault_profiles", FaultProfile))
