"""An answer stopped by the output content filter (a fault profile's ``completion:`` term matched the prompt):
``finish_reason: content_filter`` with the category flagged, as AOAI ends a filtered completion.

The answer was already produced (generated or replayed), so these rewrite its bytes: the text is cut in half (a
filter stops the output part-way), the usage is left as generated (the tokens were produced and billed).
Chat completions and legacy completions; other shapes pass through unchanged.
"""

from __future__ import annotations

from typing import Any

import orjson

from generators_app.generation.common import (
    COMPLETION_FILTER_RESULTS,
    STREAM_CHUNK_FILTER_RESULTS,
    filtered_results,
)
from generators_app.generation.sse import data_event

FINISH_REASON = "content_filter"
_DATA = b"data: "


def _cut(text: str) -> str:
    return text[: len(text) // 2]


def filter_json_body(body: bytes, category: str) -> bytes:
    """A chat or completions JSON body whose every choice was stopped by the filter."""
    payload = orjson.loads(body)
    choices = payload.get("choices") if isinstance(payload, dict) else None
    if not choices:
        return body
    for choice in choices:
        choice["finish_reason"] = FINISH_REASON
        choice["content_filter_results"] = filtered_results(
            choice.get("content_filter_results") or COMPLETION_FILTER_RESULTS, category
        )
        message = choice.get("message")
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            message["content"] = _cut(message["content"])
        if isinstance(choice.get("text"), str):
            choice["text"] = _cut(choice["text"])
    return orjson.dumps(payload)


def _filtered_finish_frame(frame: bytes, category: str) -> bytes:
    if not frame.startswith(_DATA + b"{"):
        return frame
    payload: dict[str, Any] = orjson.loads(frame[len(_DATA):])
    changed = False
    for choice in payload.get("choices") or ():
        if choice.get("finish_reason"):
            choice["finish_reason"] = FINISH_REASON
            choice["content_filter_results"] = filtered_results(STREAM_CHUNK_FILTER_RESULTS, category)
            changed = True
    return data_event(payload) if changed else frame


def filter_stream_frames(frames: list[bytes], first_token_frame: int, token_frames: int, category: str) -> list[bytes]:
    """Keep the first half of the token frames, then the finish frame(s) as ``content_filter``, usage, [DONE]."""
    kept = frames[: first_token_frame + token_frames // 2]
    tail = frames[first_token_frame + token_frames:]
    return kept + [_filtered_finish_frame(frame, category) for frame in tail]
