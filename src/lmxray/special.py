"""What a path is when it is not a regular file: outputs only replace regular files, inputs never read devices."""

from __future__ import annotations

import os
import stat

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symlink"))


def special_kind(path) -> str | None:
    """What ``path`` itself is when it exists and is not a regular file ("a FIFO (named pipe)", ...); else None."""
    try:
        mode = os.lstat(path).st_mode
    except (OSError, ValueError):  # missing, or a parent that is not a folder: the caller's I/O reports that
        return None
    return _kind(mode)


def device_kind(path) -> str | None:
    """"a character device", "a block device" or "a socket" when ``path`` (links followed) is one; else None.

    Such an input is never read: /dev/zero would never end, a socket cannot be opened. A pipe is read.
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    return _kind(mode) if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISSOCK(mode) else None


def _kind(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")
