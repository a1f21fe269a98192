"""One process writes a run folder at a time: an advisory lock on `<run>/.lock`.

A training (new or resumed, from the CLI, the TUI or the Python API) takes the
lock in `Trainer.run()` before it writes anything into the folder, and holds it
until the run ends. A second writer gets a one-line error naming the process
that holds it. Reading a run (sample, inspect, info, runs) takes no lock:
checkpoints are replaced atomically, so a reader always sees a whole file.

The lock is the kernel's (`fcntl.flock` on POSIX, `msvcrt.locking` on Windows)
on an open file, not the file's existence: a process killed with `kill -9`
loses it with its file descriptors, so there is never a stale lock to clear.
The file holds the holder's pid and host, for the error message only. It is
removed when the lock is released; a process that locked a file just before it
was removed notices (the path no longer names the file it locked) and tries again.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from ..errors import RunBusyError

NAME = ".lock"

try:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        except OSError as e:  # a filesystem without flock (some network mounts): no lock rather than no run
            import errno

            if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                return True
            raise

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

except ImportError:  # pragma: no cover - Windows
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]


class RunLock:
    """The lock on one run folder; `acquire()` or RunBusyError, `release()` (idempotent)."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / NAME
        self.fd: int | None = None

    def acquire(self) -> "RunLock":
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(100):  # another process may remove the file between our open and our lock
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
            if not _try_lock(fd):
                holder = _holder(fd)
                os.close(fd)
                raise RunBusyError(
                    f"{self.run_dir} is in use by another charrnn process ({holder}); "
                    "wait for it to finish or stop it, or train into another folder."
                )
            if _same_file(fd, self.path):
                break
            os.close(fd)  # we locked a file that was removed as we opened it: take the new one
        else:  # pragma: no cover
            raise RunBusyError(f"could not lock {self.path}; another process keeps replacing it.")
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        try:
            os.unlink(self.path)  # still ours: we hold the lock on the file the path names
        except OSError:
            pass
        try:
            _unlock(fd)
        except OSError:
            pass
        os.close(fd)

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _holder(fd: int) -> str:
    """What the lock file says of its holder ("pid 123 on host"), read without the lock."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 200).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text.splitlines()[0] if text else "pid unknown"
