"""``python -m bench.limits``: the rate limiter under load (SPEC §9), one table.

1. Flat throughput: non-streaming chat on a deployment whose limit is never reached, so every request goes
   through the limiter and its windows fill up. The run is cut in three equal segments (a minute each by
   default) with bench/loadgen.py; requests/s must not fall from the first segment to the last (the
   microsoft/aoai-api-simulator fell from 332 to 159/s as its window filled). Once on 1 process with the
   in-process limiter, once on 2 processes sharing the Redis limiter, after a short reference run on the
   same deployment model without any limit profile (the limiter's cost is the ratio to it).
2. Quota accuracy: a 100,000 TPM deployment, 30 concurrent clients asking max_tokens 200 and honouring
   retry-after-ms as the SDKs do; tokens served in each minute (the usage of the 200 answers). Target:
   95-105k a minute, on 1 process and on 2 processes sharing Redis.

Figures on a 2-core machine shared with the load generator are noisy: read them as ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.__main__ import _Target, run_loadgen
from bench.loadgen import DEFAULT_BODY
from tests.support.server import DEFAULT_API_KEY, SimulatorServer

API_VERSION = "2024-10-21"
CONFIG = """\
limit_profiles:
  - {name: bench-unreachable, tokens_per_minute: 2000000000, requests_per_minute: 2000000000}
  - {name: bench-100k, tokens_per_minute: 100000}
deployments:
  - {name: bench-flat, model: gpt-4o-mini, limit_profile: bench-unreachable}
  - {name: bench-tpm, model: gpt-4o-mini, limit_profile: bench-100k}
