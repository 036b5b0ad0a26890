"""What the pipeline hands to the transport: a complete JSON answer or a list of SSE frames to pace."""

from __future__ import annotations

from dataclasses import dataclass, field

Headers = list[tuple[bytes, bytes]]


@dataclass(slots=True)
class JsonAnswer:
    status: int
    body: bytes
    headers: Headers = field(default_factory=list)
    completion_tokens: int = 0


@dataclass(slots=True)
class StreamAnswer:
    status: int
    frames: list[bytes]
    headers: Headers = field(default_factory=list)
    # Frames before this index (prompt filter, role) go out at once; later ones are paced as tokens.
    first_token_frame: int = 0
    completion_tokens: int = 0


Answer = JsonAnswer | StreamAnswer
