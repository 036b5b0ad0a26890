"""generators_app.shaping: latency deadlines and faults on real answers of the generators."""

from __future__ import annotations

import time
from itertools import pairwise
from types import MappingProxyType
from typing import Any

import orjson
import pytest

from generators_app import operations, shaping
from generators_app.answers import DroppedConnection, JsonAnswer, StreamAnswer
from generators_app.catalogue import Operation, get_model
from generators_app.errors import ApiError, Surface
from generators_app.pipeline import DataPlaneRequest
from generators_app.registry import DeploymentConfig
from limits_app import latency
from limits_app.config import FaultProfileConfig, LatencyProfileConfig
from limits_app.faults import fail_first_counters
from tests.support.reference import load_cassette

CHAT_QUERY = b"api-version=2024-10-21"
MESSAGES = [{"role": "user", "content": "What is 4200 + 42?"}]


def latency_profile(**values: float) -> LatencyProfileConfig:
    fields = {"ttft_mean_ms": 0.0, "ttft_std_ms": 0.0, "itl_mean_ms": 0.0, "itl_std_ms": 0.0, "request_mean_ms": 0.0,
              "request_std_ms": 0.0, "per_input_token_ms": 0.0, "inflight_growth": 0.0}
    fields.update(values)
    return LatencyProfileConfig(name="lp", **fields)


def fault_profile(**values: Any) -> FaultProfileConfig:
    fields: dict[str, Any] = {"name": "fp", "error_rate": 0.0, "kinds": {}, "timeout_ms": 30_000, "fail_first": 0,
                              "content_filter_terms": (), "revision": "r"}
    fields.update(values)
    fields["kinds"] = MappingProxyType(dict(fields["kinds"]))
    return FaultProfileConfig(**fields)


def deployment(model: str = "gpt-4o-mini", name: str = "d", **profiles: Any) -> DeploymentConfig:
    spec = get_model(model)
    assert spec is not None
    return DeploymentConfig(name=name, model=spec, mode="generate", output_tokens_mean=30, output_tokens_std=0,
                            **profiles)


def request(headers: dict[str, str] | None = None, surface: str = Surface.AZURE,
            arrived_at: float = 0.0) -> DataPlaneRequest:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return DataPlaneRequest("POST", "/x", CHAT_QUERY, raw, b"", Operation.CHAT, surface, "d", arrived_at=arrived_at)


def shaped(dep: DeploymentConfig, payload: dict[str, Any], headers: dict[str, str] | None = None,
           operation: Operation = Operation.CHAT, arrived_at: float = 100.0) -> Any:
    prepared = operations.prepare(operation, payload, dep)
    plan = shaping.plan(request(headers, arrived_at=arrived_at), dep, prepared)
    answer = prepared.generate([])
    return plan.apply(answer) if plan is not None else answer


@pytest.fixture(autouse=True)
def _fresh_state() -> None:
    fail_first_counters.reset()
    latency.in_flight.clear()


def test_no_profiles_and_no_headers_is_the_untouched_fast_path() -> None:
    dep = deployment()
    prepared = operations.prepare(Operation.CHAT, {"messages": MESSAGES}, dep)
    assert shaping.plan(request(), dep, prepared) is None
    zero = deployment(latency_profile=latency_profile(inflight_growth=1))
    assert shaping.plan(request(), zero, prepared) is None
    answer = shaped(zero, {"messages": MESSAGES, "stream": True})
    assert answer.frame_deadlines == () and answer.cut_after is None


def test_json_answer_is_due_ttft_plus_tokens_times_itl_after_arrival() -> None:
    dep = deployment(latency_profile=latency_profile(ttft_mean_ms=200, itl_mean_ms=10))
    answer = shaped(dep, {"messages": MESSAGES, "max_tokens": 25}, arrived_at=100.0)
    assert isinstance(answer, JsonAnswer) and answer.completion_tokens == 25
    assert answer.deliver_at == pytest.approx(100.0 + 0.200 + 25 * 0.010)


def test_stream_paces_each_token_frame_and_sends_the_rest_at_once() -> None:
    dep = deployment(latency_profile=latency_profile(ttft_mean_ms=300, itl_mean_ms=20))
    answer = shaped(dep, {"messages": MESSAGES, "max_tokens": 12, "stream": True,
                          "stream_options": {"include_usage": True}}, arrived_at=50.0)
    assert isinstance(answer, StreamAnswer)
    deadlines = answer.frame_deadlines
    assert len(deadlines) == 12  # one per token
    assert deadlines[0] == pytest.approx(50.3)
    assert [round(b - a, 6) for a, b in pairwise(deadlines)] == [0.02] * 11
    paced = answer.frames[answer.first_token_frame: answer.first_token_frame + 12]
    assert all(b'"delta":{"content":' in frame for frame in paced)
    after = answer.frames[answer.first_token_frame + 12:]
    assert b'"finish_reason":"length"' in after[0] and b'"usage":{' in after[1] and after[2] == b"data: [DONE]\n\n"


