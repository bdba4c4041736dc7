"""Exclusive locks on what one process writes at a time (a run directory, a generated dataset).

``exclusive_lock(lock_file)`` takes ``fcntl.flock(LOCK_EX)`` on ``lock_file`` and writes the holder's PID, host and
command line into it. A second holder fails at once with :class:`LockedError` naming the lock file and the holder
PID, or, with ``wait=True``, blocks until the lock is free. The kernel drops a flock when its process dies, so a
lock file left behind by a killed process never blocks anyone; the file itself is kept (removing it would let two
processes lock two different files of the same name).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sys
from pathlib import Path
from typing import Callable, Iterator

from l1tagger.errors import L1TaggerError


class LockedError(L1TaggerError):
    """Another live process holds the lock (names the lock file and the holder)."""


class RunLockedError(LockedError):
    """Another ``l1tagger run`` is writing the same run directory."""


class DatasetLockedError(LockedError):
    """Another process is generating the same dataset."""


def lock_path_for(path: str | os.PathLike) -> Path:
    """``<path>.lock`` beside a file (``data/x.h5`` -> ``data/x.h5.lock``)."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


def read_holder(lock_file: str | os.PathLike) -> str:
    """The holder recorded in ``lock_file`` ("PID 123 on host: cmd"), or "an unknown process"."""
    try:
        text = Path(lock_file).read_text(errors="replace").strip()
    except OSError:
        text = ""
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    if not fields.get("pid"):
        return "an unknown process"
    where = f" on {fields['host']}" if fields.get("host") else ""
    cmd = f" ({fields['cmd']})" if fields.get("cmd") else ""
    return f"PID {fields['pid']}{where}{cmd}"


@contextlib.contextmanager
def exclusive_lock(lock_file: str | os.PathLike, what: str, wait: bool = False,
                   error: type[LockedError] = LockedError, log: Callable[[str], None] | None = None) -> Iterator[Path]:
    """Hold an exclusive flock on ``lock_file`` for the body of the ``with``.

    what:  what the lock protects, for messages ("run directory runs/x")
    wait:  block until the holder releases it (logging once who holds it) instead of failing at once
    error: the LockedError subclass raised when the lock is held and ``wait`` is False
    """
    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = read_holder(lock_file)
            if not wait:
                raise error(f"{what} is locked by {holder} (lock file {lock_file}); wait for it to finish, or "
                            f"pass --wait-lock to wait") from None
            if log is not None:
                log(f"waiting for {what}: locked by {holder} (lock file {lock_file})")
            fcntl.flock(fd, fcntl.LOCK_EX)
        cmd = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]).replace("\n", " ") if sys.argv and sys.argv[0] else ""
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid={os.getpid()}\nhost={socket.gethostname()}\ncmd={cmd}\n".encode(), 0)
        yield lock_file
    finally:
        os.close(fd)  # releases the flock
