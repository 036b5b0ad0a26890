"""``python -m bench.agents``: what tool calls, structured outputs and the Responses API cost against plain chat.

One server (zero latency, no limits), then bench/loadgen.py against each scenario in turn: plain chat (the
baseline of ``python -m bench``), chat with two tools and ``tool_choice: required``, chat with a JSON-schema
response format, the Responses API plain, with a required function tool, and streamed. Responses are stored
for ``previous_response_id`` as usual (the store is bounded, so a long run does not grow memory).

Figures on a 2-core machine shared with the load generator are noisy: read them as ratios to the baseline.
"""

from __future__ import annotations

import argparse
import json
import sys

from bench.__main__ import _Target, run_loadgen
from tests.support.server import DEFAULT_API_KEY, SimulatorServer

CHAT = "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21"
RESPONSES = "/openai/responses?api-version=2025-03-01-preview"
QUESTION = [{"role": "user", "content": "What is the weather in Paris, and find the docs about umbrellas?"}]
WEATHER = {"name": "get_weather", "parameters": {
    "type": "object", "additionalProperties": False, "required": ["city", "unit", "days"],
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                   "days": {"type": "integer", "minimum": 1, "maximum": 5}}}}
SEARCH = {"name": "search_docs", "parameters": {
    "type": "object", "additionalProperties": False, "required": ["query", "limit"],
    "properties": {"query": {"type": "string"}, "limit": {"type": ["integer", "null"]}}}}
ORDER = {"type": "object", "additionalProperties": False, "required": ["id", "customer", "items"], "properties": {
    "id": {"type": "string"},
    "customer": {"type": "object", "additionalProperties": False, "required": ["name", "city"],
                 "properties": {"name": {"type": "string"}, "city": {"type": "string"}}},
    "items": {"type": "array", "items": {"type": "object", "additionalProperties": False,
                                         "required": ["sku", "quantity"],
                                         "properties": {"sku": {"type": "string", "pattern": "^[A-Z]{3}-\\d{3}$"},
                                                        "quantity": {"type": "integer", "minimum": 1}}}}}}

SCENARIOS: dict[str, tuple[str, dict]] = {
    "chat (baseline)": (CHAT, {"messages": QUESTION, "max_tokens": 20}),
    "chat tool calls": (CHAT, {"messages": QUESTION, "tool_choice": "required",
                               "tools": [{"type": "function", "function": f} for f in (WEATHER, SEARCH)]}),
    "chat json_schema": (CHAT, {"messages": QUESTION, "response_format": {
        "type": "json_schema", "json_schema": {"name": "Order", "schema": ORDER, "strict": True}}}),
    "responses": (RESPONSES, {"model": "gpt-4o-mini", "input": QUESTION, "max_output_tokens": 20}),
    "responses tool call": (RESPONSES, {"model": "gpt-4o-mini", "input": QUESTION, "tool_choice": "required",
                                        "tools": [{"type": "function", **f} for f in (WEATHER, SEARCH)]}),
    "responses stream": (RESPONSES, {"model": "gpt-4o-mini", "input": QUESTION, "max_output_tokens": 20,
                                     "stream": True}),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.agents", description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per scenario")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args(argv)
    headers = {"api-key": DEFAULT_API_KEY, "content-type": "application/json"}
    results = {}
    print(f"starting simulator (workers={args.workers}) ...", file=sys.stderr, flush=True)
    with SimulatorServer(workers=args.workers) as server:
        for name, (path, body) in SCENARIOS.items():
            args.body = json.dumps(body)
            results[name] = run_loadgen(_Target(server.base_url + path, headers, server.process_ids), args)
    baseline = results["chat (baseline)"]["requests_per_s"] or 1e-9
    print(f"{'scenario':22}  {'requests/s':>10}  {'vs chat':>7}  {'p50 ms':>8}  {'p99 ms':>8}  {'non-200':>7}  "
          f"{'bytes/answer':>12}")
    for name, result in results.items():
        latency = result["latency_ms"]
        print(f"{name:22}  {result['requests_per_s']:10.1f}  {result['requests_per_s'] / baseline:7.2f}  "
              f"{latency['p50']:8.2f}  {latency['p99']:8.2f}  {result['non_200']:7d}  "
              f"{result['mean_response_bytes']:12.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
