"""Kernels for the stages, and the runners that drive them, forked from processes that have
already imported their libraries.

Every stage of ``make reproduce`` runs its notebook on a new IPython kernel, and each kernel
used to spend ~3 s of CPU importing the same libraries (pandas, SciPy's distributions,
matplotlib, seaborn, pandera, IPython) before its first cell -- about 20 s of a run's CPU
for six stages, and on a new venv the first two stages and the data check compiled the same
bytecode side by side. A *fork server* imports them once (:data:`PRELOAD`); each kernel is
then a fork of it, ready at once, running the code ``python -m ipykernel_launcher`` runs,
with the arguments, working directory, environment and standard streams of the process
jupyter_client started. The bundle's own code is not preloaded: every kernel imports it
afresh, as before.

How a run uses it:

1. ``make reproduce`` (:func:`mscmeta.bundle.outlock.run_locked`) gives the run a private
   folder in :data:`SERVER_ENV` and stops the server when the run ends (the server also
   stops by itself when that process or the folder is gone, or after :data:`IDLE_SECONDS`).
2. The data check runs first, as ``PYTHONHASHSEED=0 SOURCE_DATE_EPOCH=0 python
   -Xfrozen_modules=off -m mscmeta.bundle.forkserver run mscmeta.review.preflight ARGS``
   (the kernels' environment and interpreter options): this starts the server
   (:func:`ensure_server`) and runs the check in a fork of it, once it has imported the
   libraries.
3. A stage's runner starts its kernel with :func:`kernel_manager_class`: jupyter_client's
   manager, whose kernel command ``python -m ipykernel_launcher -f CONN`` becomes ``python
   -m mscmeta.bundle.forkserver kernel -f CONN``.

In both cases a small *stand-in* process is what its caller (make, jupyter_client) runs,
watches, signals and kills: it hands its standard streams to the server, passes
SIGINT/SIGTERM/SIGHUP/SIGQUIT on to the forked process and exits with its status; if the
stand-in is killed, the server kills the fork; if the stand-in's parent dies, the stand-in
kills the fork and exits (as ipykernel's parent poller would). The fork runs the module as
``python -m`` does (:func:`runpy.run_module`, its folder first on ``sys.path``).

Whenever the server cannot run the module exactly as asked -- no server for this run, one
that closed or failed, another Python or other interpreter options, or an environment that
differs from the server's in anything but jupyter_client's per-kernel variables
(:data:`PER_KERNEL_ENV`) -- the stand-in replaces itself with ``python -m MODULE ARGS``
(``os.execv``): the same program, started the usual way. ``MSCMETA_KERNEL_SERVER=`` (empty)
turns the server off.

The server imports the libraries with the environment a kernel has (the runner's, plus
:data:`KERNEL_ENV`, plus the ``MPLBACKEND`` that ipykernel sets before any cell runs, and
a ``get_ipython`` that answers as a Jupyter kernel's does while pandas is imported), so a
library that looks at its surroundings when imported sees what it would see in the kernel;
modules that cannot be imported that way are left to the kernel (:data:`NOT_PRELOADED`).
Linux only (``fork`` after imports, ``pidfd_open``, descriptors passed over a Unix
socket); elsewhere kernels start the usual way. This module imports the standard library
only (:mod:`mscmeta.bundle.outlock` uses it before the venv exists).

The server writes one line per request (``forked``, or ``refused`` and why) to
``server.log`` in its folder.

A second server, the **tool server** (:data:`TOOLS_PRELOAD`), does the same for the
processes make itself starts for each stage and for the HTML: the stage runner
(:mod:`mscmeta.bundle.pipeline`, which imports papermill, nbclient and jupyter_client, ~0.8 s
of CPU per stage) and the renderer (:mod:`mscmeta.bundle.report`, which imports nbconvert and
compiles its templates, ~2 s). Make runs them as ``python -Xfrozen_modules=off -m
mscmeta.bundle.forkserver tool MODULE ARGS`` (with the kernels' environment, so a runner's
kernels are served by the kernel server); the data check's ``run`` starts the tool server
once the kernel server is ready, so it imports its libraries while the data are checked. It
logs to ``tools.log``. A module that is run (as ``__main__``) is never preloaded: ``runpy``
would warn that it was imported already.

Both servers freeze what they have imported (:func:`gc.freeze`) before each fork, so a
fork's garbage collections and its exit do not touch, and so copy, the server's memory.
"""

from __future__ import annotations

