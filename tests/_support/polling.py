"""Waiting for a condition with a deadline, the one polling loop the tests use."""
from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float, what: str, pause: float = 0.05) -> T:
    """Call ``condition`` every ``pause`` seconds until it returns something truthy, and return that;
    fail with ``what`` in the message once ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(pause)
