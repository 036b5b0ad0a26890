"""Prometheus metrics of the data plane, correct across uvicorn worker processes.

What other parts of the pipeline call (each is O(1), lock-free, never raises, and safe to call from any
process, even one that never serves `/metrics`):

    record_rate_limited(deployment, reason)    a 429 from the limiter; reason "tokens" or "requests"
    record_fault(deployment, kind)             an injected fault; kind "500", "503", "429", "timeout",
                                               "reset", "truncate", "malformed", "content_filter", ...
                                               ("truncate:5" counts as "truncate": labels stay few)
    record_replay(hit, deployment=...)         a replay lookup: hit=True served a recording, False missed

The transport (consumers.py) calls request_started() / request_finished(...) once per request.
limits_app and recordings_app must not import this module (the arrows go one way): they return what
happened (a 429 with its reason, the fault they picked, hit or miss) and the pipeline records it here.

Why the counters are not prometheus_client's own on the hot path: in multiprocess mode each inc() takes a
lock, calls getpid() and writes an mmap (about 1.2 µs a counter, 3.2 µs a histogram observation, 13 µs a
request in all). Here the hot path adds to plain dicts in this process (well under 1 µs a request) and a
background task moves the sums into prometheus_client's multiprocess files every
SIMULATOR_METRICS_FLUSH_SECONDS (and at exit, and before this process renders /metrics). A scrape
therefore sees other processes' requests at most one flush interval late, and every count exactly.

Multiprocess mode is on when PROMETHEUS_MULTIPROC_DIR is set before prometheus_client is imported:
`manage.py serve` sets it up (a fresh directory per start) for all its workers.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import glob
import logging
import os
import re
from bisect import bisect_left

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

logger = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
# Seconds. The simulator's own answers take about a millisecond; configured latencies reach tens of seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                   float("inf"))
RATE_LIMIT_REASONS = ("tokens", "requests")
MULTIPROCESS = bool(getattr(values.ValueClass, "_multiprocess", False))

_registry = CollectorRegistry(auto_describe=True)
REQUESTS = Counter("simulator_requests", "Data-plane requests answered, by deployment, operation, status and mode.",
                   ["deployment", "operation", "status", "mode"], registry=_registry)
PROMPT_TOKENS = Counter("simulator_prompt_tokens", "Prompt tokens of successful requests (usage.prompt_tokens).",
                        ["deployment", "operation"], registry=_registry)
COMPLETION_TOKENS = Counter("simulator_completion_tokens",
                            "Completion tokens of successful requests (usage.completion_tokens).",
                            ["deployment", "operation"], registry=_registry)
RATE_LIMITED = Counter("simulator_rate_limited", "429 answers from the rate limiter, by reason (tokens, requests).",
                       ["deployment", "reason"], registry=_registry)
FAULTS = Counter("simulator_faults_injected", "Faults injected by the deployment's fault profile, by kind.",
                 ["deployment", "kind"], registry=_registry)
REPLAY = Counter("simulator_replay_lookups", "Replay lookups against the recording set, by result (hit, miss).",
                 ["deployment", "result"], registry=_registry)
TIME_TO_FIRST_BYTE = Histogram("simulator_time_to_first_byte_seconds",
                               "From the whole request received to the first response body byte sent.",
                               ["deployment", "operation"], buckets=LATENCY_BUCKETS, registry=_registry)
REQUEST_DURATION = Histogram("simulator_request_duration_seconds",
                             "From the whole request received to the last response byte sent.",
                             ["deployment", "operation"], buckets=LATENCY_BUCKETS, registry=_registry)
IN_FLIGHT = Gauge("simulator_requests_in_flight", "Data-plane requests being answered right now (all processes).",
                  registry=_registry, multiprocess_mode="livesum")
RESIDENT_MEMORY = Gauge("simulator_process_resident_memory_bytes", "Resident memory of each serving process.",
                        registry=_registry, multiprocess_mode="liveall")

# --- the per-process pending sums (the hot path touches only these) -------------------------------------
_counts: dict[tuple[Counter, tuple[str, ...]], float] = {}
_histograms: dict[tuple[Histogram, tuple[str, str]], list[float]] = {}  # bucket counts..., then the sum
_in_flight = 0
_flusher: asyncio.Task | None = None
_SUM = len(LATENCY_BUCKETS)
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _add(metric: Counter, labels: tuple[str, ...], amount: float = 1) -> None:
    key = (metric, labels)
    _counts[key] = _counts.get(key, 0) + amount


def _observe(metric: Histogram, labels: tuple[str, str], seconds: float) -> None:
    key = (metric, labels)
    pending = _histograms.get(key)
    if pending is None:
        pending = _histograms[key] = [0.0] * (_SUM + 1)
    pending[bisect_left(LATENCY_BUCKETS, seconds)] += 1
    pending[_SUM] += seconds


def request_started() -> None:
    global _in_flight
    _in_flight += 1
    if _flusher is None:
        _start_flusher()


def request_finished(deployment: str, operation: str, status: int, mode: str, prompt_tokens: int,
                     completion_tokens: int, first_byte_seconds: float | None, total_seconds: float) -> None:
    """One answered request (called once, whatever happened: success, error, client gone)."""
    global _in_flight
    _in_flight -= 1
    _add(REQUESTS, (deployment, operation, str(status), mode))
    if status == 200:
        if prompt_tokens:
            _add(PROMPT_TOKENS, (deployment, operation), prompt_tokens)
        if completion_tokens:
            _add(COMPLETION_TOKENS, (deployment, operation), completion_tokens)
    if first_byte_seconds is not None:
        _observe(TIME_TO_FIRST_BYTE, (deployment, operation), first_byte_seconds)
    _observe(REQUEST_DURATION, (deployment, operation), total_seconds)


def record_rate_limited(deployment: str, reason: str) -> None:
    """A 429 from the limiter. reason: "tokens" (TPM) or "requests" (RPM)."""
    _add(RATE_LIMITED, (deployment, reason))


def record_fault(deployment: str, kind: str) -> None:
    """A fault the fault profile injected; a parameter after ':' (truncate:5) is dropped from the label."""
    _add(FAULTS, (deployment, kind.partition(":")[0]))


def record_replay(hit: bool, *, deployment: str = "") -> None:
    """A replay lookup: hit=True when a recording answered, False when none matched."""
    _add(REPLAY, (deployment, "hit" if hit else "miss"))


# --- moving the sums into prometheus_client, off the hot path --------------------------------------------
def flush() -> None:
    """Move this process's pending sums into the (multiprocess) metric values."""
    global _counts, _histograms
    counts, _counts = _counts, {}
    histograms, _histograms = _histograms, {}
    try:
        for (metric, labels), amount in counts.items():
            metric.labels(*labels).inc(amount)
        for (metric, labels), pending in histograms.items():
            child = metric.labels(*labels)
            for index in range(_SUM):
                if pending[index]:
                    child._buckets[index].inc(pending[index])
            child._sum.inc(pending[_SUM])
        IN_FLIGHT.set(_in_flight)
        RESIDENT_MEMORY.set(_resident_bytes())
    except Exception:  # metrics must never take the data plane down
        logger.exception("could not flush metrics")