import argparse
import builtins
import fcntl
import functools
import gc
import importlib
import json
import os
import runpy
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

#: Environment variable holding the folder of the current run's fork server (its socket,
#: pid and log); unset: no server, empty: turned off.
SERVER_ENV = "MSCMETA_KERNEL_SERVER"
#: What every stage's kernel gets on top of the runner's environment, for byte-identical
#: outputs (the server has them from the start: a fork keeps its parent's hash seed).
KERNEL_ENV = {"PYTHONHASHSEED": "0", "SOURCE_DATE_EPOCH": "0"}
#: Variables jupyter_client sets for each kernel; any other difference from the server's
#: environment sends the kernel the usual way.
PER_KERNEL_ENV = frozenset({"JPY_PARENT_PID", "JPY_SESSION_NAME", "JPY_INTERRUPT_EVENT", "IPY_INTERRUPT_EVENT",
                            "PYDEVD_IPYTHON_COMPATIBLE_DEBUGGING"})
#: The shell's own bookkeeping (nesting level, last command, previous folder), which differs
#: between make's recipes; no library reads it. Like the per-kernel variables, the forked
#: process still gets the stand-in's values.
SHELL_ENV = frozenset({"SHLVL", "_", "OLDPWD"})
#: The backend ipykernel puts in ``MPLBACKEND`` before any cell runs (if none is set).
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
#: Imported by the server before it forks: the third-party libraries the stages' kernels
#: import when they start and in their cells (the bundle's own modules are left out: every
#: kernel imports them afresh). ``ipykernel.kernelapp`` is left out too: it reads
#: jupyter_client's per-kernel ``JPY_PARENT_PID`` when imported (its ``parent_handle``
#: default), so each kernel imports it itself. SciPy and matplotlib come last: on a new venv
#: the Makefile's kernel registration compiles them meanwhile (its WARM_MODULES).
PRELOAD = ("IPython", "ipykernel.ipkernel", "numpy", "pandas", "pandera.pandas", "great_tables", "scipy.stats",
           "scipy.optimize", "scipy.special", "matplotlib.pyplot", "matplotlib.backends.backend_agg",
           "matplotlib.backends.backend_svg", "seaborn")
#: Imported by the tool server: what the stage runner and the HTML renderer import (papermill
#: first, after :func:`mscmeta.bundle.lean_imports.skip_iri_grammar` as they do; pandas and
#: great-tables last: the kernel server compiles them meanwhile on a new venv), and the
#: bundle's modules they share (never :mod:`mscmeta.bundle.pipeline` or
#: :mod:`mscmeta.bundle.report`, which are run as ``__main__``); then
#: :func:`mscmeta.bundle.pages.warm_exporters` compiles the HTML templates.
TOOLS_PRELOAD = ("papermill", "papermill.engines", "papermill.execute", "nbclient", "jupyter_client.manager",
                 "nbformat", "nbconvert", "mscmeta.bundle.pages", "mscmeta.bundle.publish", "mscmeta.bundle.nbclean",
                 "mscmeta.engine.options", "mscmeta.engine.errors", "pandas", "great_tables")
#: The run's servers: the stages' kernels and the tools that drive them.
SERVERS = ("kernels", "tools")
#: Modules the server must not import: ``ipykernel.kernelapp`` and pydevd's constants read a
#: per-kernel variable when imported; matplotlib-inline hooks itself into the IPython shell
#: that imports it (there is none in the server).
NOT_PRELOADED = ("ipykernel.kernelapp", "_pydevd_bundle.pydevd_constants", "matplotlib_inline.backend_inline")
#: The interpreter options of the kernel command ``ipykernel install`` registers (for its
#: debugger); the server runs with them, and serves only stand-ins that run with them.
INTERPRETER_OPTIONS = ("-Xfrozen_modules=off",)
#: A server with no kernel running exits after this long without a request.
IDLE_SECONDS = 600
SOCKET_NAME, PID_NAME, OWNER_NAME, LOG_NAME, START_LOCK = "kernels.sock", "server.pid", "owner.pid", "server.log", ".start"
#: Each server's socket, pid file and log in the run's folder.
FILES = {"kernels": (SOCKET_NAME, PID_NAME, LOG_NAME), "tools": ("tools.sock", "tools.pid", "tools.log")}
_MAX_REQUEST = 1 << 20


def available() -> bool:
    """True where the server can work: Linux, with ``pidfd_open`` and descriptor passing."""
    return sys.platform == "linux" and hasattr(os, "pidfd_open") and hasattr(socket, "send_fds")


