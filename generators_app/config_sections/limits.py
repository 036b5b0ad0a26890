"""The config file's ``limit_profiles:`` section and the deployments' ``limit_profile`` field (SPEC §10).

```yaml
limit_profiles:
  - name: standard-100k
    tokens_per_minute: 100000
    requests_per_minute: 600          # default: 6 per 1000 TPM
    request_window_s: 10              # 10 or 1
    default_max_tokens: 16            # the estimate used when a request has no max_tokens
    on_limit: reject                  # or queue
    queue_max_wait_ms: 0
deployments:
  - name: gpt-4o-mini
    model: gpt-4o-mini
    limit_profile: standard-100k
```
"""

from __future__ import annotations

from typing import Any

import yaml

from generators_app.config_file import (
    Field,
    ParseContext,
    SectionHandler,
    choice_field,
    integer_field,
    reference_field,
    register_deployment_field,
    register_section,
    upsert_by_name,
)
from limits_app.models import LimitProfile

REQUEST_WINDOWS = (10, 1)


def _read_request_window(ctx: ParseContext, node: yaml.Node, what: str) -> dict[str, Any]:
    value = ctx.integer(node, what)
    if value not in REQUEST_WINDOWS:
        raise ctx.error(node, f"{what} must be 10 or 1 (seconds), got {value}")
    return {"request_window_s": value}


def _on_limit_choices() -> list[str]:
    return [value for value, _ in LimitProfile.OnLimit.choices]


LIMIT_PROFILES = SectionHandler(
    key="limit_profiles",
    item_label="limit profile",
    model=LimitProfile,
    fields={
        "tokens_per_minute": integer_field("tokens_per_minute", minimum=1, required=True),
        "requests_per_minute": integer_field("requests_per_minute", minimum=1),
        "request_window_s": Field("request_window_s", _read_request_window),
        "default_max_tokens": integer_field("default_max_tokens", minimum=0),
        "on_limit": choice_field("on_limit", _on_limit_choices),
        "queue_max_wait_ms": integer_field("queue_max_wait_ms", minimum=0, maximum=600_000),
    },
    apply=upsert_by_name(LimitProfile),
)

register_section(LIMIT_PROFILES, before="deployments")
register_deployment_field(reference_field("limit_profile", "limit_profiles", LimitProfile))
