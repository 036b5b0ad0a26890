"""A closed-loop HTTP/1.1 load generator that is cheap enough not to be the bottleneck.

Why not httpx/aiohttp: on a 2-core machine a general-purpose client spends more CPU per request than a
small server does, so the benchmark would measure the client. This one pre-renders the request bytes,
keeps one persistent keep-alive connection per virtual user with exactly one request in flight, and
parses answers by Content-Length (chunked too, for safety) straight off asyncio streams (uvloop when it
is importable).

Run in its own process (``python -m bench.loadgen --url ... --duration ...``) so it never shares an
interpreter with the server; it prints one JSON object with the results on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

DEFAULT_BODY = '{"messages":[{"role":"user","content":"What is 4200 + 42?"}],"max_tokens":20}'


class _ConnectionLost(Exception):
    """The server closed the connection (or sent garbage) mid-exchange."""


@dataclass
class Target:
    host: str
    port: int
    request: bytes

    @classmethod
    def build(cls, url: str, method: str, body: bytes | None, headers: dict[str, str]) -> Target:
        """Render the request once: every send is then a single write of the same bytes."""
        parts = urlsplit(url)
        if parts.scheme != "http":
            raise ValueError(f"only plain http:// is supported, got {url!r}")
        host = parts.hostname or "127.0.0.1"
        port = parts.port or 80
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
        merged = {"user-agent": "bench-loadgen", "accept": "*/*"}
        if body is not None:
            merged["content-type"] = "application/json"
            merged["content-length"] = str(len(body))
        merged.update({k.lower(): v for k, v in headers.items()})
        lines += [f"{k}: {v}" for k, v in merged.items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return cls(host=host, port=port, request=head + (body or b""))


@dataclass
class Stats:
    """Per-run counters; latencies only for requests completed inside the measured window."""

    latencies_ns: list[int] = field(default_factory=list)
    status_counts: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    reconnects: int = 0
    bytes_received: int = 0

    def error(self, exc: BaseException) -> None:
        self.errors += 1
        kind = type(exc).__name__
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, int, bool]:
    """Read one response; return (status, body bytes, keep_alive)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        raise _ConnectionLost("connection closed before a full response head") from exc
    status_line, _, header_block = head.partition(b"\r\n")
    try:
        status = int(status_line.split(b" ", 2)[1])
    except (IndexError, ValueError) as exc:
        raise _ConnectionLost(f"bad status line {status_line[:80]!r}") from exc
    length = -1
    chunked = False
    keep_alive = not status_line.startswith(b"HTTP/1.0")
    for line in header_block.split(b"\r\n"):
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            tokens = value.lower()
            if b"close" in tokens:
                keep_alive = False
            elif b"keep-alive" in tokens:
                keep_alive = True
    try:
        if chunked:
            size = 0
            while True:
                size_line = await reader.readuntil(b"\r\n")
                chunk = int(size_line.split(b";", 1)[0], 16)
                if chunk == 0:
                    # trailers (normally none) end with an empty line
                    while await reader.readuntil(b"\r\n") != b"\r\n":
                        pass
                    return status, size, keep_alive
                await reader.readexactly(chunk + 2)
                size += chunk
        if length >= 0:
            if length:
                await reader.readexactly(length)
            return status, length, keep_alive
        if status in (204, 304) or 100 <= status < 200:
            return status, 0, keep_alive
        # No framing: the body runs to the end of the connection.
        body = await reader.read()
        return status, len(body), False
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
        raise _ConnectionLost("connection closed inside a response body") from exc