# ---- the run's folder (used by outlock with the system Python) --------------------------

def new_server_folder(owner: int) -> str:
    """A private folder for one run's server, owned by the process *owner* (its pid is kept
    there: the server exits when *owner* does). Empty string where no server can run."""
    if not available():
        return ""
    try:
        folder = tempfile.mkdtemp(prefix="mscmeta-kernels-")
        if len(os.path.join(folder, SOCKET_NAME)) > 100:  # AF_UNIX paths are limited to 107 bytes
            os.rmdir(folder)
            return ""
        Path(folder, OWNER_NAME).write_text(f"{owner}\n")
    except OSError:
        return ""  # no temporary folder: kernels start the usual way
    return folder


def stop_server(folder: str) -> None:
    """Stop the servers of *folder* (those that were started) and remove the folder (made for
    the run by :func:`new_server_folder`)."""
    if not folder:
        return
    for _, pid_name, _ in FILES.values():
        try:
            os.kill(int(Path(folder, pid_name).read_text()), signal.SIGTERM)
        except (OSError, ValueError):
            pass  # never started, or gone already
    shutil.rmtree(folder, ignore_errors=True)


# ---- starting the server -----------------------------------------------------------------

def server_environment() -> dict[str, str]:
    """The environment a stage's kernel gets, and the server runs with: this process's plus
    :data:`KERNEL_ENV`."""
    return {**os.environ, **KERNEL_ENV}


def ensure_server(server: str = "kernels") -> Path | None:
    """Start this run's *server* (one of :data:`SERVERS`) unless it is running already; its
    socket, or None when the run has none (:data:`SERVER_ENV` unset or empty, or not Linux)."""
    folder = os.environ.get(SERVER_ENV, "")
    if not folder or not available():
        return None
    path = Path(folder, FILES[server][0])
    if path.exists():
        return path
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with open(Path(folder, START_LOCK), "w") as lock:  # two stages starting at once start one server
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not path.exists():
                _spawn(Path(folder), server)
    except OSError:
        return None  # kernels start the usual way
    return path


def _spawn(folder: Path, server: str) -> None:
    """Bind and listen on *server*'s socket here (so it accepts as soon as it appears under
    its name), then hand it to a detached server process."""
    socket_name, pid_name, log_name = FILES[server]
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        partial = folder / (socket_name + ".new")
        partial.unlink(missing_ok=True)
        listener.bind(str(partial))
        listener.listen(64)
        with open(folder / log_name, "ab") as log:
            command = [sys.executable, *INTERPRETER_OPTIONS, "-m", "mscmeta.bundle.forkserver", "serve",
                       "--fd", str(listener.fileno()), "--folder", str(folder), "--server", server]
            process = subprocess.Popen(
                command,
                pass_fds=(listener.fileno(),), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True, env=server_environment(), cwd=folder,
            )
        (folder / pid_name).write_text(f"{process.pid}\n")
        os.replace(partial, folder / socket_name)
    finally:
        listener.close()


# ---- the server --------------------------------------------------------------------------

def _interpreter() -> dict:
    """The interpreter's options (``-X``, ``-W`` and flags), as JSON would carry them."""
    return json.loads(json.dumps({"x": sys._xoptions, "w": sys.warnoptions, "flags": list(sys.flags)}))


def _comparable(environ: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k not in PER_KERNEL_ENV and k not in SHELL_ENV}


def _log(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)


class _JupyterShell:
    """What pandas sees of a Jupyter kernel when imported there (:func:`_preload`)."""

    kernel = True


def _import_each(names: tuple[str, ...]) -> None:
    """Import every module of *names*; one that fails is logged and left to the forked
    process, which imports what is missing itself."""
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 -- see the docstring
            _log(f"preload {name}: {type(exc).__name__}: {exc}")


def _preload() -> None:
    """Import :data:`PRELOAD` as a kernel would: with ipykernel's ``MPLBACKEND``, and with
    ``get_ipython`` answering as a Jupyter kernel's shell does -- pandas chooses its display
    defaults when imported by asking it (``pandas.core.config_init.is_terminal``: 20
    columns in a kernel, the terminal's width elsewhere)."""
    os.environ.setdefault("MPLBACKEND", INLINE_BACKEND)
    builtins.get_ipython = _JupyterShell  # type: ignore[attr-defined]
    try:
        _import_each(PRELOAD)
    finally:
        del builtins.get_ipython  # type: ignore[attr-defined]


