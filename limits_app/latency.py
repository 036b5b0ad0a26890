"""Latency draws from a latency profile: pure functions of the profile, a random source and the load.

Every duration is a normal distribution clipped at zero, in milliseconds (SPEC §5, §10):

* chat, completions, responses: time to first token (TTFT), then one inter-token latency (ITL) per token;
  a non-streaming answer arrives after TTFT + the ITLs of all its completion tokens;
* embeddings (and images, audio): one per-request latency plus ``per_input_token_ms`` per input token;
* ``inflight_growth``: every duration is multiplied by ``1 + inflight_growth * requests in flight`` (on
  the same deployment, in this process), so a loaded deployment answers more slowly, as a real one does.

Nothing here knows about HTTP: the data plane (generators_app.shaping) turns these numbers into deadlines.
"""

from __future__ import annotations

import heapq
import math
import random

from limits_app.config import LatencyProfileConfig

# Above this many tokens the sum of the ITLs is drawn from its own normal distribution (n * mean,
# sqrt(n) * std) instead of token by token: the same mean and spread, O(1) instead of O(n).
EXACT_SUM_MAX_TOKENS = 64
MAX_OVERRIDE_MS = 600_000.0  # the longest x-simulator-latency-ms accepted (10 minutes)


def draw_ms(rng: random.Random, mean: float, std: float) -> float:
    """One draw of a normal distribution clipped at zero."""
    if std <= 0:
        return mean if mean > 0 else 0.0
    value = rng.gauss(mean, std)
    return value if value > 0 else 0.0


def is_zero(profile: LatencyProfileConfig | None) -> bool:
    """True when the profile never delays anything (the throughput path: no pacing at all)."""
    return profile is None or not (
        profile.ttft_mean_ms or profile.ttft_std_ms or profile.itl_mean_ms or profile.itl_std_ms
        or profile.request_mean_ms or profile.request_std_ms or profile.per_input_token_ms
    )


def load_factor(profile: LatencyProfileConfig, in_flight: int) -> float:
    return 1.0 + profile.inflight_growth * in_flight


def draw_ttft_ms(profile: LatencyProfileConfig, rng: random.Random, factor: float = 1.0) -> float:
    return draw_ms(rng, profile.ttft_mean_ms, profile.ttft_std_ms) * factor


def draw_itls_ms(profile: LatencyProfileConfig, count: int, rng: random.Random, factor: float = 1.0) -> list[float]:
    """``count`` inter-token gaps, each drawn on its own (a stream paces every frame by one of them)."""
    mean, std = profile.itl_mean_ms, profile.itl_std_ms
    if std <= 0:
        return [max(0.0, mean) * factor] * count
    return [draw_ms(rng, mean, std) * factor for _ in range(count)]


def draw_itl_total_ms(profile: LatencyProfileConfig, count: int, rng: random.Random, factor: float = 1.0) -> float:
    """The time ``count`` tokens take after the first one is due: the sum of ``count`` ITL draws."""
    if count <= 0:
        return 0.0
    mean, std = profile.itl_mean_ms, profile.itl_std_ms
    if std <= 0:
        return max(0.0, mean) * count * factor
    if count <= EXACT_SUM_MAX_TOKENS:
        return sum(draw_ms(rng, mean, std) for _ in range(count)) * factor
    return draw_ms(rng, mean * count, std * math.sqrt(count)) * factor


def draw_request_ms(
    profile: LatencyProfileConfig, input_tokens: int, rng: random.Random, factor: float = 1.0
) -> float:
    """Embeddings, images, audio: one latency per request, plus a share per input token."""
    base = draw_ms(rng, profile.request_mean_ms, profile.request_std_ms)
    return (base + profile.per_input_token_ms * max(0, input_tokens)) * factor


def parse_latency_override(value: str) -> tuple[float, float]:
    """The ``x-simulator-latency-ms`` header: ``"T"`` or ``"T,I"`` -> (TTFT or request latency, ITL), ms.

    Raises ValueError with a message fit for the client."""
    parts = [part.strip() for part in value.split(",")]
    if not 1 <= len(parts) <= 2:
        raise ValueError("expected 'MS' or 'TTFT_MS,ITL_MS'")
    numbers = []
    for part in parts:
        try:
            number = float(part)
        except ValueError:
            raise ValueError(f"'{part}' is not a number of milliseconds") from None
        if not math.isfinite(number) or number < 0 or number > MAX_OVERRIDE_MS:
            raise ValueError(f"'{part}' must be between 0 and {MAX_OVERRIDE_MS:.0f} ms")
        numbers.append(number)
    return numbers[0], numbers[1] if len(numbers) == 2 else 0.0


class InflightTracker:
    """Requests in flight per deployment in this process, counted by the deadlines of their answers.

    A request counts from the moment its latency is drawn until its answer is due, so no release hook is
    needed on any path (errors, disconnects). A heap per deployment keeps it O(log n) per request; it is
    used only by profiles with ``inflight_growth``."""

    def __init__(self) -> None:
        self._due: dict[str, list[float]] = {}

    def count(self, key: str, now: float) -> int:
        due = self._due.get(key)
        if not due:
            return 0
        while due and due[0] <= now:
            heapq.heappop(due)
        return len(due)

    def add(self, key: str, until: float) -> None:
        heapq.heappush(self._due.setdefault(key, []), until)

    def clear(self) -> None:
        self._due.clear()


in_flight = InflightTracker()
