"""limits_app.latency: draws clipped at zero, sums of token latencies, overrides, requests in flight."""

from __future__ import annotations

import random
import statistics

import pytest

from limits_app import latency
from limits_app.config import LatencyProfileConfig


def profile(**values: float) -> LatencyProfileConfig:
    fields = {"ttft_mean_ms": 0.0, "ttft_std_ms": 0.0, "itl_mean_ms": 0.0, "itl_std_ms": 0.0, "request_mean_ms": 0.0,
              "request_std_ms": 0.0, "per_input_token_ms": 0.0, "inflight_growth": 0.0}
    fields.update(values)
    return LatencyProfileConfig(name="p", **fields)


def test_a_draw_is_clipped_at_zero_and_exact_without_spread() -> None:
    rng = random.Random(1)
    draws = [latency.draw_ms(rng, 5, 50) for _ in range(2000)]
    assert min(draws) == 0.0  # a wide distribution around 5 ms goes below zero often; those become 0
    assert all(d >= 0 for d in draws)
    assert latency.draw_ms(rng, 42.5, 0) == 42.5
    assert latency.draw_ms(rng, -3, 0) == 0.0


def test_draws_follow_the_configured_distribution() -> None:
    rng = random.Random(7)
    p = profile(ttft_mean_ms=350, ttft_std_ms=80)
    draws = [latency.draw_ttft_ms(p, rng) for _ in range(20_000)]
    assert statistics.mean(draws) == pytest.approx(350, rel=0.01)
    assert statistics.stdev(draws) == pytest.approx(80, rel=0.03)


def test_zero_profile_and_no_profile_delay_nothing() -> None:
    assert latency.is_zero(None)
    assert latency.is_zero(profile())
    assert latency.is_zero(profile(inflight_growth=2))  # growth of nothing is nothing
    assert not latency.is_zero(profile(itl_std_ms=1))
    assert not latency.is_zero(profile(per_input_token_ms=0.01))


def test_sum_of_token_latencies_without_spread_is_exact() -> None:
    p = profile(itl_mean_ms=12.5)
    assert latency.draw_itl_total_ms(p, 40, random.Random()) == 500.0
    assert latency.draw_itl_total_ms(p, 0, random.Random()) == 0.0
    assert latency.draw_itls_ms(p, 3, random.Random()) == [12.5, 12.5, 12.5]


def test_short_sums_are_token_by_token_draws() -> None:
    p = profile(itl_mean_ms=12, itl_std_ms=3)
    by_token = latency.draw_itls_ms(p, 20, random.Random(3))
    assert latency.draw_itl_total_ms(p, 20, random.Random(3)) == pytest.approx(sum(by_token))


@pytest.mark.parametrize("count", [10, 64, 65, 500, 4000])
def test_sums_have_the_mean_and_spread_of_n_token_draws(count: int) -> None:
    p = profile(itl_mean_ms=12, itl_std_ms=3)
    rng = random.Random(count)
    totals = [latency.draw_itl_total_ms(p, count, rng) for _ in range(4000)]
    assert statistics.mean(totals) == pytest.approx(12 * count, rel=0.01)
    assert statistics.stdev(totals) == pytest.approx(3 * count**0.5, rel=0.06)


def test_request_latency_adds_a_share_per_input_token_and_grows_with_load() -> None:
    p = profile(request_mean_ms=60, per_input_token_ms=0.5)
    assert latency.draw_request_ms(p, 100, random.Random()) == 110.0
    assert latency.draw_request_ms(p, 100, random.Random(), factor=latency.load_factor(p, 3)) == 110.0
    growing = profile(request_mean_ms=60, inflight_growth=0.5)
    assert latency.load_factor(growing, 0) == 1.0
    assert latency.draw_request_ms(growing, 0, random.Random(), latency.load_factor(growing, 4)) == 180.0


@pytest.mark.parametrize(("header", "expected"), [
    ("300", (300.0, 0.0)),
    (" 250.5 , 20 ", (250.5, 20.0)),
    ("0", (0.0, 0.0)),
])
def test_latency_override_header(header: str, expected: tuple[float, float]) -> None:
    assert latency.parse_latency_override(header) == expected


@pytest.mark.parametrize(("header", "problem"), [
    ("", "not a number"),
    ("fast", "not a number"),
    ("-5", "between 0 and"),
    ("nan", "between 0 and"),
    ("1e9", "between 0 and"),
    ("1,2,3", "expected 'MS' or 'TTFT_MS,ITL_MS'"),
])
def test_bad_latency_override_header(header: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        latency.parse_latency_override(header)


def test_in_flight_counts_requests_until_their_answer_is_due() -> None:
    tracker = latency.InflightTracker()
    assert tracker.count("d", now=0.0) == 0
    tracker.add("d", until=1.0)
    tracker.add("d", until=3.0)
    tracker.add("other", until=5.0)
    assert tracker.count("d", now=0.5) == 2
    assert tracker.count("d", now=1.0) == 1  # due at 1.0: no longer in flight
    assert tracker.count("d", now=3.5) == 0
    assert tracker.count("other", now=3.5) == 1
