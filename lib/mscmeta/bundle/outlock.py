"""One run at a time per outputs folder: an exclusive lock on ``<out>/.lock``.

Every stage (:mod:`mscmeta.bundle.pipeline`) and ``make reproduce`` / ``make html`` hold
this lock while they write, so two runs in one folder never interleave: the second one
waits, saying which run it waits for, and then starts from what the first one left (the
Makefile reads the parameters only once it holds the lock). The lock is ``flock(2)`` on
an open file: the kernel releases it when the holder exits, however it exits (Ctrl-C,
``kill -9``), so a stale lock cannot block a later run.

A process that holds the lock runs its children with ``MSCMETA_OUTPUTS_LOCK`` set to the
lock file's path; a stage that finds its own lock there does not take it again.

``python lib/mscmeta/bundle/outlock.py --out outputs --what "make reproduce" -- make ...``
runs a command under the lock. This module uses the standard library only, so the
Makefile can call it with the system Python before the virtual environment exists.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

try:
    from mscmeta.bundle import forkserver
except ImportError:  # run as a script by the system Python (make, before the venv exists)
    import forkserver  # type: ignore[no-redef]  # the module beside this one

#: Environment variable naming the lock file a parent process holds.
LOCK_ENV = "MSCMETA_OUTPUTS_LOCK"
#: Name of the lock file inside the outputs folder.
LOCK_NAME = ".lock"


class OutputsLockError(RuntimeError):
    """The lock file cannot be created or opened (a read-only outputs folder, ...); one line."""


def lock_path(out: str | os.PathLike) -> Path:
    """The lock file of the outputs folder *out* (an absolute path)."""
    return Path(os.path.abspath(out)) / LOCK_NAME


def held_by_parent(out: str | os.PathLike) -> bool:
    """True if a parent process holds the lock of *out* (``MSCMETA_OUTPUTS_LOCK``)."""
    return os.environ.get(LOCK_ENV) == str(lock_path(out))


def _open(path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        hint = " (is the outputs folder read-only?)" if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else ""
        raise OutputsLockError(f"cannot lock the outputs folder: {exc.filename or path}: {exc.strerror}{hint}") from None


def _holder(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode("utf-8", errors="replace").strip()
    return text or "another run"


@contextlib.contextmanager
def outputs_lock(out: str | os.PathLike, what: str = "a stage", wait: bool = True) -> Iterator[None]:
    """Hold the lock of the outputs folder *out* for the duration of the ``with`` block.

    Parameters
    ----------
    out : path-like
        The outputs folder (created if needed).
    what : str
        What holds the lock, shown to a run that has to wait (e.g. ``make reproduce MEASURE=RR``).
    wait : bool
        Wait for the current holder (saying so on stderr) or raise :class:`OutputsLockError`.

    Raises
    ------
    OutputsLockError
        The lock file cannot be created, or the folder is busy and *wait* is false.
    """
    if held_by_parent(out):
        yield
        return
    path = lock_path(out)
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            if not wait:
                raise OutputsLockError(f"{path.parent} is in use by {holder}; try again when it has finished") from None
            sys.stderr.write(f"waiting: {path.parent} is in use by {holder} (one run at a time per outputs folder)\n")
            sys.stderr.flush()
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{what} (pid {os.getpid()})\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # an empty lock file: two finished runs leave identical folders
    finally:
        os.close(fd)  # releases the flock


def run_locked(out: str | os.PathLike, command: list[str], what: str) -> int:
    """Run *command* holding the lock of *out*; its children see ``MSCMETA_OUTPUTS_LOCK``.

    The run gets a folder for its kernel server (``MSCMETA_KERNEL_SERVER``, see
    :mod:`mscmeta.bundle.forkserver`; kept as it is if already set, empty to turn it off),
    and the server is stopped when the command ends.

    Ctrl-C reaches the command through the terminal's process group; this process waits for
    it to finish its own clean-up, then releases the lock. SIGTERM is passed on.
    """
    with outputs_lock(out, what):
        own_server = forkserver.SERVER_ENV not in os.environ
        server = forkserver.new_server_folder(os.getpid()) if own_server else os.environ[forkserver.SERVER_ENV]
        env = dict(os.environ, **{LOCK_ENV: str(lock_path(out)), forkserver.SERVER_ENV: server})
        child = subprocess.Popen(command, env=env, close_fds=False)  # make's jobserver pipes pass through
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signum))
        try:
            while True:
                try:
                    return child.wait()
                except KeyboardInterrupt:
                    continue  # the child got the same Ctrl-C; let it clean up
        finally:
            signal.signal(signal.SIGTERM, previous)
            if own_server:
                forkserver.stop_server(server)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="outlock.py", description="Run a command under the outputs folder's lock.")
    parser.add_argument("--out", required=True, help="outputs folder")
    parser.add_argument("--what", default="a run", help="what holds the lock (shown to a run that waits)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- command and arguments")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    try:
        return run_locked(args.out, command, args.what)
    except OutputsLockError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
