"""What the pipeline hands to the transport: a complete JSON answer, a list of SSE frames to pace, or (a fault)
no answer at all."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

Headers = list[tuple[bytes, bytes]]


@dataclass(slots=True)
class JsonAnswer:
    status: int
    body: bytes
    headers: Headers = field(default_factory=list)
    completion_tokens: int = 0
    # Latency profile: a time.monotonic() deadline for the whole answer; 0 sends it at once.
    deliver_at: float = 0.0
    # Fault "truncate": send only this many body bytes of the announced length, then close the connection.
    cut_at: int | None = None


@dataclass(slots=True)
class StreamAnswer:
    status: int
    frames: list[bytes]
    headers: Headers = field(default_factory=list)
    # Frames before this index (prompt filter, role) go out at once; later ones are paced as tokens.
    first_token_frame: int = 0
    completion_tokens: int = 0
    # Latency profile: time.monotonic() deadlines of frames[first_token_frame:], one per frame; the frames
    # after the last deadline (finish, usage, [DONE]) follow it at once. Empty: everything goes at once.
    frame_deadlines: Sequence[float] = ()
    # Fault "truncate:K": send the first K frames, then close the connection (no [DONE]).
    cut_after: int | None = None
    # Record mode: frames that arrive from the upstream at its own pace (``frames`` is then empty). The
    # transport sends each one as it comes, paces nothing itself, and calls ``aclose()`` when done.
    source: AsyncIterator[bytes] | None = None


@dataclass(slots=True)
class DroppedConnection:
    """A fault with no answer at all: ``reset`` closes the connection before any byte; ``timeout`` holds it
    open until ``close_at`` (a time.monotonic() deadline), then closes it."""

    kind: str
    close_at: float = 0.0
    headers: Headers = field(default_factory=list)  # never sent; ids for the request log
    status: int = 0  # no HTTP status: the client sees a connection error
    completion_tokens: int = 0


Answer = JsonAnswer | StreamAnswer | DroppedConnection
