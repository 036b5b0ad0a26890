"""The deployments' agent field in the config file (docs/agents.md).

```yaml
deployments:
  - name: gpt-4o-mini
    model: gpt-4o-mini
    tool_call_probability: 0.8   # with tools and tool_choice "auto": how often the answer is a tool call
```
"""

from __future__ import annotations

from generators_app.config_file import number_field, register_deployment_field

register_deployment_field(number_field("tool_call_probability", minimum=0, maximum=1))