async def _user(target: Target, stats: Stats, measure_from: float, stop_at: float, timeout: float) -> None:
    """One virtual user: a persistent connection, one request in flight, until the clock runs out."""
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    perf_ns = time.perf_counter_ns
    measure_from_ns = int(measure_from * 1e9)
    stop_at_ns = int(stop_at * 1e9)
    request = target.request
    try:
        while perf_ns() < stop_at_ns:
            try:
                if writer is None:
                    reader, writer = await asyncio.wait_for(asyncio.open_connection(target.host, target.port), timeout)
                    stats.reconnects += 1
                assert reader is not None
                started = perf_ns()
                writer.write(request)
                status, size, keep_alive = await asyncio.wait_for(_read_response(reader), timeout)
                finished = perf_ns()
            except (OSError, _ConnectionLost, TimeoutError) as exc:
                if perf_ns() >= measure_from_ns and perf_ns() < stop_at_ns:
                    stats.error(exc)
                writer = await _close(writer)
                await asyncio.sleep(0.01)  # do not spin on a refused port
                continue
            if measure_from_ns <= started and finished <= stop_at_ns:
                stats.latencies_ns.append(finished - started)
                stats.status_counts[status] = stats.status_counts.get(status, 0) + 1
                stats.bytes_received += size
            if not keep_alive:
                writer = await _close(writer)
    finally:
        await _close(writer)


async def _close(writer: asyncio.StreamWriter | None) -> None:
    if writer is not None:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return None


def percentile(sorted_values: list[int], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values) + 0.5) - 1))
    return float(sorted_values[rank])


async def run(
    target: Target, *, duration: float, connections: int, warmup: float, timeout: float = 30.0
) -> dict[str, Any]:
    """Drive ``connections`` users for ``warmup + duration`` seconds; report only the measured part."""
    stats = Stats()
    now = time.perf_counter()
    measure_from = now + warmup
    stop_at = measure_from + duration
    cpu_before: float | None = None

    async def mark_cpu() -> None:
        nonlocal cpu_before
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        cpu_before = time.process_time()

    marker = asyncio.create_task(mark_cpu())
    users = [asyncio.create_task(_user(target, stats, measure_from, stop_at, timeout)) for _ in range(connections)]
    # Users finish their last request after stop_at; do not let one hung request hold up the report.
    _, pending = await asyncio.wait(users, timeout=duration + warmup + timeout + 5)
    for task in pending:
        task.cancel()
    await marker
    cpu_used = time.process_time() - (cpu_before or 0.0)
    latencies = sorted(stats.latencies_ns)
    completed = len(latencies)
    ok = stats.status_counts.get(200, 0)
    return {
        "connections": connections,
        "duration_s": duration,
        "warmup_s": warmup,
        "requests": completed,
        "requests_per_s": completed / duration if duration else 0.0,
        "ok_200": ok,
        "non_200": completed - ok,
        "errors": stats.errors,
        "error_kinds": stats.error_kinds,
        "status_counts": {str(k): v for k, v in sorted(stats.status_counts.items())},
        "connects": stats.reconnects,
        "latency_ms": {
            "p50": percentile(latencies, 0.50) / 1e6,
            "p90": percentile(latencies, 0.90) / 1e6,
            "p99": percentile(latencies, 0.99) / 1e6,
            "max": (latencies[-1] / 1e6) if latencies else 0.0,
            "mean": (sum(latencies) / completed / 1e6) if completed else 0.0,
        },
        "mean_response_bytes": stats.bytes_received / completed if completed else 0.0,
        # Near 100 % means this process, not the server, limited the rate.
        "loadgen_cpu_percent": 100.0 * cpu_used / duration if duration else 0.0,
        "event_loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
    }


def run_blocking(target: Target, **kwargs: Any) -> dict[str, Any]:
    """Run ``run`` on a fresh event loop (uvloop if available)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run(target, **kwargs))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run(target, **kwargs))


def _parse_header(raw: str) -> tuple[str, str]:
    name, sep, value = raw.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"header must look like 'Name: value', got {raw!r}")
    return name.strip(), value.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="http://host:port/path?query")
    parser.add_argument("--method", default="POST")
    parser.add_argument("--body", default=DEFAULT_BODY, help="request body; '' for none")
    parser.add_argument("-H", "--header", action="append", type=_parse_header, default=[], dest="headers")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds driven but not measured")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, seconds")
    args = parser.parse_args(argv)
    body = args.body.encode() if args.body else None
    target = Target.build(args.url, args.method.upper(), body, dict(args.headers))
    result = run_blocking(
        target,
        duration=args.duration,
        connections=args.connections,
        warmup=args.warmup,
        timeout=args.timeout,
    )
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
