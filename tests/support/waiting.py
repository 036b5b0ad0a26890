"""Waiting for a running server to catch up (a config poll, a batched write) without fixed sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import openai


def eventually(
    check: Callable[[], Any],
    timeout: float = 10.0,
    interval: float = 0.1,
    retry_on: tuple[type[BaseException], ...] = (AssertionError, openai.APIError),
) -> Any:
    """Call `check` until it stops raising one of `retry_on` (by default an assertion or any SDK error), or
    `timeout` seconds pass (then re-raise)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except retry_on:
            if time.monotonic() > deadline:
                raise
            time.sleep(interval)
