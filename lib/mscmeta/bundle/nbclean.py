"""Executed notebooks that are byte-identical between runs, wherever they ran.

papermill records wall-clock times and durations (notebook and cell metadata), nbclient
the times of every message, and papermill gives the injected-parameters cell a random id;
the parameters it injects, and any warning or traceback the kernel prints, carry absolute
paths (the staging folder, the outputs and data folders, the project). A reviewer who
rebuilds the bundle elsewhere could then never compare it byte for byte with the copy
mailed to them. :func:`deterministic_notebook` removes the timings, gives the injected
cell a fixed id and writes every known folder by a name that does not depend on where the
run happened (see :func:`display_paths`).

References
----------
papermill documentation, "Parameterize": the injected cell is tagged
``injected-parameters``. https://papermill.readthedocs.io/en/latest/usage-parameterize.html
nbformat 4.5 cell ids: https://nbformat.readthedocs.io/en/latest/format_description.html#cell-ids
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

#: Id of the cell papermill injects (nbformat 4.5 ids: 1-64 characters of ``[a-zA-Z0-9-_]``).
INJECTED_CELL_ID = "injected-parameters"
#: Cell metadata written by papermill and nbclient at run time (times, durations, status).
VOLATILE_CELL_METADATA = ("papermill", "execution")
#: The part of papermill's notebook metadata that describes the run rather than its timing.
KEPT_PAPERMILL_METADATA = ("parameters",)


def display_paths(
    project: Path, out: Path, staging: Path, data_dir: Path
) -> dict[str, str]:
    """Absolute folder -> the name an executed notebook shows for it (longest first).

    The staging folder and the outputs root are both shown as ``outputs`` (what the stage
    writes ends up there), a folder inside the project by its path from the project root
    (``data/raw``), the data folder elsewhere by its own name, and any other path inside the
    project (the package, the virtual environment) relative to the project root.
    """
    def inside(path: Path, root: Path) -> str | None:
        try:
            return str(path.relative_to(root))
        except ValueError:
            return None

    names = {
        str(staging): "outputs",
        str(out): "outputs",
        str(data_dir): inside(data_dir, project) or data_dir.name,
        str(project) + os.sep: "",
    }
    return dict(sorted(names.items(), key=lambda kv: -len(kv[0])))


def rename_paths(value: object, replacements: Mapping[str, str]) -> object:
    """*value* (a string, or lists and dicts of them) with every folder of *replacements* renamed."""
    if isinstance(value, str):
        for old, new in replacements.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, list):
        return [rename_paths(v, replacements) for v in value]
    if isinstance(value, dict):
        return {k: rename_paths(v, replacements) for k, v in value.items()}
    return value


def clean_notebook(nb: dict, replacements: Mapping[str, str]) -> dict:
    """The notebook *nb* (as parsed JSON) without timings, with a fixed injected-cell id and
    the folders of *replacements* renamed (in sources, outputs and metadata)."""
    nb = rename_paths(nb, replacements)
    papermill = nb.get("metadata", {}).get("papermill")
    if isinstance(papermill, dict):
        nb["metadata"]["papermill"] = {k: papermill[k] for k in KEPT_PAPERMILL_METADATA if k in papermill}
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {})
        for key in VOLATILE_CELL_METADATA:
            meta.pop(key, None)
        if "injected-parameters" in meta.get("tags", []):
            cell["id"] = INJECTED_CELL_ID
    return nb


def deterministic_notebook(path: str | os.PathLike, replacements: Mapping[str, str]) -> None:
    """Rewrite the executed notebook at *path* in place with :func:`clean_notebook`.

    Written as nbformat writes notebooks (JSON, one-space indent, sorted keys, a final
    newline), so the file is also what JupyterLab would save.
    """
    path = Path(path)
    nb = json.loads(path.read_text(encoding="utf-8"))
    text = json.dumps(clean_notebook(nb, replacements), indent=1, sort_keys=True, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8", newline="\n")


def running_cell(path: str | os.PathLike) -> tuple[int, str] | None:
    """Index and first source line of the cell a run stopped in (the last cell papermill
    started), from the notebook papermill saved after each cell; None if none started."""
    try:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    started = [
        (i, cell) for i, cell in enumerate(nb.get("cells", []))
        if (cell.get("metadata", {}).get("papermill") or {}).get("start_time")
    ]
    if not started:
        return None
    index, cell = started[-1]
    source = cell.get("source", "")
    source = "".join(source) if isinstance(source, list) else source
    lines = [ln for ln in source.splitlines() if ln.strip()]
    return index, (lines[0] if lines else "")
