"""``python -m bench.recordings_io``: import and export throughput and peak memory of recording jobs.

For each size (default 10,000 and 50,000 recordings; a quarter of them streams of 14 events, the rest JSON
answers, both shaped like the real AOAI traffic in tests/reference/aoai-recordings), on a fresh database:

1. ``generate``: the set is written straight to the database (bulk insert; not what is measured);
2. ``export``: jobs.export_to_path, the service behind ``export_recordings`` and the export task;
3. ``import``: jobs.import_files of that file into a new set, the service behind ``import_recordings`` and
   the import task (one transaction, every recording normalized and keyed as record mode does).

Each phase runs in its own process, so "peak RSS" is that phase's own high-water mark (ru_maxrss) and
"base RSS" the same process before the work: bounded memory shows as a peak that does not grow with the
size. The database is SQLite in a temporary directory, or a fresh PostgreSQL database next to the one
``DATABASE_URL`` names when it names one (``--sqlite`` forces SQLite).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.server import PROJECT_DIR, _FreshPostgresDatabase, is_postgres_url

STREAM_EVERY = 4  # one recording in four is a stream


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "simulator_project.settings")
    import django

    django.setup()


# --- the phases (child processes) -----------------------------------------------------------------------


def _templates() -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, str]]:
    from recordings_app.formats.common import clean_headers
    from tests.support.reference import load_cassette

    sync = load_cassette("basic-chat-sync")[0]
    stream = load_cassette("basic-chat-stream")[0]
    headers = clean_headers(sync.response.headers)
    events = [{"offset_ms": 300.0 + 12.5 * index, "data": "[DONE]" if event["data"] == "[DONE]"
               else json.dumps(event["data"], separators=(",", ":"))}
              for index, event in enumerate(stream.response.body)]
    return sync.response.body, events, headers


def phase_generate(count: int) -> dict[str, Any]:
    from recordings_app.matching import match_key, normalize_body
    from recordings_app.models import Recording, RecordingSet

    body, events, headers = _templates()
    recording_set = RecordingSet.objects.create(name="bench")
    started = time.perf_counter()
    batch = []
    for index in range(count):
        request = normalize_body({"messages": [{"role": "user", "content": f"What is {index} + 42?"}],
                                  "model": "gpt-4o-mini", "stream": index % STREAM_EVERY == 0})
        is_stream = index % STREAM_EVERY == 0
        answer = {**body, "id": f"chatcmpl-bench{index:08d}"}
        batch.append(Recording(
            recording_set=recording_set, deployment_name="gpt-4o-mini", operation="chat",
            match_key=match_key("POST", "chat", request, recording_set.ignore_fields), request_body=request,
            status=200, headers=headers, body="" if is_stream else json.dumps(answer, separators=(",", ":")),
            is_stream=is_stream, stream_events=events if is_stream else [], duration_ms=812.0,
        ))
        if len(batch) == 1000:
            Recording.objects.bulk_create(batch)
            batch.clear()
    Recording.objects.bulk_create(batch)
    return {"seconds": time.perf_counter() - started}


def phase_export(count: int, path: Path) -> dict[str, Any]:
    from recordings_app.jobs import export_to_path
    from recordings_app.models import RecordingSet

    base = _current_rss_mb()
    started = time.perf_counter()
    job = export_to_path(RecordingSet.objects.get(name="bench"), path)
    seconds = time.perf_counter() - started
    assert job.created_count == count, job.message
    return {"seconds": seconds, "base_rss_mb": base, "peak_rss_mb": _rss_mb(), "file_mb": path.stat().st_size / 2**20}


def phase_import(count: int, path: Path) -> dict[str, Any]:
    from recordings_app.jobs import import_files
    from recordings_app.models import JobStatus

    base = _current_rss_mb()
    started = time.perf_counter()
    job = import_files([path], set_name="bench-copy")
    seconds = time.perf_counter() - started
    assert job.status == JobStatus.SUCCEEDED and job.created_count == count, (job.message, job.errors[:3])
    return {"seconds": seconds, "base_rss_mb": base, "peak_rss_mb": _rss_mb(), "file_mb": path.stat().st_size / 2**20}


def run_phase(args: argparse.Namespace) -> None:
    _setup_django()
    if args.phase == "migrate":
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        result: dict[str, Any] = {}
    elif args.phase == "generate":
        result = phase_generate(args.count)
    elif args.phase == "export":
        result = phase_export(args.count, Path(args.file))
    else:
        result = phase_import(args.count, Path(args.file))
    print(json.dumps(result))


# --- the driver -----------------------------------------------------------------------------------------


def _child(phase: str, count: int, file: Path, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.recordings_io", "--phase", phase, "--count", str(count), "--file", str(file)],
        cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"phase {phase} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(count: int, use_postgres: bool) -> tuple[str, dict[str, dict[str, Any]]]:
    data_dir = Path(tempfile.mkdtemp(prefix="bench-recordings-"))
    env = {**os.environ, "SIMULATOR_DATA_DIR": str(data_dir), "SIMULATOR_LOG_LEVEL": "WARNING"}
    database = None
    if use_postgres:
        database = _FreshPostgresDatabase(os.environ["DATABASE_URL"])
        database.create()
        env["DATABASE_URL"] = database.url
    else:
        env.pop("DATABASE_URL", None)
    try:
        file = data_dir / "bench.yaml"
        _child("migrate", count, file, env)
        _child("generate", count, file, env)
        results = {"export": _child("export", count, file, env), "import": _child("import", count, file, env)}
        return ("postgresql" if use_postgres else "sqlite"), results
    finally:
        if database is not None:
            database.drop()
        shutil.rmtree(data_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recordings_io", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000", help="comma-separated recording counts")
    parser.add_argument("--sqlite", action="store_true", help="SQLite even when DATABASE_URL names PostgreSQL")
    parser.add_argument("--phase", choices=("migrate", "generate", "export", "import"), help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--file", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        run_phase(args)
        return 0
    use_postgres = not args.sqlite and is_postgres_url(os.environ.get("DATABASE_URL", ""))
    print(f"{'database':<11}{'phase':<8}{'recordings':>11}{'seconds':>9}{'rec/s':>9}{'base RSS MB':>13}"
          f"{'peak RSS MB':>13}{'file MB':>9}")
    for size in (int(item) for item in args.sizes.split(",")):
        backend, results = measure(size, use_postgres)
        for phase, result in results.items():
            print(f"{backend:<11}{phase:<8}{size:>11,}{result['seconds']:>9.1f}{size / result['seconds']:>9,.0f}"
                  f"{result['base_rss_mb']:>13.0f}{result['peak_rss_mb']:>13.0f}{result['file_mb']:>9.1f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
