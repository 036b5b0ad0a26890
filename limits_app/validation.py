"""Rules for profile values that a single field cannot check alone. The management API applies them; admin
and the config file can call the same functions.

Latency rule: each standard deviation may be at most ``MAX_STD_TO_MEAN`` (10) times its mean — a normal
distribution clipped at zero with a larger spread is mostly zeros plus rare huge delays, which is not a
latency profile but a typo — and no mean or std dev may exceed ``MAX_LATENCY_MS`` (10 minutes), longer
than any client waits. A mean of 0 therefore needs a std dev of 0.
"""

from __future__ import annotations

from collections.abc import Mapping

MAX_LATENCY_MS = 600_000.0
MAX_STD_TO_MEAN = 10.0
MAX_PER_INPUT_TOKEN_MS = 1_000.0
MAX_INFLIGHT_GROWTH = 10.0

# (mean field, std dev field) pairs of LatencyProfile
LATENCY_PAIRS = (
    ("ttft_mean_ms", "ttft_std_ms"),
    ("itl_mean_ms", "itl_std_ms"),
    ("request_mean_ms", "request_std_ms"),
)


def latency_problems(values: Mapping[str, float]) -> dict[str, str]:
    """Field name -> what is wrong, for the latency profile values given (all of them, merged)."""
    problems: dict[str, str] = {}
    for mean_field, std_field in LATENCY_PAIRS:
        mean, std = float(values.get(mean_field, 0) or 0), float(values.get(std_field, 0) or 0)
        if mean > MAX_LATENCY_MS:
            problems[mean_field] = f"At most {MAX_LATENCY_MS:.0f} ms."
        if std > MAX_LATENCY_MS:
            problems[std_field] = f"At most {MAX_LATENCY_MS:.0f} ms."
        elif std > MAX_STD_TO_MEAN * mean:
            problems[std_field] = (
                f"The std dev may be at most {MAX_STD_TO_MEAN:g} x the mean ({mean_field} = {mean:g}), "
                f"so at most {MAX_STD_TO_MEAN * mean:g} ms."
            )
    if float(values.get("per_input_token_ms", 0) or 0) > MAX_PER_INPUT_TOKEN_MS:
        problems["per_input_token_ms"] = f"At most {MAX_PER_INPUT_TOKEN_MS:g} ms per input token."
    if float(values.get("inflight_growth", 0) or 0) > MAX_INFLIGHT_GROWTH:
        problems["inflight_growth"] = f"At most {MAX_INFLIGHT_GROWTH:g} (the latency's growth per request in flight)."
    return problems