def test_embeddings_take_the_request_latency_plus_per_input_token() -> None:
    dep = deployment("text-embedding-3-small", latency_profile=latency_profile(
        ttft_mean_ms=999, request_mean_ms=80, per_input_token_ms=2))
    answer = shaped(dep, {"input": "one two three four"}, operation=Operation.EMBEDDINGS, arrived_at=10.0)
    assert answer.deliver_at == pytest.approx(10.0 + 0.080 + 4 * 0.002)


def test_latency_header_overrides_the_profile(settings: Any) -> None:
    dep = deployment(latency_profile=latency_profile(ttft_mean_ms=5000))
    answer = shaped(dep, {"messages": MESSAGES, "max_tokens": 4}, {"x-simulator-latency-ms": "120,5"}, arrived_at=1.0)
    assert answer.deliver_at == pytest.approx(1.0 + 0.120 + 4 * 0.005)
    stream = shaped(deployment(), {"messages": MESSAGES, "max_tokens": 3, "stream": True},
                    {"x-simulator-latency-ms": "300"}, arrived_at=1.0)
    assert list(stream.frame_deadlines) == pytest.approx([1.3, 1.3, 1.3])  # first token at 300 ms, no ITL
    settings.SIMULATOR_ALLOW_OVERRIDES = False
    ignored = shaped(deployment(), {"messages": MESSAGES, "max_tokens": 4},
                     {"x-simulator-latency-ms": "120", "x-simulator-fault": "500"})
    assert isinstance(ignored, JsonAnswer) and ignored.deliver_at == 0.0


def test_bad_override_header_is_a_400() -> None:
    with pytest.raises(ApiError) as caught:
        shaped(deployment(), {"messages": MESSAGES}, {"x-simulator-fault": "explode"})
    assert caught.value.status == 400
    assert caught.value.body["error"]["param"] == "x-simulator-fault"
    assert "unknown fault 'explode'" in caught.value.body["error"]["message"]


def test_latency_grows_with_requests_in_flight() -> None:
    dep = deployment(latency_profile=latency_profile(ttft_mean_ms=100, inflight_growth=0.5))
    now = time.monotonic()
    delays = [shaped(dep, {"messages": MESSAGES, "max_tokens": 1}, arrived_at=now).deliver_at - now
              for _ in range(3)]
    assert delays == pytest.approx([0.100, 0.150, 0.200])  # 0, 1 and 2 requests already in flight


@pytest.mark.parametrize(("kind", "status", "exception_body"), [
    ("429", 429, {"code": "429"}),
    ("500", 500, {"type": "server_error"}),
    ("503", 503, {"code": "ServiceUnavailable"}),
])
def test_http_faults_answer_with_aoai_bodies(kind: str, status: int, exception_body: dict[str, str]) -> None:
    with pytest.raises(ApiError) as caught:
        shaped(deployment(), {"messages": MESSAGES}, {"x-simulator-fault": kind})
    error = caught.value
    assert error.status == status
    assert exception_body.items() <= error.body["error"].items()
    if kind == "429":
        assert dict(error.headers)[b"retry-after"] == b"1"
        assert dict(error.headers)[b"retry-after-ms"] == b"1000"
        assert error.body["error"]["message"].startswith(
            "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have "
            "exceeded call rate limit")


def test_connection_faults_drop_the_answer() -> None:
    reset = shaped(deployment(), {"messages": MESSAGES}, {"x-simulator-fault": "reset"})
    assert isinstance(reset, DroppedConnection) and reset.kind == "reset" and reset.close_at == 0.0
    held = shaped(deployment(fault_profile=fault_profile(timeout_ms=2500)), {"messages": MESSAGES},
                  {"x-simulator-fault": "timeout"}, arrived_at=7.0)
    assert held.kind == "timeout" and held.close_at == pytest.approx(9.5)
    own = shaped(deployment(), {"messages": MESSAGES}, {"x-simulator-fault": "timeout:250"}, arrived_at=7.0)
    assert own.close_at == pytest.approx(7.25)


def test_truncate_cuts_streams_after_k_events_and_json_in_half() -> None:
    stream = shaped(deployment(), {"messages": MESSAGES, "max_tokens": 10, "stream": True},
                    {"x-simulator-fault": "truncate:4"})
    assert stream.cut_after == 4 and len(stream.frames) > 4
    json_answer = shaped(deployment(), {"messages": MESSAGES}, {"x-simulator-fault": "truncate:4"})
    assert json_answer.cut_at == len(json_answer.body) // 2