def _resident_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0


def _start_flusher() -> None:
    global _flusher
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return  # not on an event loop (a script, a test): render() flushes
    _flusher = loop.create_task(_flush_periodically())


async def _flush_periodically() -> None:
    from django.conf import settings

    interval = getattr(settings, "SIMULATOR_METRICS_FLUSH_SECONDS", 0.5)
    while True:
        await asyncio.sleep(interval)
        flush()


atexit.register(flush)  # a stopped worker's last requests still count


# --- /metrics --------------------------------------------------------------------------------------------
_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db$")


def _forget_dead_processes(directory: str) -> None:
    """A worker that died (and was replaced) must not keep its in-flight count and memory in the totals."""
    from prometheus_client import multiprocess

    dead = set()
    for path in glob.glob(os.path.join(directory, "gauge_live*.db")):
        match = _LIVE_GAUGE_FILE.search(os.path.basename(path))
        if match is None:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            dead.add(pid)
        except PermissionError:
            pass  # alive, someone else's
    for pid in dead:
        with contextlib.suppress(FileNotFoundError):
            multiprocess.mark_process_dead(pid, directory)


def render() -> bytes:
    """The Prometheus text exposition of all processes (sync: call it off the event loop, after flush())."""
    if not MULTIPROCESS:
        return generate_latest(_registry)
    from prometheus_client import multiprocess

    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    _forget_dead_processes(directory)
    scrape_registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(scrape_registry, path=directory)
    return generate_latest(scrape_registry)

