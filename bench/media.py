"""``python -m bench.media``: throughput and latency of image generations and transcriptions, one table.

Starts the simulator as a user does (zero latency profiles) and drives each scenario with a closed loop of
``--connections`` httpx clients for ``--duration`` seconds. The load runs in this process (httpx, not the raw
loadgen: multipart bodies with a binary WAV do not fit its text ``--body``), so its ceiling is lower than
bench.loadgen's; these operations are far heavier than chat, so the server is still the limit. Figures on a
2-core machine shared with the client are noisy: read them as orders of magnitude.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.media import make_wav
from tests.support.server import DEFAULT_API_KEY, SimulatorServer

QUERY = "?api-version=2024-10-21"


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    request: Callable[[], dict[str, Any]]  # keyword arguments of httpx.AsyncClient.post
    fetch_url: bool = False  # also GET the image link of the answer (counted in the latency)


def scenarios() -> list[Scenario]:
    wav_12s, wav_60s = make_wav(12.0), make_wav(60.0, rate=8000)

    def audio(wav: bytes, fmt: str) -> Callable[[], dict[str, Any]]:
        return lambda: {"files": {"file": ("speech.wav", wav, "audio/wav")}, "data": {"response_format": fmt}}

    return [
        Scenario("whisper json, 12 s WAV (384 KB)", "/openai/deployments/whisper/audio/transcriptions",
                 audio(wav_12s, "json")),
        Scenario("whisper verbose_json, 60 s WAV (960 KB)", "/openai/deployments/whisper/audio/transcriptions",
                 audio(wav_60s, "verbose_json")),
        Scenario("whisper srt, 60 s WAV", "/openai/deployments/whisper/audio/translations", audio(wav_60s, "srt")),
        Scenario("dall-e-3 b64_json 1024x1024 (same prompt)", "/openai/deployments/dall-e-3/images/generations",
                 lambda: {"json": {"prompt": "a lighthouse", "response_format": "b64_json"}}),
        Scenario("dall-e-3 b64_json 1792x1024 (new prompt each)", "/openai/deployments/dall-e-3/images/generations",
                 lambda: {"json": {"prompt": f"a lighthouse {time.perf_counter_ns()}", "size": "1792x1024",
                                   "response_format": "b64_json"}}),
        Scenario("dall-e-3 url + GET of the PNG (new prompt each)", "/openai/deployments/dall-e-3/images/generations",
                 lambda: {"json": {"prompt": f"a harbour {time.perf_counter_ns()}"}}, fetch_url=True),
        Scenario("gpt-image-1 n=4 b64_json 1536x1024 (new prompt each)",
                 "/openai/deployments/gpt-image-1/images/generations",
                 lambda: {"json": {"prompt": f"pears {time.perf_counter_ns()}", "n": 4, "size": "1536x1024"}}),
    ]


async def run(base_url: str, scenario: Scenario, connections: int, duration: float, warmup: float) -> dict:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + duration

    async def worker(client: httpx.AsyncClient) -> None:
        while (began := time.perf_counter()) < stop_at:
            response = await client.post(scenario.path + QUERY, **scenario.request())
            if scenario.fetch_url and response.status_code == 200:
                response = await client.get(response.json()["data"][0]["url"])
            done = time.perf_counter()
            if began >= measure_from and done <= stop_at:
                latencies.append(done - began)
                statuses[response.status_code] += 1

    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(base_url=base_url, headers={"api-key": DEFAULT_API_KEY}, limits=limits,
                                 timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(connections)))
    latencies.sort()
    count = len(latencies)
    return {
        "name": scenario.name,
        "rps": count / duration,
        "p50": statistics.median(latencies) * 1000 if latencies else 0.0,
        "p99": latencies[min(count - 1, int(count * 0.99))] * 1000 if latencies else 0.0,
        "statuses": dict(statuses),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.media", description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per scenario")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args(argv)
    print(f"starting simulator (workers={args.workers}) ...", file=sys.stderr, flush=True)
    with SimulatorServer(workers=args.workers) as server:
        rows = [asyncio.run(run(server.base_url, scenario, args.connections, args.duration, args.warmup))
                for scenario in scenarios()]
    print(f"\n{args.connections} connections, {args.workers} worker(s), {args.duration:.0f} s per scenario\n")
    print(f"| {'scenario':<55} | {'req/s':>7} | {'p50 ms':>7} | {'p99 ms':>7} | statuses |")
    print(f"| {'-' * 55} | {'-' * 7}:| {'-' * 7}:| {'-' * 7}:| --- |")
    for row in rows:
        print(f"| {row['name']:<55} | {row['rps']:>7.1f} | {row['p50']:>7.1f} | {row['p99']:>7.1f} | "
              f"{row['statuses']} |")
    return 0 if all(set(row["statuses"]) == {200} for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
