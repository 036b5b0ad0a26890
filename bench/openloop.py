"""An open-loop load generator: requests start at fixed times whatever the answers do.

Why open loop: bench/loadgen.py is a closed loop (each connection sends its next request when the last one is
answered), which is right for throughput but cannot hold "500 requests a second" against a server that takes a
second per answer, nor start 5,000 requests at once. Here every request has a start time (a rate, or arrivals
spread over a window), takes an idle keep-alive connection or opens one, and its latency is measured from its
write to the last byte of its answer (JSON or a whole SSE stream). Each sample also keeps how late it started
against its schedule, which shows whether the load generator itself kept up.

Reuses bench/loadgen.py's request rendering and response reader. Library only: bench/latency.py drives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.loadgen import Target, _ConnectionLost, _read_response, percentile

_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass(slots=True)
class Sample:
    at_s: float  # its scheduled start, seconds from the beginning of the run
    late_ms: float  # how long after its scheduled time the request was written
    latency_ms: float  # write -> last byte of the answer; 0 on error
    status: int  # 0 on error
    error: str = ""
    size: int = 0


@dataclass
class OpenLoopResult:
    samples: list[Sample] = field(default_factory=list)
    connections_opened: int = 0
    wall_s: float = 0.0

    @property
    def errors(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for sample in self.samples:
            if sample.error:
                counts[sample.error] = counts.get(sample.error, 0) + 1
        return counts

    def statuses(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for sample in self.samples:
            if not sample.error:
                counts[sample.status] = counts.get(sample.status, 0) + 1
        return counts

    def latencies_ms(self) -> list[float]:
        return sorted(s.latency_ms for s in self.samples if not s.error and s.status == 200)

    def late_ms(self) -> list[float]:
        return sorted(s.late_ms for s in self.samples)


def spread(count: int, over_s: float) -> list[float]:
    """``count`` start times evenly spread over ``over_s`` seconds (all at 0 when ``over_s`` is 0)."""
    if over_s <= 0:
        return [0.0] * count
    return [over_s * i / count for i in range(count)]


def at_rate(rate: float, duration_s: float) -> list[float]:
    return [i / rate for i in range(int(rate * duration_s))]


def raise_open_file_limit() -> int:
    """As many sockets as the hard limit allows (thousands of connections; children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def run_open_loop(target: Target, starts: Sequence[float], timeout_s: float) -> OpenLoopResult:
    """Start one request at each time of ``starts`` (seconds from now); wait for all of them."""
    result = OpenLoopResult()
    idle: list[_Connection] = []
    loop = asyncio.get_running_loop()
    began = time.perf_counter()

    async def connect() -> _Connection:
        result.connections_opened += 1
        return await asyncio.wait_for(asyncio.open_connection(target.host, target.port, limit=1 << 20), timeout_s)

    async def exchange(connection: _Connection) -> tuple[int, int, bool, float]:
        reader, writer = connection
        sent = time.perf_counter()
        writer.write(target.request)
        status, size, keep_alive = await asyncio.wait_for(_read_response(reader), timeout_s)
        return status, size, keep_alive, (time.perf_counter() - sent) * 1000

    async def one(scheduled: float) -> None:
        at_s = scheduled - began
        late_ms = (time.perf_counter() - scheduled) * 1000
        connection = idle.pop() if idle else None
        reused = connection is not None
        try:
            if connection is None:
                connection = await connect()
            try:
                status, size, keep_alive, latency_ms = await exchange(connection)
            except (_ConnectionLost, ConnectionError):
                if not reused:
                    raise
                # An idle keep-alive connection the server had closed: once more on a fresh one.
                await _close(connection)
                connection = await connect()
                status, size, keep_alive, latency_ms = await exchange(connection)
        except (OSError, _ConnectionLost, TimeoutError) as exc:
            result.samples.append(Sample(at_s, late_ms, 0.0, 0, type(exc).__name__))
            if connection is not None:
                await _close(connection)
            return
        result.samples.append(Sample(at_s, late_ms, latency_ms, status, size=size))
        if keep_alive:
            idle.append(connection)
        else:
            await _close(connection)

    running: set[asyncio.Task] = set()  # only the unfinished ones: tens of thousands of done tasks cost memory
    for start in starts:
        scheduled = began + start
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = loop.create_task(one(scheduled))
        running.add(task)
        task.add_done_callback(running.discard)
    while running:
        await asyncio.gather(*running)
    result.wall_s = time.perf_counter() - began
    for connection in idle:
        await _close(connection)
    return result


async def _close(connection: _Connection) -> None:
    writer = connection[1]
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()


def run(target: Target, starts: Sequence[float], timeout_s: float) -> OpenLoopResult:
    """``run_open_loop`` on a fresh event loop (uvloop when available), without the cyclic garbage collector:
    its full collections over tens of thousands of live objects stall the loop long enough to show up as
    server latency."""
    gc.collect()
    gc.disable()
    try:
        try:
            import uvloop
        except ImportError:
            return asyncio.run(run_open_loop(target, starts, timeout_s))
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(run_open_loop(target, starts, timeout_s))
    finally:
        gc.enable()


__all__ = ["OpenLoopResult", "Sample", "at_rate", "percentile", "raise_open_file_limit", "run", "spread"]
