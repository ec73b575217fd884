"""The lock file of a run directory: its name, reading it, and whether its owner is alive."""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict
from pathlib import Path

from benchmark.common.errors import UserError
from benchmark.runs.schema import LOCK_FILE, LockInfo

DEFAULT_STALE = 600.0       # seconds without heartbeat before a lock is dead
DEFAULT_HEARTBEAT = 30.0    # seconds between heartbeats
CORRUPT_GRACE = 5.0         # an unparsable lock file younger than this may be mid-write


class LockHeld(Exception):
    """Raised by ``with RunLock(...)`` when another live process holds the lock."""

    def __init__(self, owner: LockInfo) -> None:
        super().__init__(f"run directory is locked by {owner.describe()}")
        self.owner = owner


class LockLost(Exception):
    """The lock file no longer holds our token: another process took the lock over."""


def env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UserError(f"{name}={raw!r} is not a number of seconds") from None
    if not value > 0:
        raise UserError(f"{name}={raw!r} must be > 0 seconds")
    return value


def read_raw(path: Path) -> bytes | None:
    """The file's bytes, or None if it does not exist (other OSErrors propagate)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def parse_lock(raw: bytes, path: Path) -> LockInfo:
    """Parse lock bytes; anything invalid becomes a token-less LockInfo dated by the file mtime."""
    try:
        d = json.loads(raw)
        info = LockInfo(host=str(d["host"]), pid=int(d["pid"]), token=str(d["token"]),
                        started=float(d["started"]), heartbeat=float(d["heartbeat"]))
        if info.token:
            return info
    except (ValueError, TypeError, KeyError, OverflowError, RecursionError):
        pass
    try:
        mtime = path.stat().st_mtime
    except OSError:
        mtime = time.time()  # vanished or unreadable: assume fresh rather than steal
    return LockInfo(host="?", pid=0, token="", started=mtime, heartbeat=mtime)


def read_lock(root: Path) -> LockInfo | None:
    """The lock of run directory ``root``; None if there is none. Never raises: a corrupt or
    unreadable file gives a LockInfo with ``token == ""``."""
    path = Path(root) / LOCK_FILE
    try:
        raw = read_raw(path)
    except OSError:
        return parse_lock(b"", path)
    return None if raw is None else parse_lock(raw, path)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True  # unknown: do not declare it dead
    return True


def is_live(info: LockInfo, stale_after: float | None = None) -> bool:
    """Whether the lock's owner should be presumed alive (see module docstring)."""
    if stale_after is None:
        stale_after = env_seconds("FAIRBENCH_LOCK_STALE", DEFAULT_STALE)
    if not info.token:
        return info.age() < min(stale_after, CORRUPT_GRACE)
    if info.host == socket.gethostname() and not _pid_alive(info.pid):
        return False
    return info.age() <= stale_after


def unlink_quiet(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.fsync(fd)


def encode_lock(info: LockInfo) -> bytes:
    return (json.dumps(asdict(info), sort_keys=True) + "\n").encode()

