"""``python -m bench``: start the real simulator and measure chat-completion throughput and latency.

Why this shape: the number we care about is what a user's load test sees from ``manage.py serve``, so
the server is started exactly as a user starts it (through tests/support/server.py) and the load comes
from a separate process (bench/loadgen.py) so that client and server never share an interpreter or a
GIL. ``--target trivial`` points the same load generator at a do-nothing server instead, which tells
how far the load generator itself can go on this machine (its ceiling must be far above the server's
numbers for those numbers to mean anything).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.loadgen import DEFAULT_BODY
from tests.support.server import DEFAULT_API_KEY, PROJECT_DIR, SimulatorServer, free_port

CHAT_PATH = "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21"
RESULTS_DIR = PROJECT_DIR / "bench" / "results"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def server_env_item(text: str) -> tuple[str, str]:
    """The argparse type of --server-env (here and in bench/latency.py): KEY=VALUE."""
    name, separator, value = text.partition("=")
    if not separator:
        raise argparse.ArgumentTypeError(f"--server-env wants KEY=VALUE, got {text!r}")
    return name, value


def cpu_seconds(pids: list[int]) -> float:
    """User+system CPU time of the given processes so far (Linux /proc), to see who is saturated."""
    total = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _CLOCK_TICKS


@dataclass(frozen=True)
class _Target:
    """What the load hits: its URL, the headers to send, and how to list its processes right now."""

    url: str
    headers: dict[str, str]
    pids: Callable[[], list[int]]


@contextlib.contextmanager
def simulator_target(args: argparse.Namespace) -> Iterator[_Target]:
    """The simulator, started like a user would (or an already running one with --url)."""
    headers = {"api-key": args.api_key}
    if args.url:
        yield _Target(args.url.rstrip("/") + CHAT_PATH, headers, lambda: [])
        return
    extra_env = dict(args.server_env)
    if args.config:
        extra_env["SIMULATOR_CONFIG"] = str(Path(args.config).resolve())
    print(f"starting simulator (workers={args.workers}) ...", file=sys.stderr, flush=True)
    with SimulatorServer(api_key=args.api_key, workers=args.workers, extra_env=extra_env) as server:
        probe = httpx.post(server.base_url + CHAT_PATH, content=args.body, headers=headers, timeout=30)
        if probe.status_code != 200:
            print(f"warning: probe request answered {probe.status_code}: {probe.text[:300]}", file=sys.stderr)
        yield _Target(server.base_url + CHAT_PATH, headers, server.process_ids)


@contextlib.contextmanager
def trivial_target(args: argparse.Namespace) -> Iterator[_Target]:
    """A do-nothing HTTP server in its own process, to measure the load generator's own ceiling."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bench.trivial_server", "--port", str(port)], cwd=PROJECT_DIR)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("trivial server did not start") from None
                time.sleep(0.05)
        yield _Target(f"http://127.0.0.1:{port}{CHAT_PATH}", {"api-key": args.api_key}, lambda: [process.pid])
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_loadgen(target: _Target, args: argparse.Namespace) -> dict[str, Any]:
    """Run bench.loadgen in a child process; sample the server's processes and CPU meanwhile."""
    command = [
        sys.executable,
        "-m",
        "bench.loadgen",
        "--url",
        target.url,
        "--duration",
        str(args.duration),
        "--warmup",
        str(args.warmup),
        "--connections",
        str(args.connections),
        "--body",
        args.body,
    ]
    for name, value in target.headers.items():
        command += ["-H", f"{name}: {value}"]
    loadgen = subprocess.Popen(command, cwd=PROJECT_DIR, stdout=subprocess.PIPE, text=True)
    time.sleep(args.warmup)
    pids = target.pids()
    cpu_start = cpu_seconds(pids)
    time.sleep(args.duration)
    cpu_end = cpu_seconds(target.pids())
    output, _ = loadgen.communicate(timeout=args.duration + args.warmup + 120)
    if loadgen.returncode != 0:
        raise RuntimeError(f"load generator failed with code {loadgen.returncode}")
    result = json.loads(output)
    result["server_processes"] = len(pids)
    result["server_cpu_percent"] = 100.0 * (cpu_end - cpu_start) / args.duration if pids else None
    return result


def print_table(result: dict[str, Any], args: argparse.Namespace) -> None:
    """One human-readable table; the JSON (--json / --save) has everything else."""
    latency = result["latency_ms"]
    statuses = ", ".join(f"{k}: {v}" for k, v in result["status_counts"].items()) or "none"
    server_cpu = result["server_cpu_percent"]
    rows = [
        ("target", f"{args.target} ({'external ' + args.url if args.url else 'started here'})"),
        ("workers / connections", f"{args.workers} / {args.connections}"),
        ("measured", f"{args.duration:g} s after {args.warmup:g} s warm-up"),
        ("requests/s", f"{result['requests_per_s']:.1f}"),
        ("latency p50 (ms)", f"{latency['p50']:.2f}"),
        ("latency p90 (ms)", f"{latency['p90']:.2f}"),
        ("latency p99 (ms)", f"{latency['p99']:.2f}"),
        ("latency max (ms)", f"{latency['max']:.2f}"),
        ("errors (connection/timeout)", f"{result['errors']} {result['error_kinds'] or ''}".strip()),
        ("non-200 responses", f"{result['non_200']} (status counts: {statuses})"),
        ("server processes", str(result["server_processes"] or "n/a")),
        ("server CPU (% of one core)", "n/a" if server_cpu is None else f"{server_cpu:.0f}"),
        ("loadgen CPU (% of one core)", f"{result['loadgen_cpu_percent']:.0f}"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"{'metric'.ljust(width)}  value")
    print(f"{'-' * width}  {'-' * 30}")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    if result["loadgen_cpu_percent"] > 85:
        print("note: the load generator was near 100 % CPU; the server may be faster than this shows.")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=("simulator", "trivial"), default="simulator")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections, 1 request each")
    parser.add_argument("--url", default="", help="bench an already running simulator at this base URL")
    parser.add_argument("--api-key", default=os.environ.get("SIMULATOR_API_KEY", DEFAULT_API_KEY))
    parser.add_argument("--body", default=DEFAULT_BODY, help="chat request body (JSON)")
    parser.add_argument("--config", default="", help="SIMULATOR_CONFIG YAML for the started server")
    parser.add_argument(
        "--server-env", action="append", default=[], type=server_env_item, metavar="KEY=VALUE",
        help="extra env for the server",
    )
    parser.add_argument("--json", action="store_true", help="also print the raw JSON result")
    parser.add_argument("--save", action="store_true", help="write the JSON result under bench/results/")
    args = parser.parse_args(argv)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    target_factory = trivial_target if args.target == "trivial" else simulator_target
    with target_factory(args) as target:
        result = run_loadgen(target, args)
    result.update(target=args.target, workers=args.workers, url=target.url)
    print_table(result, args)
    if args.json:
        print(json.dumps(result, indent=2))
    if args.save:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS_DIR / f"{stamp}-{args.target}-w{args.workers}-c{args.connections}.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"saved {path.relative_to(PROJECT_DIR)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