def _preload_tools() -> None:
    """Import :data:`TOOLS_PRELOAD` as the runner and the renderer do, then compile the HTML
    templates."""
    importlib.import_module("mscmeta.bundle.lean_imports").skip_iri_grammar()  # by name, as the preload
    _import_each(TOOLS_PRELOAD)
    try:
        importlib.import_module("mscmeta.bundle.pages").warm_exporters()
    except Exception as exc:  # noqa: BLE001 -- the renderer compiles them itself
        _log(f"templates: {type(exc).__name__}: {exc}")


class _Request:
    """What a stand-in asks the server to run: the module (``ipykernel_launcher`` for a
    kernel), its arguments, directory, environment, interpreter and standard streams."""

    def __init__(self, data: dict, fds: list[int]):
        self.module: str = str(data["module"])
        self.args: list[str] = [str(a) for a in data["args"]]
        self.cwd: str = str(data["cwd"])
        self.env: dict[str, str] = {str(k): str(v) for k, v in data["env"].items()}
        self.executable: str = str(data["executable"])
        self.interpreter = data["interpreter"]
        self.fds = fds

    def __str__(self) -> str:
        return " ".join([self.module, *self.args])

    def refusal(self, reference: Mapping[str, str]) -> str | None:
        """Why this server cannot run the module exactly as asked, or None."""
        if self.executable != sys.executable:
            return f"another Python ({self.executable})"
        if self.interpreter != _interpreter():
            return f"other interpreter options ({self.interpreter})"
        if len(self.fds) != 3:
            return "standard streams missing"
        mine, theirs = reference, _comparable(self.env)
        differing = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
        return f"environment differs in {', '.join(differing)}" if differing else None


def _read_request(conn: socket.socket) -> _Request:
    conn.settimeout(10)
    data, fds, _, _ = socket.recv_fds(conn, _MAX_REQUEST, 3)
    while not data.endswith(b"\n"):
        more = conn.recv(_MAX_REQUEST)
        if not more or len(data) > _MAX_REQUEST:
            for fd in fds:
                os.close(fd)
            raise OSError("incomplete request")
        data += more
    conn.settimeout(None)
    try:
        return _Request(json.loads(data), fds)
    except (ValueError, KeyError, TypeError, AttributeError):
        _close_all(fds)
        raise


