"""An exclusive lock on a run folder: ``flock`` on a file inside it, so the kernel frees it when the holder dies."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from lmxray.errors import LmxrayError
from lmxray.special import special_kind

LOCK_NAME = ".lmxray.lock"  # holds the pid of the run that has the folder


class FolderLock:
    """One run's hold on a folder; a second ``acquire`` on the same folder (any process) is refused at once."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.created_folder = False
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Create the folder if needed and take the lock; LmxrayError naming the holder's pid if another run has it."""
        if self.held:
            return
        self.created_folder = not self.folder.exists()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise LmxrayError(f"cannot create the run folder {self.folder}: {e.strerror or e}",
                              "choose a writable folder for --out") from None
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                holder = _read_pid(fd)
                os.close(fd)
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise LmxrayError(f"cannot lock the run folder {self.folder}: {e.strerror or e}",
                                      "use a folder on a local disk for --out") from None
                raise _in_use(self.folder, holder) from None
            if self._still_linked(fd):  # else the previous holder removed the file between our open and flock
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self, remove_folder: bool = False) -> None:
        """Free the lock; with ``remove_folder``, also remove the lock file and the folder if this run created it
        and nothing else is in it."""
        if self._fd is None:
            return
        try:
            if remove_folder and self.created_folder:
                self.path.unlink(missing_ok=True)  # while still held, so no one locks a file about to vanish
                try:
                    self.folder.rmdir()
                except OSError:
                    pass
        finally:
            os.close(self._fd)  # closing the last descriptor frees the flock
            self._fd = None

    def _open(self) -> int:
        kind = special_kind(self.path)
        if kind is not None:
            raise LmxrayError(f"the lock file {self.path} is {kind}, not a regular file",
                              f"remove {self.path}, or choose another folder for --out")
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        except OSError as e:
            raise LmxrayError(f"cannot create the lock file {self.path}: {e.strerror or e}",
                              "choose a writable folder for --out") from None
        try:
            os.fchmod(fd, 0o644)  # like every other file of a run folder, whatever the umask
        except OSError:
            pass  # a lock file made by another user stays as it is
        return fd

    def _still_linked(self, fd: int) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def _in_use(folder: Path, pid: int | None) -> LmxrayError:
    if pid is None:
        who = "another lmxray run"
    elif pid == os.getpid():
        who = f"another run in this process (pid {pid})"
    else:
        who = f"another lmxray run (pid {pid})"
    stop = f"stop it (kill {pid})" if pid is not None and pid != os.getpid() else "stop it"
    return LmxrayError(f"the run folder {folder} is in use by {who}",
                       f"wait for that run to finish or {stop}, or choose another folder for --out")
