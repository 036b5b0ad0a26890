"""`python -m simulator_project.healthcheck [readyz|healthz]`: exit 0 when this container's web server answers
200, 1 otherwise. The image has no curl; this needs only the standard library (no Django start-up)."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    probe = argv[1] if len(argv) > 1 else "readyz"
    port = os.environ.get("SIMULATOR_PORT", "8000")
    url = f"http://127.0.0.1:{port}/{probe}"
    try:
        with urllib.request.urlopen(url, timeout=4) as answer:  # under the compose check's 5 s timeout
            ok = answer.status == 200
            detail = answer.read(500).decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        ok, detail = False, error.read(500).decode("utf-8", "replace")
    except OSError as error:
        ok, detail = False, str(error)
    print(f"{url}: {'ok' if ok else 'failing'} {detail.strip()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