def test_malformed_breaks_the_first_content_event_only() -> None:
    stream = shaped(deployment(), {"messages": MESSAGES, "max_tokens": 5, "stream": True},
                    {"x-simulator-fault": "malformed"})
    broken = stream.frames[stream.first_token_frame]
    assert broken.startswith(b"data: {") and broken.endswith(b"\n\n")
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(broken[6:])
    for index, frame in enumerate(stream.frames[:-1]):
        if index != stream.first_token_frame:
            orjson.loads(frame[6:])
    json_answer = shaped(deployment(), {"messages": MESSAGES}, {"x-simulator-fault": "malformed"})
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(json_answer.body)


def test_none_header_suppresses_the_profile_faults() -> None:
    dep = deployment(fault_profile=fault_profile(error_rate=1.0, kinds={"500": 1}))
    with pytest.raises(ApiError):
        shaped(dep, {"messages": MESSAGES})
    assert isinstance(shaped(dep, {"messages": MESSAGES}, {"x-simulator-fault": "none"}), JsonAnswer)


def test_fail_first_counts_per_deployment_through_the_pipeline_plan() -> None:
    dep = deployment(name="flaky", fault_profile=fault_profile(fail_first=2, kinds={"503": 1}))
    statuses = []
    for _ in range(4):
        try:
            statuses.append(shaped(dep, {"messages": MESSAGES}).status)
        except ApiError as error:
            statuses.append(error.status)
    assert statuses == [503, 503, 200, 200]


def test_prompt_term_is_refused_exactly_like_the_recorded_aoai_refusal() -> None:
    recorded = load_cassette("refusal-chat-sync")[0]
    dep = deployment(fault_profile=fault_profile(content_filter_terms=("self_harm:synthesizing fentanyl",)))
    with pytest.raises(ApiError) as caught:
        shaped(dep, recorded.request.body)
    assert caught.value.status == recorded.response.status == 400
    assert caught.value.body == recorded.response.body


def test_completion_term_stops_the_answer_with_finish_reason_content_filter() -> None:
    dep = deployment(fault_profile=fault_profile(content_filter_terms=("completion:hate:secret plan",)),
                     latency_profile=latency_profile(itl_mean_ms=10))
    payload = {"messages": [{"role": "user", "content": "Tell me the SECRET plan"}], "max_tokens": 10}
    body = orjson.loads(shaped(dep, payload).body)
    choice = body["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    assert choice["content_filter_results"]["hate"] == {"filtered": True, "severity": "medium"}
    assert body["usage"]["completion_tokens"] == 10  # generated (and billed) before the filter stopped it

    stream = shaped(dep, {**payload, "stream": True, "stream_options": {"include_usage": True}}, arrived_at=0.0)
    events = [orjson.loads(frame[6:]) for frame in stream.frames[:-1]]
    contents = [e["choices"][0]["delta"].get("content") for e in events[stream.first_token_frame:] if e["choices"]
                and e["choices"][0]["finish_reason"] is None]
    assert len(contents) == 5  # half the tokens, then the filter
    finish = [e for e in events if e["choices"] and e["choices"][0]["finish_reason"]]
    assert finish[0]["choices"][0]["finish_reason"] == "content_filter"
    assert finish[0]["choices"][0]["content_filter_results"]["hate"]["filtered"] is True
    assert len(stream.frame_deadlines) == 5  # only the frames left are paced
    assert stream.frames[-1] == b"data: [DONE]\n\n"


def test_prompt_terms_are_not_applied_to_embeddings() -> None:
    dep = deployment("text-embedding-3-small", fault_profile=fault_profile(content_filter_terms=("forbidden",)))
    answer = shaped(dep, {"input": "forbidden"}, operation=Operation.EMBEDDINGS)
    assert answer.status == 200


def test_an_already_timed_answer_keeps_its_timing() -> None:
    dep = deployment(latency_profile=latency_profile(ttft_mean_ms=500))
    prepared = operations.prepare(Operation.CHAT, {"messages": MESSAGES}, dep)
    plan = shaping.plan(request(arrived_at=1.0), dep, prepared)
    replayed = JsonAnswer(200, b"{}", [], deliver_at=42.0)
    assert plan.apply(replayed).deliver_at == 42.0
    stream = StreamAnswer(200, [b"a", b"b", b"c"], [], frame_deadlines=[1.0, 2.0, 3.0], completion_tokens=2)
    assert list(plan.apply(stream).frame_deadlines) == [1.0, 2.0, 3.0]
    error = JsonAnswer(404, b"{}", [])
    assert plan.apply(error).deliver_at == 0.0  # errors answer at once
