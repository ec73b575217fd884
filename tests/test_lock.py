"""benchmark.runs.lock: one writer per run directory (O_EXCL create, stale takeover, heartbeat)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from benchmark.common.errors import UserError
from benchmark.runs.lock import RunLock
from benchmark.runs.lock_file import LockHeld, LockLost, is_live, read_lock
from benchmark.runs.schema import LOCK_FILE, LockInfo

REPO = Path(__file__).resolve().parent.parent


def write_lock(root: Path, **fields: object) -> LockInfo:
    now = time.time()
    info = LockInfo(**{"host": socket.gethostname(), "pid": os.getpid(), "token": "f" * 32,
                       "started": now, "heartbeat": now, **fields})
    root.mkdir(parents=True, exist_ok=True)
    (root / LOCK_FILE).write_text(json.dumps(asdict(info)))
    return info


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith(f".{LOCK_FILE}"))


def wait_for(pred, timeout: float = 3.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def test_acquire_release(tmp_path: Path) -> None:
    root = tmp_path / "results" / "fmnist" / "smoke" / "pgd_at" / "seed0"
    lock = RunLock(root)
    assert read_lock(root) is None
    assert lock.acquire() is None
    assert lock.held
    info = read_lock(root)
    assert info is not None
    assert (info.host, info.pid) == (socket.gethostname(), os.getpid())
    assert len(info.token) == 32 and info.started <= info.heartbeat <= time.time()
    assert is_live(info) and 0 <= info.age() < 5
    assert info.describe().startswith(f"{socket.gethostname()}:{os.getpid()}, heartbeat ")
    lock.check()
    lock.release()
    assert not lock.held and read_lock(root) is None
    lock.release()  # idempotent
    assert leftovers(root) == []


def test_second_lock_sees_owner_and_cannot_acquire(tmp_path: Path) -> None:
    first, second = RunLock(tmp_path), RunLock(tmp_path)
    assert first.acquire() is None
    owner = second.acquire()
    assert owner is not None and owner == read_lock(tmp_path)
    assert owner.pid == os.getpid() and not second.held
    with pytest.raises(LockHeld) as err:
        with RunLock(tmp_path):
            pass
    assert err.value.owner.token == owner.token
    first.release()
    with second:
        assert read_lock(tmp_path).token != owner.token
    assert read_lock(tmp_path) is None


def test_dead_pid_on_this_host_is_taken_over(tmp_path: Path) -> None:
    old = write_lock(tmp_path, pid=dead_pid())
    assert not is_live(old, stale_after=600)
    lock = RunLock(tmp_path)
    assert lock.acquire() is None
    now = read_lock(tmp_path)
    assert now.token != old.token and now.pid == os.getpid()
    lock.release()
    assert leftovers(tmp_path) == []


def test_old_heartbeat_from_other_host_is_stale(tmp_path: Path) -> None:
    old = write_lock(tmp_path, host="some-other-node", pid=1, heartbeat=time.time() - 1000)
    assert not is_live(old, stale_after=600)
    assert is_live(old, stale_after=2000)
    lock = RunLock(tmp_path, stale_after=600)
    assert lock.acquire() is None
    assert read_lock(tmp_path).token != old.token
    lock.release()


def test_fresh_lock_from_other_host_is_live(tmp_path: Path) -> None:
    fresh = write_lock(tmp_path, host="some-other-node", pid=dead_pid())
    assert is_live(fresh, stale_after=600)
    owner = RunLock(tmp_path).acquire()
    assert owner == fresh
    assert read_lock(tmp_path) == fresh  # untouched


def test_stale_after_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = write_lock(tmp_path, host="some-other-node", heartbeat=time.time() - 100)
    monkeypatch.setenv("FAIRBENCH_LOCK_STALE", "50")
    monkeypatch.setenv("FAIRBENCH_LOCK_HEARTBEAT", "7")
    assert not is_live(info)
    lock = RunLock(tmp_path)
    assert (lock.stale_after, lock.heartbeat_every) == (50.0, 7.0)
    monkeypatch.setenv("FAIRBENCH_LOCK_STALE", "200")
    assert is_live(info)
    monkeypatch.setenv("FAIRBENCH_LOCK_STALE", "soon")
    with pytest.raises(UserError, match="FAIRBENCH_LOCK_STALE"):
        RunLock(tmp_path)
    with pytest.raises(UserError, match="shorter"):
        RunLock(tmp_path, stale_after=10, heartbeat_every=10)


def test_corrupt_lock_is_taken_over_once_not_being_written(tmp_path: Path) -> None:
    path = tmp_path / LOCK_FILE
    path.write_bytes(b'{"host": "node1", "pi')
    info = read_lock(tmp_path)  # never raises
    assert info is not None and info.token == "" and "unreadable" in info.describe()
    # just written: may be a writer between its O_EXCL create and its write, so hands off
    assert is_live(info)
    assert RunLock(tmp_path).acquire() is not None
    assert path.read_bytes() == b'{"host": "node1", "pi'
    old = time.time() - 60
    os.utime(path, (old, old))
    assert not is_live(read_lock(tmp_path))
    lock = RunLock(tmp_path)
    assert lock.acquire() is None
    assert read_lock(tmp_path).pid == os.getpid()
    lock.release()
    for garbage in (b"", b"[1, 2]", b'"x"', b'{"host": 1, "pid": "x"}', b"\xff\xfe"):
        path.write_bytes(garbage)
        assert read_lock(tmp_path).token == ""
    assert leftovers(tmp_path) == []


def test_check_raises_after_takeover_and_release_spares_new_owner(tmp_path: Path) -> None:
    lock = RunLock(tmp_path, heartbeat_every=0.05, stale_after=10)
    assert lock.acquire() is None
    lock.check()
    other = write_lock(tmp_path, host="some-other-node", pid=4242, token="a" * 32)
    with pytest.raises(LockLost, match="some-other-node:4242"):
        lock.check()
    with pytest.raises(LockLost):
        lock.touch()
    time.sleep(0.3)  # heartbeat thread must not overwrite the new owner's file
    assert read_lock(tmp_path) == other
    lock.release()
    assert read_lock(tmp_path) == other
    assert leftovers(tmp_path) == []


def test_check_raises_when_file_removed(tmp_path: Path) -> None:
    lock = RunLock(tmp_path)
    assert lock.acquire() is None
    (tmp_path / LOCK_FILE).unlink()
    with pytest.raises(LockLost, match="removed"):
        lock.check()
    lock.release()  # missing file: no error


def test_heartbeat_thread_updates_heartbeat(tmp_path: Path) -> None:
    lock = RunLock(tmp_path, heartbeat_every=0.05, stale_after=10)
    assert lock.acquire() is None
    first = read_lock(tmp_path)
    assert wait_for(lambda: read_lock(tmp_path).heartbeat > first.heartbeat + 0.05)
    later = read_lock(tmp_path)
    assert (later.token, later.started, later.pid) == (first.token, first.started, first.pid)
    assert lock.touch() is True and read_lock(tmp_path).heartbeat >= later.heartbeat
    lock.release()
    assert read_lock(tmp_path) is None and leftovers(tmp_path) == []


def test_heartbeat_survives_write_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lock = RunLock(tmp_path, heartbeat_every=0.05, stale_after=10)
    assert lock.acquire() is None

    def disk_full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(os, "replace", disk_full)
        before = read_lock(tmp_path)
        assert lock.touch() is False
        time.sleep(0.25)
        assert read_lock(tmp_path) == before  # nothing written...
        assert leftovers(tmp_path) == []      # ...and no temp file left behind
        assert lock._thread is not None and lock._thread.is_alive()
    assert wait_for(lambda: read_lock(tmp_path).heartbeat > before.heartbeat)
    lock.check()
    lock.release()


def test_wait_returns_when_holder_releases(tmp_path: Path) -> None:
    holder, waiter = RunLock(tmp_path), RunLock(tmp_path)
    assert holder.acquire() is None
    seen: list[LockInfo] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            waiter.wait(poll=0.02, on_wait=seen.append, timeout=5)
        except BaseException as e:  # surface in the main thread
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.2)
    assert t.is_alive() and not waiter.held
    assert [s.token for s in seen] == [read_lock(tmp_path).token]  # called exactly once
    holder.release()
    t.join(timeout=5)
    assert not t.is_alive() and errors == [] and waiter.held
    assert read_lock(tmp_path).token != seen[0].token
    with pytest.raises(TimeoutError, match="still locked"):
        holder.wait(poll=0.02, timeout=0.1)
    waiter.release()


RACER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from benchmark.runs.lock import RunLock
    base, start, rounds = Path(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    held = []
    for i in range(rounds):
        at = start + 0.04 * i
        while time.time() < at:
            pass
        lock = RunLock(base / f"r{i}", stale_after=60, heartbeat_every=30)
        won = lock.acquire() is None
        if won:
            held.append(lock)  # keep holding: a late racer must still see a live owner
        print(i, int(won), flush=True)
    sys.stdin.read()  # stay alive (pid live) until every racer is done
    for lock in held:
        lock.release()
""")


def test_processes_racing_exactly_one_wins(tmp_path: Path) -> None:
    rounds, racers = 20, 3
    gone = dead_pid()
    for i in range(0, rounds, 2):  # every other round starts from a dead owner's lock
        write_lock(tmp_path / f"r{i}", pid=gone, token=f"{i:032x}")
    start = time.time() + 0.5
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(tmp_path), str(start), str(rounds)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(racers)]
    wins = {i: 0 for i in range(rounds)}
    try:
        for p in procs:
            for _ in range(rounds):
                i, won = map(int, p.stdout.readline().split())
                wins[i] += won
    finally:
        for p in procs:
            p.stdin.close()
            p.wait(timeout=10)
    assert [p.returncode for p in procs] == [0] * racers
    assert wins == {i: 1 for i in range(rounds)}
    for i in range(rounds):
        assert read_lock(tmp_path / f"r{i}") is None  # winners released their locks
        assert leftovers(tmp_path / f"r{i}") == []
