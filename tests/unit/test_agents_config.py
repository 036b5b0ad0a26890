"""`tool_call_probability` in the config file: the deployments' knob for `tool_choice: auto`."""

from __future__ import annotations

import pytest

from generators_app.config_file import ConfigError, apply_config_text
from generators_app.models import Deployment


@pytest.mark.django_db
def test_tool_call_probability_is_set_and_bounded() -> None:
    apply_config_text("deployments:\n  - name: agent\n    model: gpt-4o-mini\n    tool_call_probability: 0.9\n")
    assert Deployment.objects.get(name="agent").tool_call_probability == 0.9
    with pytest.raises(ConfigError) as error:
        apply_config_text("deployments:\n  - name: agent\n    model: gpt-4o-mini\n    tool_call_probability: 1.5\n")
    assert error.value.line == 4
    assert Deployment.objects.get(name="agent").tool_call_probability == 0.9
