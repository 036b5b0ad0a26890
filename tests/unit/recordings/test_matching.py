"""Matching: the normalized body, the key, and the explanation of a miss."""

from __future__ import annotations

from recordings_app.matching import (
    Candidate,
    differing_fields,
    explain_miss,
    flatten,
    match_key,
    matching_view,
    normalize_body,
)

IGNORED = frozenset({"stream", "user", "seed", "metadata", "stream_options"})
QUESTION = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What is 4200 + 42?"}]}


def key(body: dict, ignored: frozenset[str] = IGNORED, operation: str = "chat") -> str:
    return match_key("POST", operation, normalize_body(body), ignored)


def test_key_order_does_not_matter() -> None:
    reordered = {"messages": [{"content": "What is 4200 + 42?", "role": "user"}], "model": "gpt-4o-mini"}
    assert key(QUESTION) == key(reordered)


def test_ignored_fields_and_model_are_left_out() -> None:
    noisy = {**QUESTION, "stream": True, "stream_options": {"include_usage": True}, "user": "u-1", "seed": 3,
             "model": "another-deployment"}
    assert key(noisy) == key(QUESTION)
    assert key({**QUESTION, "seed": 3}, ignored=frozenset()) != key(QUESTION, ignored=frozenset())


def test_fields_that_matter_change_the_key() -> None:
    assert key({**QUESTION, "temperature": 0.2}) != key(QUESTION)
    changed = {**QUESTION, "messages": [{"role": "user", "content": "What is 4200 + 43?"}]}
    assert key(changed) != key(QUESTION)


def test_method_and_operation_are_part_of_the_key() -> None:
    body = normalize_body({"prompt": "hello"})
    assert match_key("POST", "completions", body, IGNORED) != match_key("POST", "chat", body, IGNORED)
    assert match_key("POST", "chat", body, IGNORED) != match_key("GET", "chat", body, IGNORED)


def _tool_conversation(first_id: str, second_id: str) -> dict:
    return {
        "messages": [
            {"role": "user", "content": "secrets for mellon and radiance"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": first_id, "type": "function", "function": {"name": "lookup", "arguments": "{\"p\":\"mellon\"}"}},
                {"id": second_id, "type": "function", "function": {"name": "lookup", "arguments": "{\"p\":\"rad\"}"}},
            ]},
            {"role": "tool", "tool_call_id": first_id, "content": "s1"},
            {"role": "tool", "tool_call_id": second_id, "content": "s2"},
        ]
    }


def test_tool_call_ids_are_normalized_consistently() -> None:
    run_a = _tool_conversation("call_GF8LHohCf34vryrD5mTlArH8", "call_7KowxRhncpXrPLQpuAMemn0y")
    run_b = _tool_conversation("call_ZxvfEKOUAaNm2rIvu0CXWN1z", "call_hWZOQA612mDihMo08n25NxOp")
    assert key(run_a) == key(run_b)
    normalized = normalize_body(run_a)
    calls = normalized["messages"][1]["tool_calls"]
    assert [call["id"] for call in calls] == ["call_0", "call_1"]
    assert [m.get("tool_call_id") for m in normalized["messages"][2:]] == ["call_0", "call_1"]
    # Which answer goes with which call still matters: swapping the tool results is another request.
    swapped = _tool_conversation("call_a", "call_b")
    swapped["messages"][2]["tool_call_id"], swapped["messages"][3]["tool_call_id"] = "call_b", "call_a"
    assert key(swapped) != key(run_a)


def test_responses_call_ids_are_normalized() -> None:
    def body(call_id: str, item_id: str) -> dict:
        return {"input": [
            {"type": "function_call", "id": item_id, "call_id": call_id, "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": call_id, "output": "42"},
        ]}

    assert key(body("call_x", "fc_1"), operation="responses") == key(body("call_y", "fc_2"), operation="responses")


def test_normalizing_keeps_ignored_fields_in_the_stored_body() -> None:
    stored = normalize_body({**QUESTION, "stream": True})
    assert stored["stream"] is True
    assert "stream" not in matching_view(stored, IGNORED)
    assert "model" not in matching_view(stored, IGNORED)


def test_flatten_and_differing_fields() -> None:
    assert flatten({"a": [{"b": 1}, 2], "c": {}}) == {"a[0].b": 1, "a[1]": 2, "c": {}}
    recorded = {"messages": [{"role": "user", "content": "x"}], "max_tokens": 5}
    asked = {"messages": [{"role": "user", "content": "y"}], "temperature": 0}
    assert differing_fields(asked, recorded) == ["messages[0].content", "temperature", "max_tokens"]


def test_explain_miss_names_the_nearest_recordings_and_the_fields() -> None:
    asked = normalize_body({**QUESTION, "max_tokens": 10})
    near = Candidate(7, "gpt-4o-mini", normalize_body(QUESTION))
    far = Candidate(9, "gpt-4o-mini", normalize_body({"messages": [{"role": "system", "content": "?"}], "n": 2}))
    explanation = explain_miss(
        recording_set="golden", operation="chat", deployment_name="gpt-4o-mini", key="k",
        normalized=asked, ignore_fields=IGNORED, candidates=[far, near],
    )
    assert [n.recording_id for n in explanation.nearest] == [7, 9]
    assert explanation.nearest[0].differing_fields == ("max_tokens",)
    body = explanation.error_body()["error"]
    assert body["code"] == "simulator_replay_miss"
    assert "Simulator replay miss" in body["message"]
    assert "recording 7 (gpt-4o-mini) differs in max_tokens" in body["message"]
    assert body["simulator"]["nearest"][0] == {"recording_id": 7, "deployment": "gpt-4o-mini",
                                               "differing_fields": ["max_tokens"]}
    assert "model" in body["simulator"]["ignored_fields"]


def test_explain_miss_with_no_candidates_says_so() -> None:
    explanation = explain_miss(recording_set="empty", operation="embeddings", deployment_name="e", key="k",
                               normalized={"input": "x"}, ignore_fields=(), candidates=[])
    assert explanation.nearest == ()
    assert "holds no enabled embeddings recordings" in explanation.message()
