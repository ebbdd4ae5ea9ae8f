"""The store's one error type, and a failing disk told in plain words."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path


class StoreError(Exception):
    """The data directory cannot be written (or read): its message is meant for the user."""


def why(exc: sqlite3.Error | OSError) -> str:
    """SQLite's and the OS's words for a failing disk ("unable to open database file", "[Errno 30]
    Read-only file system") in plain words."""
    if isinstance(exc, OSError) and exc.errno is not None:
        # By the error number, not the message: the message carries the path, which may say "full".
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return "the disk is full"
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return "the folder is not writable"
        text = (exc.strerror or "").lower()
    else:
        text = str(exc).lower()
    if "full" in text or "no space" in text:
        return "the disk is full"
    if "readonly" in text or "read-only" in text or "permission" in text or "unable to open" in text:
        return "the folder is not writable"
    return str(exc)


def friendly(exc: sqlite3.Error, path: Path) -> StoreError:
    """A write that failed, as the user reads it: where, why, and what to do."""
    return StoreError(
        f"Can't save results to {path.parent}: {why(exc)}. Free space or fix the folder, then resume."
    )