"""
TPM_BODY = {"messages": [{"role": "user", "content": "Write a long story about a lighthouse."}], "max_tokens": 200}


def chat_path(deployment: str) -> str:
    return f"/openai/deployments/{deployment}/chat/completions?api-version={API_VERSION}"


@dataclass
class Setup:
    label: str
    workers: int
    redis_url: str  # "" for the in-process limiter

    @property
    def limiter(self) -> str:
        return "Redis" if self.redis_url else "in process"


def start(setup: Setup, config: Path) -> SimulatorServer:
    env = {
        "SIMULATOR_CONFIG": str(config),
        "REDIS_URL": setup.redis_url,  # "" keeps an inherited REDIS_URL from switching the limiter on
        "SIMULATOR_LIMITER_KEY_PREFIX": f"bench-limits-{uuid.uuid4().hex}",
        "SIMULATOR_REQUEST_LOG": "false",
    }
    print(f"starting simulator ({setup.label}) ...", file=sys.stderr, flush=True)
    return SimulatorServer(api_key=DEFAULT_API_KEY, workers=setup.workers, extra_env=env)


# --- 1. flat throughput ---------------------------------------------------------------------------------------


def loadgen_segment(server: SimulatorServer, deployment: str, duration: float, warmup: float,
                    connections: int) -> dict[str, Any]:
    target = _Target(server.base_url + chat_path(deployment), {"api-key": DEFAULT_API_KEY}, server.process_ids)
    args = argparse.Namespace(duration=duration, warmup=warmup, connections=connections, body=DEFAULT_BODY)
    return run_loadgen(target, args)


def flat_run(setup: Setup, config: Path, args: argparse.Namespace) -> dict[str, Any]:
    segment = args.duration / 3
    with start(setup, config) as server:
        reference = loadgen_segment(server, "gpt-4o-mini", args.reference_duration, 3, args.connections)
        segments = [loadgen_segment(server, "bench-flat", segment, 3 if i == 0 else 0, args.connections)
                    for i in range(3)]
    return {"reference": reference, "segments": segments}


# --- 2. quota accuracy ------------------------------------------------------------------------------------------


async def _client(http: httpx.AsyncClient, url: str, stop_at: float, served: list[tuple[float, int]],
                  counts: dict[int, int]) -> None:
    while time.monotonic() < stop_at:
        response = await http.post(url, json=TPM_BODY)
        counts[response.status_code] = counts.get(response.status_code, 0) + 1
        if response.status_code == 200:
            served.append((time.monotonic(), response.json()["usage"]["total_tokens"]))
        elif response.status_code == 429:
            wait = float(response.headers["retry-after-ms"]) / 1000
            await asyncio.sleep(min(wait, max(0.0, stop_at - time.monotonic())))
        else:
            await asyncio.sleep(0.1)


async def _drive(url: str, clients: int, duration: float) -> tuple[float, list[tuple[float, int]], dict[int, int]]:
    served: list[tuple[float, int]] = []
    counts: dict[int, int] = {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(headers={"api-key": DEFAULT_API_KEY}, timeout=30, limits=limits) as http:
        started = time.monotonic()
        await asyncio.gather(*(_client(http, url, started + duration, served, counts) for _ in range(clients)))
    return started, served, counts


def tpm_run(setup: Setup, config: Path, args: argparse.Namespace) -> dict[str, Any]:
    with start(setup, config) as server:
        started, served, counts = asyncio.run(_drive(server.base_url + chat_path("bench-tpm"), args.clients,
                                                     args.tpm_duration))
    minutes = max(1, int(args.tpm_duration // 60))
    per_minute = [sum(tokens for t, tokens in served if started + 60 * m <= t < started + 60 * (m + 1))
                  for m in range(minutes)]
    # The busiest 60 s span anywhere in the run (the limit's promise: never above the TPM).
    times = sorted(served)
    busiest, total, left = 0, 0, 0
    for right in range(len(times)):
        total += times[right][1]
        while times[right][0] - times[left][0] >= 60:
            total -= times[left][1]
            left += 1
        busiest = max(busiest, total)
    return {"per_minute": per_minute, "busiest_60s": busiest, "counts": counts}


# --- the table --------------------------------------------------------------------------------------------------


def _statuses(result: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in result["status_counts"].items())


def _cpu_per_request_us(results: list[dict[str, Any]]) -> float:
    """Server CPU (all its processes) per answered request: steadier than req/s on a shared machine."""
    cpu_s = sum((r["server_cpu_percent"] or 0) / 100 * r["duration_s"] for r in results)
    return 1e6 * cpu_s / max(1, sum(r["requests"] for r in results))


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    headers = ("run", "processes", "limiter", "result")
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(3)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False)) + "  " + headers[3])
    print("  ".join("-" * w for w in widths) + "  " + "-" * 40)
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[3])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.limits", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=180.0, help="flat run length, cut in 3 segments (s)")
    parser.add_argument("--reference-duration", type=float, default=20.0, help="no-limit reference run (s)")
    parser.add_argument("--connections", type=int, default=32, help="flat run keep-alive connections")
    parser.add_argument("--tpm-duration", type=float, default=180.0, help="quota run length (s, >= 60)")
    parser.add_argument("--clients", type=int, default=30, help="quota run concurrent clients")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    parser.add_argument("--skip", action="append", default=[], choices=("flat", "tpm"))
    args = parser.parse_args(argv)

    setups = [Setup("1 process, in-process limiter", 1, ""), Setup("2 processes, Redis limiter", 2, args.redis_url)]
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench-limits.yaml"
        config.write_text(CONFIG)
        if "flat" not in args.skip:
            for setup in setups:
                result = flat_run(setup, config, args)
                reference = result["reference"]
                rates = [s["requests_per_s"] for s in result["segments"]]
                non_200 = sum(s["non_200"] + s["errors"] for s in result["segments"])
                rows.append((f"reference: no limit profile ({args.reference_duration:g} s)", str(setup.workers),
                             "none", f"{reference['requests_per_s']:.0f} req/s ({_statuses(reference)}); "
                             f"server CPU {_cpu_per_request_us([reference]):.0f} µs/request"))
                rows.append((
                    f"flat: thirds of {args.duration:g} s, limit never reached", str(setup.workers), setup.limiter,
                    " / ".join(f"{r:.0f}" for r in rates) + f" req/s; last/first {rates[-1] / rates[0]:.2f}; "
                    f"vs reference {sum(rates) / 3 / reference['requests_per_s']:.2f}; non-200 or errors: {non_200}; "
                    f"p99 {max(s['latency_ms']['p99'] for s in result['segments']):.1f} ms; "
                    f"server CPU {_cpu_per_request_us(result['segments']):.0f} µs/request",
                ))
        if "tpm" not in args.skip:
            for setup in setups:
                result = tpm_run(setup, config, args)
                minutes = result["per_minute"]
                rows.append((
                    f"100k TPM, {args.clients} clients, max_tokens 200", str(setup.workers), setup.limiter,
                    "tokens per minute: " + ", ".join(f"{m / 1000:.1f}k" for m in minutes)
                    + f"; busiest 60 s span {result['busiest_60s'] / 1000:.1f}k; answers "
                    + ", ".join(f"{k}: {v}" for k, v in sorted(result["counts"].items())),
                ))
    print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
