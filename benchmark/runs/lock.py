"""One writer per run directory: a lock file that works across hosts on a shared filesystem.

A run directory holds ``lock.json`` = ``{host, pid, token, started, heartbeat}`` while one process
trains/evaluates it. The mechanism is only ``os.open(O_CREAT | O_EXCL)`` and ``os.rename`` (no
fcntl/flock, which are unreliable on network filesystems):

* acquire: create ``lock.json`` exclusively; among racing creators exactly one succeeds.
* a lock is *dead* if its pid is gone on this host, or its heartbeat is older than
  ``stale_after`` (env ``FAIRBENCH_LOCK_STALE``, default 600 s); an unreadable/partial file is dead
  once unmodified for ``CORRUPT_GRACE`` s (so a file caught mid-write is never stolen).
* take over a dead lock: rename it to a unique ``.lock.json.stale-<hex>``, check that the renamed
  file is byte-for-byte the one judged dead (else put it back with ``os.link``, which never
  overwrites), delete it and retry the exclusive create. Two racing takers cannot both win.
* the owner's daemon thread rewrites the heartbeat every ``heartbeat_every`` s (env
  ``FAIRBENCH_LOCK_HEARTBEAT``, default 30 s) via temp file + ``os.replace``, only while the file
  still holds its token; ``check()`` (call between epochs) raises ``LockLost`` otherwise.

Guarantee: while the owner is alive and its heartbeat reaches the filesystem, nobody else
acquires the lock. Residual risks: staleness compares the writer's clock with the reader's, so
clock skew between hosts beyond ``stale_after`` breaks it (keep NTP on, keep stale_after large);
an owner stalled for longer than ``stale_after`` (suspended job, hung NFS) is taken over, and
until its next ``check()`` both processes run (a heartbeat written in the instant of a takeover
can even overwrite the taker's file; the taker then gets ``LockLost``); a requeued SLURM job
whose previous owner died on another host waits up to ``stale_after`` (same-host dead pids are
detected at once). The lock is not reentrant and must be released by the process that took it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from benchmark.common.errors import UserError
from benchmark.runs.lock_file import (
    DEFAULT_HEARTBEAT,
    DEFAULT_STALE,
    LockHeld,
    LockLost,
    encode_lock,
    env_seconds,
    is_live,
    parse_lock,
    read_raw,
    unlink_quiet,
    write_all,
)
from benchmark.runs.schema import LOCK_FILE, LockInfo

_TAKE_ATTEMPTS = 20


class RunLock:
    """Exclusive lock on one run directory. ``acquire()`` returns None on success or the live
    owner's LockInfo; ``with RunLock(root):`` raises ``LockHeld`` instead."""

    def __init__(self, root: Path, *, stale_after: float | None = None,
                 heartbeat_every: float | None = None) -> None:
        self.root = Path(root)
        self.path = self.root / LOCK_FILE
        self.stale_after = (env_seconds("FAIRBENCH_LOCK_STALE", DEFAULT_STALE)
                            if stale_after is None else float(stale_after))
        self.heartbeat_every = (env_seconds("FAIRBENCH_LOCK_HEARTBEAT", DEFAULT_HEARTBEAT)
                                if heartbeat_every is None else float(heartbeat_every))
        if not 0 < self.heartbeat_every < self.stale_after:
            raise UserError(f"lock heartbeat ({self.heartbeat_every} s) must be > 0 and shorter "
                            f"than the stale timeout ({self.stale_after} s)")
        self._token: str | None = None
        self._pid = 0
        self._lost = False
        self._io = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def held(self) -> bool:
        """True between a successful acquire and release (even if the lock was since lost)."""
        return self._token is not None

    # -- acquiring ---------------------------------------------------------------------------

    def acquire(self) -> LockInfo | None:
        """Try once: None if we now hold the lock, else the live owner's LockInfo."""
        if self._token is not None and self._pid == os.getpid():
            if not self._lost:
                return None
            self._stop.set()  # lost: forget it and try afresh
            self._token = self._thread = None
        self.root.mkdir(parents=True, exist_ok=True)
        owner: LockInfo | None = None
        for _ in range(_TAKE_ATTEMPTS):
            mine = self._create()
            if mine is not None:
                self._start(mine)
                return None
            raw = read_raw(self.path)
            if raw is None:
                continue  # released meanwhile: retry the create
            owner = parse_lock(raw, self.path)
            if is_live(owner, self.stale_after):
                return owner
            self._claim(raw)  # dead: move it away (if still the same file) and retry
        return owner or parse_lock(b"", self.path)  # lost every race: report as held

    def _create(self) -> LockInfo | None:
        """Exclusive create of the lock file; None if it exists. Removes a partial file on error."""
        now = time.time()
        info = LockInfo(socket.gethostname(), os.getpid(), uuid.uuid4().hex, now, now)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return None
        try:
            write_all(fd, encode_lock(info))
        except BaseException:
            try:
                ino = os.fstat(fd).st_ino
                if os.stat(self.path).st_ino == ino:
                    os.unlink(self.path)
            except OSError:
                pass
            raise
        finally:
            os.close(fd)
        return info

    def _claim(self, expected: bytes) -> bool:
        """Remove the lock file if it still holds exactly ``expected``; True if we removed it.
        Rename-then-verify, so a file created by someone else meanwhile is put back untouched."""
        if read_raw(self.path) != expected:
            return False
        aside = self.root / f".{LOCK_FILE}.stale-{uuid.uuid4().hex}"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return False
        try:
            if read_raw(aside) == expected:
                return True
            try:  # not the file we judged: restore it without overwriting a newer one
                os.link(aside, self.path)
            except FileExistsError:
                pass
            except OSError:  # no hard links on this filesystem
                data = read_raw(aside)
                if data is not None:
                    try:
                        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                    except FileExistsError:
                        pass
                    else:
                        try:
                            write_all(fd, data)
                        finally:
                            os.close(fd)
            return False
        finally:
            unlink_quiet(aside)

    def wait(self, poll: float = 5.0, on_wait: Callable[[LockInfo], None] | None = None,
             timeout: float | None = None) -> None:
        """Block until acquired, polling every ``poll`` s. ``on_wait(owner)`` is called once, when
        we first have to wait. TimeoutError once ``timeout`` s have passed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        waited = False
        while True:
            owner = self.acquire()
            if owner is None:
                return
            if not waited:
                waited = True
                if on_wait is not None:
                    on_wait(owner)
            delay = poll
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.path} still locked by {owner.describe()}")
                delay = min(delay, left)
            time.sleep(delay)

    # -- holding -----------------------------------------------------------------------------

    def _start(self, info: LockInfo) -> None:
        self._token, self._pid, self._lost = info.token, os.getpid(), False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(self._stop,), daemon=True,
                                        name=f"fairbench-lock:{self.root}")
        self._thread.start()

    def _beat(self, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_every):
            try:
                self.touch()
            except LockLost:
                return
            except Exception:  # never crash the process; try again next period
                continue

    def _current(self) -> LockInfo | None:
        """Our lock's content if the file still holds our token; flags and raises LockLost if not.
        Transient read errors return None (unknown, not lost)."""
        if self._token is None:
            raise LockLost(f"{self.path}: lock not held")
        if self._lost:
            raise LockLost(f"{self.path}: lock was taken over by another process")
        try:
            raw = read_raw(self.path)
        except OSError:
            return None
        info = None if raw is None else parse_lock(raw, self.path)
        if info is None or info.token != self._token:
            self._lost = True
            who = "nobody (file removed)" if info is None else info.describe()
            raise LockLost(f"{self.path}: lock was taken over, now held by {who}")
        return info

    def check(self) -> None:
        """Raise LockLost if the lock file no longer holds our token (call between epochs)."""
        self._current()

    def touch(self) -> bool:
        """Write a heartbeat now. Raises LockLost if the lock is no longer ours; returns False if
        the write failed (OSError, e.g. disk full: best effort, the temp file is removed)."""
        with self._io:
            info = self._current()
            if info is None:
                return False
            tmp = self.root / f".{LOCK_FILE}.tmp-{uuid.uuid4().hex}"
            try:
                fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                try:
                    write_all(fd, encode_lock(replace(info, heartbeat=time.time())))
                finally:
                    os.close(fd)
                os.replace(tmp, self.path)
            except OSError:
                unlink_quiet(tmp)
                return False
            return True

    def release(self) -> None:
        """Stop the heartbeat and remove the lock file if it still holds our token. Idempotent,
        best effort (never raises OSError); a no-op in a forked child of the owner."""
        if self._token is None or self._pid != os.getpid():
            return
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        with self._io:
            token, self._token = self._token, None
            try:
                raw = read_raw(self.path)
                if raw is not None and parse_lock(raw, self.path).token == token:
                    self._claim(raw)
            except OSError:
                pass

    def __enter__(self) -> RunLock:
        owner = self.acquire()
        if owner is not None:
            raise LockHeld(owner)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
