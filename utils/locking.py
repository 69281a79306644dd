"""An advisory OS lock on a file, with the holder's PID in it.

``fcntl.flock`` locks belong to the open file: they vanish when the holding process dies
(even by ``kill -9``), so a stale lock from a dead process is simply taken over. Where
fcntl does not exist (Windows) nothing is locked.
"""
import contextlib
import os
from typing import Iterator, Optional

from utils.errors import UserError


def _holder(path: str) -> str:
    try:
        with open(path) as f:
            pid = f.read().strip()
        return f"PID {pid}" if pid else "another process"
    except OSError:
        return "another process"


@contextlib.contextmanager
def try_lock(path: str) -> Iterator[Optional[str]]:
    """Hold an exclusive lock on ``path`` for the block; yields None when it is ours, else
    the description of the holder (e.g. 'PID 1234'), without waiting."""
    try:
        import fcntl
    except ImportError:  # no advisory locks: no protection
        yield None
        return
    try:
        f = open(path, "a+")
    except OSError as err:
        raise UserError(f"cannot create the lock file '{path}': {err.strerror}") from None
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield _holder(path)
            return
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield None
        finally:
            f.seek(0)
            f.truncate()  # released when the file is closed


@contextlib.contextmanager
def hold_lock(path: str, what: str) -> Iterator[None]:
    """Hold ``path``'s lock for the block, or fail with one line naming the holder."""
    with try_lock(path) as holder:
        if holder is not None:
            raise UserError(f"{what} is in use by {holder} (lock '{path}'); wait for it or stop it")
        yield
