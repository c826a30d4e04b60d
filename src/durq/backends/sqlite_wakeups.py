"""Noticing other processes' commits to an SQLite file while idle, without polling.

A commit in WAL mode writes the ``-wal`` file, and on Linux inotify tells every process that
watches the folder at once. An idle worker sleeps on the inotify descriptor (costing no CPU),
and on each event reads ``PRAGMA data_version``, which moves only when another connection
commits, so its own writes and other files' are told apart. Where inotify is missing (not
Linux, or the limit of watches reached), it polls ``data_version`` every few milliseconds.

The folder is watched, not the ``-wal`` file: SQLite deletes and recreates that file as
connections come and go, which would end a watch on the file itself.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import struct
import time
from pathlib import Path

POLL_EVERY = 0.004  # seconds between data_version reads where inotify is missing
# A commit writes the -wal file first and becomes visible a moment later (in the shared
# memory index, which no event reports): after an event, look again for this long.
SETTLE = (0.0005, 0.001, 0.002, 0.004, 0.008)

# <sys/inotify.h>
_IN_MODIFY = 0x002
_IN_CLOSE_WRITE = 0x008
_IN_MOVED_TO = 0x080
_IN_CREATE = 0x100
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = 0o2000000
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    except OSError:
        return None
    return libc if hasattr(libc, "inotify_init1") else None


_LIBC = _libc()


class FileWatch:
    """Wakes a waiter when a file of one database (the file, its ``-wal``, ``-journal``)
    is written by anyone. ``wait`` may also return early for no reason: callers check."""

    def __init__(self, database: Path) -> None:
        self._names = {database.name.encode() + suffix for suffix in (b"", b"-wal", b"-journal")}
        self._folder = str(database.parent.resolve())
        self._pid = os.getpid()
        self._fd = self._open()

    def _open(self) -> int | None:
        if _LIBC is None:
            return None
        fd = int(_LIBC.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC))
        if fd < 0:
            return None
        mask = _IN_MODIFY | _IN_CLOSE_WRITE | _IN_MOVED_TO | _IN_CREATE
        if _LIBC.inotify_add_watch(fd, self._folder.encode(), mask) < 0:
            os.close(fd)
            return None
        return fd

    def _descriptor(self) -> int | None:
        if self._pid != os.getpid():
            # A forked child shares the parent's inotify instance: reading from it would
            # take the parent's events. Leave that descriptor and make one of its own.
            self._pid = os.getpid()
            self._fd = self._open()
        return self._fd

    @property
    def polling(self) -> bool:
        """True where inotify is missing: ``wait`` just sleeps a few milliseconds."""
        return self._descriptor() is None

    def drain(self) -> None:
        """Forget the events so far (call before looking at the database)."""
        fd = self._descriptor()
        if fd is not None:
            self._read(fd)

    def wait(self, timeout: float) -> bool:
        """Sleep until a file of the database may have been written, or ``timeout``;
        whether it was written (polling: whether to look, always)."""
        fd = self._descriptor()
        if fd is None:
            select.select([], [], [], min(timeout, POLL_EVERY))
            return True
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                ready, _, _ = select.select([fd], [], [], left)
            except (OSError, ValueError):
                return True  # closed under us (the queue is closing): let the caller look
            if not ready:
                return False
            if self._read(fd):
                return True
            # Another file of the folder was written: sleep on.

    def _read(self, fd: int) -> bool:
        """Take every pending event; whether one was about this database's files."""
        ours = False
        while True:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                return ours
            except OSError:
                return True  # closed under us
            offset = 0
            while offset + _EVENT.size <= len(data):
                _, _, _, size = _EVENT.unpack_from(data, offset)
                name = data[offset + _EVENT.size : offset + _EVENT.size + size].rstrip(b"\0")
                ours = ours or name in self._names
                offset += _EVENT.size + size

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None