class _Server:
    """One listening socket; per kernel, the stand-in's connection and the kernel's pidfd."""

    def __init__(self, listener: socket.socket, folder: Path, reference: Mapping[str, str]):
        self.listener, self.folder, self.reference = listener, folder, reference
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ, ("accept", 0))
        self.kernels: dict[int, tuple[socket.socket, int]] = {}
        self.last = time.monotonic()
        owner = folder / OWNER_NAME
        self.owner = int(owner.read_text()) if owner.exists() else None

    def serve(self) -> _Request | None:
        """Serve until told to stop; returns None in the server, the request in a forked kernel."""
        signal.signal(signal.SIGTERM, lambda signum, frame: self.stop())
        while not self._orphaned():
            for key, _ in self.selector.select(timeout=1.0):
                kind, pid = key.data
                if kind == "accept":
                    request = self._accept()
                    if request is not None:
                        return request
                elif kind == "client":
                    self._client_event(pid)
                else:
                    self._reap(pid)
        self.stop()
        return None

    def _orphaned(self) -> bool:
        idle = not self.kernels and time.monotonic() - self.last > IDLE_SECONDS
        gone = not self.folder.is_dir() or (self.owner is not None and not _alive(self.owner))
        return idle or gone

    def _accept(self) -> _Request | None:
        conn, _ = self.listener.accept()
        self.last = time.monotonic()
        try:
            request = _read_request(conn)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            _log(f"refused: unreadable request ({exc})")
            conn.close()
            return None
        why = request.refusal(self.reference)
        if why:
            _log(f"refused {request}: {why}")
            _close_all(request.fds)
            _send(conn, f"refused {why}\n")
            conn.close()
            return None
        # Objects the server has made move to the collector's permanent generation: a fork's
        # collections (and its exit) then leave them alone instead of touching, and so copying,
        # every page of them (~0.6 s of CPU per fork at exit). Python's documented recipe for
        # fork without exec (gc.freeze).
        gc.freeze()
        pid = os.fork()
        if pid == 0:
            self._close_in_kernel(conn)
            return request
        _close_all(request.fds)
        pidfd = os.pidfd_open(pid)
        self.kernels[pid] = (conn, pidfd)
        self.selector.register(conn, selectors.EVENT_READ, ("client", pid))
        self.selector.register(pidfd, selectors.EVENT_READ, ("exit", pid))
        _log(f"forked {pid}: {request}")
        _send(conn, f"pid {pid}\n")
        return None

    def _close_in_kernel(self, conn: socket.socket) -> None:
        for key in list(self.selector.get_map().values()):
            obj = key.fileobj
            obj.close() if isinstance(obj, socket.socket) else os.close(obj)
        self.selector.close()
        conn.close()

    def _client_event(self, pid: int) -> None:
        if pid not in self.kernels:
            return  # reaped in the same round
        conn, _ = self.kernels[pid]
        try:
            data = conn.recv(64)
        except OSError:
            data = b""
        if not data:  # the stand-in is gone (killed): so goes its kernel
            _kill(pid, signal.SIGKILL)
            self.selector.unregister(conn)

    def _reap(self, pid: int) -> None:
        if pid not in self.kernels:
            return
        conn, pidfd = self.kernels.pop(pid)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        _log(f"{pid} exited with {code}")
        _send(conn, f"exit {code}\n")
        for obj in (conn, pidfd):
            if obj in self.selector.get_map():  # the connection is gone already if the stand-in was killed
                self.selector.unregister(obj)
        conn.close()
        os.close(pidfd)
        self.last = time.monotonic()

    def stop(self) -> None:
        for pid in self.kernels:
            _kill(pid, signal.SIGKILL)
        (self.folder / SOCKET_NAME).unlink(missing_ok=True)
        os._exit(0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    return True


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _send(conn: socket.socket, text: str) -> None:
    try:
        conn.sendall(text.encode())
    except OSError:
        pass


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


def _run_module(request: _Request) -> None:
    """In the forked child: take the stand-in's streams, directory, environment and
    arguments, then run the module as ``python -m MODULE ARGS`` runs it (its folder first on
    ``sys.path``, ``sys.argv[0]`` its file; ``ipykernel_launcher`` removes that folder again)."""
    os.setsid()  # jupyter_client starts kernels in a session of their own
    for target, fd in enumerate(request.fds):
        os.dup2(fd, target)
    _close_all([fd for fd in request.fds if fd > 2])
    os.chdir(request.cwd)
    os.environ.clear()
    os.environ.update(request.env)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.argv = [request.module, *request.args]
    sys.path.insert(0, os.getcwd())
    runpy.run_module(request.module, run_name="__main__", alter_sys=True)


def serve(listener_fd: int, folder: Path, server: str = "kernels") -> int:
    """The server's main: preload, then fork until stopped. In a fork it runs the requested
    module and returns when that has finished (an exit status arrives as ``SystemExit``)."""
    if sys.path and sys.path[0] and Path(sys.path[0]).resolve() == Path.cwd().resolve():
        del sys.path[0]  # as ipykernel_launcher does, so the kernels' sys.path is theirs
    listener = socket.socket(fileno=listener_fd)
    reference = _comparable(os.environ)  # before the preload adds MPLBACKEND
    if server == "kernels":
        _preload()
    else:
        _preload_tools()
    _log(f"ready (pid {os.getpid()})")
    request = _Server(listener, folder, reference).serve()
    if request is None:
        return 0
    _run_module(request)
    return 0


# ---- the stand-in kernel process ---------------------------------------------------------

class _Unserved(Exception):
    """The server cannot run this module: run it the usual way."""


def _read_line(sock: socket.socket, buffer: bytearray) -> bytes | None:
    """The next line from *sock* (None at end of file); waits at most 1 s for data, then b''."""
    sock.settimeout(1.0)
    while b"\n" not in buffer:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            return b""
        except OSError:
            chunk = b""
        if not chunk:
            return None
        buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line


def _through_server(path: str, module: str, args: list[str], forked: Callable[[], object] | None) -> int:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        request = {"module": module, "args": args, "cwd": os.getcwd(), "env": dict(os.environ),
                   "executable": sys.executable, "interpreter": _interpreter()}
        socket.send_fds(sock, [json.dumps(request).encode() + b"\n"], [0, 1, 2])
    except OSError:
        raise _Unserved from None
    buffer, line, parent = bytearray(), b"", os.getppid()
    while line == b"":  # the server answers once it has imported its libraries
        line = _read_line(sock, buffer)
        if line == b"" and os.getppid() != parent:
            return 1  # jupyter_client's process is gone before the kernel started
    if line is None or not line.startswith(b"pid "):
        raise _Unserved
    if forked is not None:
        forked()
    return _stand_in(sock, buffer, int(line.split()[1]))


def _stand_in(sock: socket.socket, buffer: bytearray, pid: int) -> int:
    """Be the kernel for jupyter_client: pass signals on, end when the kernel ends."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, lambda signum, frame: _kill(pid, signum))
    parent = os.getppid()
    while True:
        line = _read_line(sock, buffer)
        if line is None:  # the server is gone
            _kill(pid, signal.SIGKILL)
            return 1
        if line.startswith(b"exit "):
            code = int(line.split()[1])
            if code < 0:  # died of a signal: so does the stand-in
                try:
                    signal.signal(-code, signal.SIG_DFL)
                except (OSError, ValueError):
                    pass  # SIGKILL and SIGSTOP keep their default action anyway
                os.kill(os.getpid(), -code)
            return code if code >= 0 else 128 - code
        if os.getppid() != parent:  # jupyter_client's process is gone: so goes the kernel
            _kill(pid, signal.SIGKILL)
            return 1


def stand_in(module: str, args: list[str], server: str = "kernels", forked: Callable[[], object] | None = None) -> int:
    """The stand-in's main: *module* run in a fork of the run's *server* (then *forked* is
    called), else ``python -m MODULE`` itself (with this process's interpreter options)."""
    folder = os.environ.get(SERVER_ENV, "")
    if folder and available():
        try:
            return _through_server(os.path.join(folder, FILES[server][0]), module, args, forked)
        except _Unserved:
            pass
    options = sys.orig_argv[1:sys.orig_argv.index("-m")] if "-m" in sys.orig_argv else []
    os.execv(sys.executable, [sys.executable, *options, "-m", module, *args])
    return 1  # not reached


# ---- jupyter_client ----------------------------------------------------------------------

def stand_in_command(cmd: list[str]) -> list[str]:
    """*cmd* with ``-m ipykernel_launcher`` replaced by the stand-in, the interpreter and its
    options kept (any other command unchanged)."""
    for i in range(1, len(cmd) - 1):
        if cmd[i:i + 2] == ["-m", "ipykernel_launcher"]:
            return [*cmd[:i], "-m", "mscmeta.bundle.forkserver", "kernel", *cmd[i + 2:]]
    return list(cmd)


@functools.cache
def kernel_manager_class() -> type:
    """jupyter_client's ``AsyncKernelManager`` whose kernel command is the stand-in's."""
    from jupyter_client.manager import AsyncKernelManager  # deferred on purpose: heavy, runner only

    class ForkedKernelManager(AsyncKernelManager):
        def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
            return stand_in_command(super().format_kernel_cmd(extra_arguments))

    return ForkedKernelManager


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["kernel"]:  # the kernel's stand-in: its arguments are the kernel's, untouched
        return stand_in("ipykernel_launcher", argv[1:])
    if argv[:1] == ["run"] and len(argv) > 1:  # a module of the bundle: MODULE ARGS...
        ensure_server("kernels")
        # The data check starts the tool server too, once the kernel server (which the check
        # and the first stages wait for) has its libraries: it then imports its own while the
        # data are checked, instead of slowing the kernel server down.
        return stand_in(argv[1], argv[2:], forked=functools.partial(ensure_server, "tools"))
    if argv[:1] == ["tool"] and len(argv) > 1:  # the stage runner or the renderer: MODULE ARGS...
        ensure_server("tools")
        return stand_in(argv[1], argv[2:], "tools")
    parser = argparse.ArgumentParser(prog="python -m mscmeta.bundle.forkserver", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser("serve", help="(internal) the server itself")
    serve_parser.add_argument("--fd", type=int, required=True)
    serve_parser.add_argument("--folder", required=True)
    serve_parser.add_argument("--server", choices=SERVERS, default="kernels")
    sub.add_parser("kernel", help="(internal) the stand-in kernel process: kernel -f CONNECTION_FILE")
    run_parser = sub.add_parser("run", help="run MODULE ARGS... in a fork of this run's server, starting it if "
                                            "needed (python -m MODULE ARGS... without one)")
    run_parser.add_argument("module")
    tool_parser = sub.add_parser("tool", help="run MODULE ARGS... in a fork of this run's tool server, starting it if "
                                              "needed (python -m MODULE ARGS... without one)")
    tool_parser.add_argument("module")
    args = parser.parse_args(argv)  # run and kernel with their arguments were dispatched above
    return serve(args.fd, Path(args.folder), args.server)


if __name__ == "__main__":
    sys.exit(main())
