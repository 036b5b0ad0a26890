"""The metrics' arithmetic in one process: pending sums, the flush into prometheus_client, the text format.

Across worker processes (the multiprocess files) is tested end to end in tests/e2e/test_metrics.py.
"""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from generators_app import observability
from generators_app.readiness import _reason


def _sample(name: str, labels: dict[str, str]) -> float:
    observability.flush()
    for family in text_string_to_metric_families(observability.render().decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def _finish(deployment: str, status: int, ttfb: float | None, total: float, prompt: int = 0, completion: int = 0):
    observability.request_started()
    observability.request_finished(deployment, "chat", status, "generate", prompt, completion, ttfb, total)


def test_requests_and_tokens_are_counted_per_label_set() -> None:
    labels = {"deployment": "unit-a", "operation": "chat", "status": "200", "mode": "generate"}
    before = _sample("simulator_requests_total", labels)
    tokens_before = _sample("simulator_prompt_tokens_total", {"deployment": "unit-a", "operation": "chat"})
    _finish("unit-a", 200, 0.002, 0.003, prompt=11, completion=7)
    _finish("unit-a", 200, 0.002, 0.003, prompt=5, completion=1)
    _finish("unit-a", 429, 0.001, 0.001, prompt=100)  # refused: its tokens were not served
    assert _sample("simulator_requests_total", labels) == before + 2
    assert _sample("simulator_requests_total", {**labels, "status": "429"}) >= 1
    assert _sample("simulator_prompt_tokens_total", {"deployment": "unit-a", "operation": "chat"}) == tokens_before + 16


def test_histogram_buckets_are_cumulative_and_sum_exact() -> None:
    labels = {"deployment": "unit-h", "operation": "chat"}
    _finish("unit-h", 200, 0.0007, 0.0007)  # le=0.001
    _finish("unit-h", 200, 0.02, 0.3)  # le=0.025 / le=0.5
    _finish("unit-h", 200, None, 100.0)  # never sent a body byte; total past the last finite bound
    name = "simulator_request_duration_seconds"
    assert _sample(name + "_bucket", {**labels, "le": "0.001"}) == 1
    assert _sample(name + "_bucket", {**labels, "le": "0.25"}) == 1
    assert _sample(name + "_bucket", {**labels, "le": "0.5"}) == 2
    assert _sample(name + "_bucket", {**labels, "le": "60.0"}) == 2
    assert _sample(name + "_bucket", {**labels, "le": "+Inf"}) == 3
    assert _sample(name + "_count", labels) == 3
    assert _sample(name + "_sum", labels) == pytest.approx(100.3007)
    assert _sample("simulator_time_to_first_byte_seconds_count", labels) == 2


def test_rate_limits_faults_and_replay_have_their_own_counters() -> None:
    observability.record_rate_limited("unit-r", "tokens")
    observability.record_rate_limited("unit-r", "tokens")
    observability.record_rate_limited("unit-r", "requests")
    observability.record_fault("unit-r", "truncate:5")
    observability.record_fault("unit-r", "500")
    observability.record_replay(False, deployment="unit-r")
    observability.record_replay(True, deployment="unit-r")
    observability.record_replay(True, deployment="unit-r")
    assert _sample("simulator_rate_limited_total", {"deployment": "unit-r", "reason": "tokens"}) == 2
    assert _sample("simulator_rate_limited_total", {"deployment": "unit-r", "reason": "requests"}) == 1
    assert _sample("simulator_faults_injected_total", {"deployment": "unit-r", "kind": "truncate"}) == 1
    assert _sample("simulator_faults_injected_total", {"deployment": "unit-r", "kind": "500"}) == 1
    assert _sample("simulator_replay_lookups_total", {"deployment": "unit-r", "result": "hit"}) == 2
    assert _sample("simulator_replay_lookups_total", {"deployment": "unit-r", "result": "miss"}) == 1


def test_in_flight_follows_started_and_finished() -> None:
    base = _sample("simulator_requests_in_flight", {})
    observability.request_started()
    observability.request_started()
    assert _sample("simulator_requests_in_flight", {}) == base + 2
    observability.request_finished("unit-f", "chat", 200, "generate", 0, 0, 0.001, 0.001)
    observability.request_finished("unit-f", "chat", 499, "generate", 0, 0, None, 0.001)
    assert _sample("simulator_requests_in_flight", {}) == base


def test_readiness_reasons_never_show_credentials() -> None:
    reason = _reason(ConnectionError("Error connecting to redis://:s3cret@cache:6379/0"))
    assert "s3cret" not in reason
    assert reason.startswith("unreachable: ConnectionError")
    assert _reason(TimeoutError()) == "unreachable: no answer within the readiness timeout"
