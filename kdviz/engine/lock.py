"""One writer per run folder: an exclusive ``fcntl.flock`` on ``<run>/writer.lock``.

Two processes (or two jobs in one process) appending to the same ``metrics.jsonl`` interleave and
renumber each other's records, so the second writer is refused with a message naming the first
(pid, host, start time, written into the lock file). ``flock`` locks belong to an open file: the OS
drops them when the holder closes the file or dies, ``kill -9`` included, so a lock never outlives
its writer and needs no clean-up. A reader asks :func:`writer_alive` to tell a live run from one
whose process is gone (an "interrupted" run) without guessing from timestamps.

``flock`` is advisory and, on some network file systems, local to one machine; run folders are
meant to live on a local disk.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any

LOCK_NAME = "writer.lock"
ACQUIRE_WAIT_S = 0.5  # a reader's probe holds the lock for microseconds; never wait for a real writer


class RunFolderLocked(ValueError):
    """Another live process (or job) is writing this run folder."""


def _would_block(exc: OSError) -> bool:
    return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)


def lock_holder(folder: str | os.PathLike) -> dict[str, Any]:
    """What the lock file says about its (last) writer: pid, host, started; {} if unreadable."""
    try:
        data = json.loads((Path(folder) / LOCK_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def describe_holder(holder: dict[str, Any]) -> str:
    """``"process 1234 on host lab1 (started 2026-11-29 09:30:00 UTC)"``, or "another process"."""
    if not holder.get("pid"):
        return "another process"
    started = holder.get("started")
    when = f" (started {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(started))})" if isinstance(started, (int, float)) else ""
    return f"process {holder['pid']} on host {holder.get('host', '?')}{when}"


def writer_alive(folder: str | os.PathLike) -> bool | None:
    """True while some process holds the folder's writer lock, False when none does, None when the
    folder has no lock file (a run written before locks existed: nothing can be said)."""
    try:
        fd = os.open(Path(folder) / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if _would_block(exc):
            return True
        return None  # a file system without flock (ENOLCK): nothing can be said
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


class WriterLock:
    """The exclusive writer lock of one run folder; ``acquire`` raises :class:`RunFolderLocked`."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.path = Path(folder) / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "WriterLock":
        if self._fd is not None:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + ACQUIRE_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if not _would_block(exc):  # a file system without flock: write unlocked, as before locks
                    os.close(fd)
                    warnings.warn(f"{self.path}: cannot lock ({exc.strerror}); another writer would not be detected", RuntimeWarning)
                    return self
                if time.monotonic() > deadline:
                    os.close(fd)
                    holder = describe_holder(lock_holder(self.path.parent))
                    raise RunFolderLocked(f"run folder {self.path.parent} is being written by {holder}; "
                                          f"stop that run first (one writer per run folder)") from None
                time.sleep(0.01)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Unlock (the holder information stays in the file, describing the last writer)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def __del__(self) -> None:  # a writer nobody holds any more can write nothing: free its folder
        try:
            self.release()
        except OSError:
            pass
