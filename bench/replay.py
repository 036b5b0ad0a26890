"""``python -m bench.replay``: replay mode's throughput against generate mode, one table.

The replay hot path is a dict lookup of the request's match key in the in-process recording index (after
the first request, which loads the set's keys and the recording's answer once). This runs the same
non-streaming chat request against a deployment in ``generate`` mode and against one in strict ``replay``
mode (timing_factor 0: no recorded delay), on the same server, one after the other, with bench/loadgen.py.
The recording is made by the server itself: the request is first sent to a ``replay_or_record`` deployment
whose upstream is the server's own OpenAI-style surface (its default ``gpt-4o-mini``, in generate mode).

Figures on a 2-core machine shared with the load generator are noisy: read them as a ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.__main__ import _Target, run_loadgen
from bench.loadgen import DEFAULT_BODY
from tests.support.server import DEFAULT_API_KEY, SimulatorServer

API_VERSION = "2024-10-21"
CONFIG = """\
recording_sets:
  - {{name: bench, timing_factor: 0}}
deployments:
  - {{name: bench-generate, model: gpt-4o-mini}}
  # OpenAI-style upstream (ends in /v1): forwarded as model gpt-4o-mini, the server's default generate deployment
  - {{name: bench-record, model: gpt-4o-mini, mode: replay_or_record, recording_set: bench,
     upstream_endpoint: "http://127.0.0.1:{port}/v1", upstream_key_env: SIMULATOR_API_KEY}}
  - {{name: bench-replay, model: gpt-4o-mini, mode: replay, recording_set: bench}}
"""


def chat_path(deployment: str) -> str:
    return f"/openai/deployments/{deployment}/chat/completions?api-version={API_VERSION}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replay", description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds per mode")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args(argv)
    args.body = DEFAULT_BODY
    headers = {"api-key": DEFAULT_API_KEY, "content-type": "application/json"}
    with tempfile.TemporaryDirectory() as tmp:
        server = SimulatorServer(workers=args.workers)
        config = Path(tmp) / "bench.yaml"
        config.write_text(CONFIG.format(port=server.port))
        server.extra_env["SIMULATOR_CONFIG"] = str(config)
        print(f"starting simulator (workers={args.workers}) ...", file=sys.stderr, flush=True)
        with server:
            recorded = httpx.post(server.base_url + chat_path("bench-record"), content=args.body, headers=headers,
                                  timeout=30)
            recorded.raise_for_status()
            deadline = time.monotonic() + 10
            while True:  # the recording is saved off the response path; wait until replay finds it
                probe = httpx.post(server.base_url + chat_path("bench-replay"), content=args.body,
                                   headers=headers, timeout=30)
                if probe.status_code == 200:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"replay never found the recording: {probe.status_code} {probe.text[:300]}")
                time.sleep(0.2)
            results = {}
            for mode in ("generate", "replay"):
                target = _Target(server.base_url + chat_path(f"bench-{mode}"), headers, server.process_ids)
                results[mode] = run_loadgen(target, args)
    print(f"{'mode':10}  {'requests/s':>10}  {'p50 ms':>8}  {'p99 ms':>8}  {'non-200':>7}  {'server CPU %':>12}")
    for mode, result in results.items():
        latency = result["latency_ms"]
        cpu = result["server_cpu_percent"]
        print(f"{mode:10}  {result['requests_per_s']:10.1f}  {latency['p50']:8.2f}  {latency['p99']:8.2f}  "
              f"{result['non_200']:7d}  {'n/a' if cpu is None else f'{cpu:.0f}':>12}")
    ratio = results["replay"]["requests_per_s"] / max(results["generate"]["requests_per_s"], 1e-9)
    print(f"replay / generate throughput: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
