"""The kernel server (:mod:`mscmeta.bundle.forkserver`): a kernel forked from it is the kernel
``python -m ipykernel_launcher`` starts (arguments, directory, environment, import path,
interpreter options, hash seed, session, ipykernel's parent, pandas' display defaults,
matplotlib's backend and its hooks into the shell); jupyter_client interrupts, shuts down
and kills it as it would that kernel; without a server, or with a request it cannot serve
exactly, the kernel starts the usual way; the server ends with its run; the tool server
preloads what the stage runner and the HTML renderer import (never a module run as
``__main__``); ``make reproduce`` with the servers forks every kernel, runner and renderer and
gives the same bytes as with every process started the usual way."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import ROOT, STAGES, reproduce_into
from mscmeta.bundle import forkserver
from mscmeta.bundle.outlock import run_locked

pytestmark = pytest.mark.skipif(not forkserver.available(), reason="the kernel server needs Linux")

#: What a kernel can tell about how it was started (printed as JSON by one cell).
PROBE = """
import json, os, sys
import matplotlib, matplotlib.pyplot as plt, pandas as pd
from ipykernel.kernelapp import IPKernelApp
plt.close(plt.figure())
ip = get_ipython()
print(json.dumps({
    "argv": [a if not a.endswith(".json") else "CONNECTION_FILE" for a in sys.argv], "cwd": os.getcwd(), "path": sys.path, "env": dict(os.environ),
    "xoptions": sys._xoptions, "flags": list(sys.flags), "hash": hash("mscmeta"),
    "parent_handle": IPKernelApp.instance().parent_handle,
    "own_session": os.getsid(0) == os.getpid() == os.getpgid(0),
    "streams": [os.readlink(f"/proc/self/fd/{fd}").split("[")[0] for fd in (0, 1, 2)],
    "max_columns": pd.get_option("display.max_columns"), "width": pd.get_option("display.width"),
    "backend": matplotlib.get_backend(), "repl_hook": str(plt._REPL_DISPLAYHOOK),
    "post_execute": sorted(f.__name__ for f in ip.events.callbacks["post_execute"]),
    "figure_formats": sorted(str(k) for k in ip.display_formatter.formatters["image/png"].type_printers),
}, sort_keys=True))
"""


def _steady_environment() -> None:
    """pytest names the running test (and its phase) in the environment; a server serves only
    kernels whose environment is its own, so the kernels of these tests start without it."""
    os.environ.pop("PYTEST_CURRENT_TEST", None)


def _probe(cwd: Path, manager_class: type | None = None) -> dict:
    _steady_environment()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PROBE)])
    extra = {"kernel_manager_class": manager_class} if manager_class else {}
    NotebookClient(nb, kernel_name="mscmeta", resources={"metadata": {"path": str(cwd)}}, **extra).execute()
    return json.loads(nb.cells[0].outputs[0]["text"])


def _running(pid: int) -> bool:
    """True if *pid* is a live process (a zombie waiting to be reaped is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def _eventually(condition, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def _log(folder: Path, server: str = "kernels") -> str:
    log = folder / forkserver.FILES[server][2]
    return log.read_text() if log.exists() else ""


def _imported(code: str, *args: str) -> set[str]:
    """The modules a new interpreter has imported after running *code* (with *args* in argv)."""
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    return set(json.loads(subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                                         check=True).stdout.splitlines()[-1]))


def _not_preloaded(modules: set[str], baseline: set[str], preloaded: set[str]) -> list[str]:
    """The third-party packages of *modules* (beyond *baseline*) that *preloaded* lacks."""
    third_party = {m.split(".")[0] for m in modules - baseline} - {"mscmeta"} - set(sys.stdlib_module_names)
    return sorted(third_party - {m.split(".")[0] for m in preloaded})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A kernel server for this module, started as a stage's runner starts it."""
    folder = tmp_path_factory.mktemp("kernels")
    with pytest.MonkeyPatch.context() as mp:
        _steady_environment()
        mp.setenv(forkserver.SERVER_ENV, str(folder))
        for key, value in forkserver.KERNEL_ENV.items():
            mp.setenv(key, value)
        assert forkserver.ensure_server() == folder / forkserver.SOCKET_NAME
        try:
            yield folder
        finally:
            forkserver.stop_server(str(folder))


def test_a_forked_kernel_is_the_kernel_ipykernel_launcher_starts(server, tmp_path):
    before = _log(server).count("forked")
    usual = _probe(tmp_path)
    forked = _probe(tmp_path, forkserver.kernel_manager_class())
    assert _log(server).count("forked") == before + 1, _log(server)
    assert forked == usual
    assert usual["parent_handle"] == os.getpid() and usual["own_session"]
    assert usual["max_columns"] == 20 and "flush_figures" in usual["post_execute"], usual


def test_without_a_server_or_with_another_environment_the_kernel_starts_the_usual_way(server, tmp_path, monkeypatch):
    usual = _probe(tmp_path)
    monkeypatch.setenv(forkserver.SERVER_ENV, str(tmp_path / "no-server"))
    assert _probe(tmp_path, forkserver.kernel_manager_class()) == {**usual, "env": dict(usual["env"], **{
        forkserver.SERVER_ENV: str(tmp_path / "no-server")})}
    monkeypatch.setenv(forkserver.SERVER_ENV, str(server))
    monkeypatch.setenv("MSCMETA_PROBE_EXTRA", "1")
    before = _log(server).count("refused")
    changed = _probe(tmp_path, forkserver.kernel_manager_class())
    assert changed["env"]["MSCMETA_PROBE_EXTRA"] == "1"
    assert _log(server).count("refused") == before + 1
    assert "environment differs in MSCMETA_PROBE_EXTRA" in _log(server)


async def _execute(client, code: str) -> tuple[dict, str]:
    texts: list[str] = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            texts.append(msg["content"]["text"])

    reply = await client.execute_interactive(code, output_hook=hook, timeout=60)
    return reply["content"], "".join(texts)


async def _interrupt_shutdown_kill(cwd: Path) -> tuple[dict, bool, int, int]:
    _steady_environment()
    manager = forkserver.kernel_manager_class()(kernel_name="mscmeta")
    await manager.start_kernel(cwd=str(cwd))
    client = manager.client()
    client.start_channels()
    await client.wait_for_ready(timeout=60)
    _, pid_text = await _execute(client, "import os; print(os.getpid())")
    kernel_pid = int(pid_text)
    flag = cwd / "sleeping"
    running = asyncio.ensure_future(_execute(client, f"import time; open({str(flag)!r}, 'w').close(); time.sleep(60)"))
    for _ in range(600):  # interrupt the cell, not the idle kernel
        if flag.exists():
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    await manager.interrupt_kernel()
    interrupted, _ = await asyncio.wait_for(running, 30)
    alive_after_interrupt = await manager.is_alive()
    stand_in = manager.provisioner.process.pid
    client.stop_channels()
    await manager.shutdown_kernel(now=True)  # kill, as nbclient does on a timeout
    return interrupted, alive_after_interrupt, kernel_pid, stand_in


def test_jupyter_client_interrupts_and_kills_a_forked_kernel(server, tmp_path):
    before = _log(server).count("forked")
    interrupted, alive, kernel_pid, stand_in = asyncio.run(_interrupt_shutdown_kill(tmp_path))
    assert _log(server).count("forked") == before + 1
    assert interrupted["status"] == "error" and interrupted["ename"] == "KeyboardInterrupt", interrupted
    assert alive, "the interrupt ended the kernel"
    assert kernel_pid != stand_in
    assert _eventually(lambda: not _running(kernel_pid)), "the kernel outlived its killed stand-in"
    assert _eventually(lambda: f"{kernel_pid} exited with -9" in _log(server)), _log(server)


def _run_json_tool(folder: str, *args: str) -> subprocess.CompletedProcess:
    """``python -m json.tool ARGS`` as the Makefile runs the data check: through the stand-in."""
    env = dict(os.environ, **forkserver.KERNEL_ENV, **{forkserver.SERVER_ENV: folder})
    env.pop("PYTEST_CURRENT_TEST", None)
    return subprocess.run([sys.executable, *forkserver.INTERPRETER_OPTIONS, "-m", "mscmeta.bundle.forkserver", "run",
                           "json.tool", *args], capture_output=True, text=True, env=env, timeout=120)


def test_a_module_run_through_the_server_behaves_as_python_m(server, tmp_path):
    """Output, errors and exit status as ``python -m json.tool`` gives them, run in a fork."""
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text('{"b": 1, "a": [1, 2]}')
    bad.write_text('{"b": 1,')
    before = _log(server).count(": json.tool ")
    runs = {name: _run_json_tool(str(server), "--sort-keys", str(path)) for name, path in (("good", good), ("bad", bad))}
    assert _log(server).count(": json.tool ") == before + 2, _log(server)
    for name, path in (("good", good), ("bad", bad)):
        usual = subprocess.run([sys.executable, "-m", "json.tool", "--sort-keys", str(path)], capture_output=True,
                               text=True)
        forked = runs[name]
        assert (forked.returncode, forked.stdout, forked.stderr) == (usual.returncode, usual.stdout, usual.stderr)
    assert runs["good"].returncode == 0 and runs["bad"].returncode == 1
    turned_off = _run_json_tool("", "--sort-keys", str(good))  # MSCMETA_KERNEL_SERVER= : python -m json.tool
    assert (turned_off.returncode, turned_off.stdout) == (0, runs["good"].stdout)
    assert _log(server).count(": json.tool ") == before + 2


def test_the_server_ends_with_its_run(tmp_path, monkeypatch):
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    folder = forkserver.new_server_folder(owner.pid)
    monkeypatch.setenv(forkserver.SERVER_ENV, folder)
    assert forkserver.ensure_server() == Path(folder, forkserver.SOCKET_NAME)
    assert forkserver.ensure_server() == Path(folder, forkserver.SOCKET_NAME)  # started once
    assert forkserver.ensure_server("tools") == Path(folder, forkserver.FILES["tools"][0])
    pids = [int(Path(folder, pid_name).read_text()) for _, pid_name, _ in forkserver.FILES.values()]
    assert all(_running(pid) for pid in pids)
    owner.kill()
    owner.wait()
    assert _eventually(lambda: not any(_running(pid) for pid in pids)), "a server outlived the run that owns it"
    forkserver.stop_server(folder)
    assert not Path(folder).exists()
    monkeypatch.delenv(forkserver.SERVER_ENV)
    assert forkserver.ensure_server() is None


def test_a_locked_run_gets_a_server_folder_and_removes_it(tmp_path, monkeypatch):
    monkeypatch.delenv(forkserver.SERVER_ENV, raising=False)
    report = tmp_path / "folder.txt"
    command = [sys.executable, "-c", f"import os; open({str(report)!r}, 'w').write(os.environ[{forkserver.SERVER_ENV!r}])"]
    assert run_locked(tmp_path / "out", command, "a test") == 0
    folder = report.read_text()
    assert Path(folder).name.startswith("mscmeta-kernels-"), folder
    assert not Path(folder).exists(), "the run's server folder was left behind"
    monkeypatch.setenv(forkserver.SERVER_ENV, "")
    assert run_locked(tmp_path / "out", command, "a test") == 0
    assert report.read_text() == "", "MSCMETA_KERNEL_SERVER= should turn the server off"


def test_the_preload_covers_the_stages_libraries_and_nothing_that_reads_a_kernels_variables():
    preloaded = _imported("from mscmeta.bundle import forkserver as f; f._preload()")
    stage_modules = ["mscmeta.review." + name for name in ("extract", "quality", "pool", "subgroup", "secondary", "update")]
    baseline = _imported("import mscmeta.bundle.forkserver")
    staged = _imported("import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)", *stage_modules)
    missing = _not_preloaded(staged, baseline, preloaded)
    assert not missing, f"the stages import libraries the server does not preload: {missing}"
    assert not [m for m in forkserver.NOT_PRELOADED if m in preloaded]
    assert not [m for m in preloaded if m.startswith("mscmeta.") and m not in baseline], "the bundle's code is preloaded"


def test_the_tool_server_preloads_what_the_runner_and_the_renderer_import(e2e_run, tmp_path):
    """The third-party packages a stage runner (its deferred imports included) and a real
    rendering of the HTML import are all preloaded; the modules make runs as ``__main__`` are
    not (runpy would warn that they were imported already)."""
    preloaded = _imported("from mscmeta.bundle import forkserver as f; f._preload_tools()")
    baseline = _imported("import mscmeta.bundle.forkserver")
    runner = _imported("from mscmeta.bundle import forkserver, pipeline; pipeline.declared_parameters(pipeline.Path("
                       f"{str(ROOT / 'notebooks' / '03-pool.ipynb')!r})); pipeline._register_engine(); forkserver.kernel_manager_class(); "
                       "import papermill.execute")  # the runner's deferred imports, in its order
    out = tmp_path / "out"
    for folder in ("notebooks", "tables", "figures"):
        shutil.copytree(e2e_run / folder, out / folder)
    renderer = _imported("import sys; from mscmeta.bundle import report; report.render_all(sys.argv[1])", str(out))
    assert (out / "html" / "03-pool-report.html").exists()
    for name, modules in (("runner", runner), ("renderer", renderer)):
        missing = _not_preloaded(modules, baseline, preloaded)
        assert not missing, f"the {name} imports libraries the tool server does not preload: {missing}"
    assert not {"mscmeta.bundle.pipeline", "mscmeta.bundle.report"} & preloaded


def test_the_stand_in_replaces_only_ipykernels_launcher():
    python = sys.executable
    assert forkserver.stand_in_command([python, "-Xfrozen_modules=off", "-m", "ipykernel_launcher", "-f", "c.json"]) == [
        python, "-Xfrozen_modules=off", "-m", "mscmeta.bundle.forkserver", "kernel", "-f", "c.json"]
    assert forkserver.stand_in_command(["R", "--slave", "-e", "IRkernel::main()"]) == ["R", "--slave", "-e", "IRkernel::main()"]


def test_the_kernel_spec_runs_with_the_servers_interpreter_options():
    spec = json.loads((Path(sys.prefix) / "share" / "jupyter" / "kernels" / "mscmeta" / "kernel.json").read_text())
    start = spec["argv"].index("-m")
    assert tuple(spec["argv"][1:start]) == forkserver.INTERPRETER_OPTIONS, spec["argv"]


@pytest.mark.e2e
def test_make_reproduce_forks_every_kernel_and_gives_the_same_bytes(e2e_run, e2e_raw, tmp_path):
    """The session's run started its kernels, runners and renderer the usual way; this one
    forks them all."""
    folder, out = tmp_path / "kernels", tmp_path / "out"
    try:
        proc = reproduce_into(out, e2e_raw, env_extra={forkserver.SERVER_ENV: str(folder)})
        log, tools = _log(folder), _log(folder, "tools")
    finally:
        forkserver.stop_server(str(folder))
    assert log.count(": ipykernel_launcher -f ") == len(STAGES) and log.count(": mscmeta.review.preflight ") == 1, log
    assert log.count("forked") == len(STAGES) + 1 and "refused" not in log, log
    assert tools.count(": mscmeta.bundle.pipeline run ") == len(STAGES), tools
    assert tools.count(": mscmeta.bundle.report ") == 1 and tools.count("forked") == len(STAGES) + 1, tools
    assert "refused" not in tools and "preload" not in tools and "templates:" not in tools, tools
    assert "Warning" not in proc.stdout + proc.stderr, proc.stderr

    def files(root):
        return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    usual, forked = files(e2e_run), files(out)
    assert sorted(usual) == sorted(forked)
    assert [str(p) for p in usual if usual[p] != forked[p]] == []
