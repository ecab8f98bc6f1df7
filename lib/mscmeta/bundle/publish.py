"""Publishing a stage's outputs as a unit, with a manifest of what it owns.

A stage runs into a private staging folder. When it has succeeded, :func:`publish`

1. lists what it produced under ``tables/`` and ``figures/`` -- never a hidden or
   temporary file (``.name.xyz.tmp`` from an interrupted atomic write) -- and refuses a
   file that another stage's manifest owns;
2. deletes the stage's executed notebook (the Makefile's target), so that an interrupted
   publish leaves the stage out of date and ``make`` reruns it;
3. moves every new file into place (an atomic rename each), then deletes the files the
   stage's previous manifest lists that this run did not produce (a plot of an outcome
   that has no data any more must not stay behind, looking current), and any temporary
   file an older version left in the published folders;
4. writes the new manifest ``<out>/.manifests/<stage>.json`` (the stage's parameters and
   every file with its SHA-256) and, last, moves the executed notebook into place.

All of it happens under the outputs folder's lock (:mod:`mscmeta.bundle.outlock`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

from mscmeta.bundle.io import write_text

#: Sub-folders of a stage's out_dir that are published into the outputs tree.
PUBLISHED_DIRS = ("tables", "figures")
#: Folder of the manifests, inside the outputs folder.
MANIFEST_DIR = ".manifests"
#: Names never published: hidden files, temporary files of interrupted atomic writes.
UNPUBLISHABLE = re.compile(r"^\.|\.tmp$")


class PublishError(RuntimeError):
    """A stage's outputs cannot be published; the message names the file."""


def manifest_path(out: Path, stage: str) -> Path:
    return out / MANIFEST_DIR / f"{stage}.json"


def read_manifest(out: Path, stage: str) -> dict:
    """The manifest of *stage* in *out* (empty if the stage never published there)."""
    path = manifest_path(out, stage)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError:
        return {}  # a damaged manifest owns nothing; the next publish rewrites it


def staged_files(staging: Path) -> list[str]:
    """Files the stage produced, relative to *staging* (``tables/x.csv``...), sorted."""
    found = []
    for sub in PUBLISHED_DIRS:
        root = staging / sub
        if root.is_dir():
            found += [str(p.relative_to(staging)) for p in root.rglob("*")
                      if p.is_file() and not UNPUBLISHABLE.search(p.name)]
    return sorted(found)


def _owners(out: Path, stage: str) -> dict[str, str]:
    owners = {}
    folder = out / MANIFEST_DIR
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            if path.stem != stage:
                owners.update({f: path.stem for f in read_manifest(out, path.stem).get("files", {})})
    return owners


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _remove_stray_temporaries(out: Path) -> None:
    for sub in PUBLISHED_DIRS:
        root = out / sub
        if root.is_dir():
            for p in root.rglob("*.tmp"):
                if p.name.startswith("."):
                    p.unlink(missing_ok=True)


def publish(stage: str, staging: Path, out: Path, executed: Path, parameters: Mapping[str, object]) -> Path:
    """Publish the outputs of *stage* from *staging* into *out* (see the module docstring).

    Parameters
    ----------
    stage : str
        The stage (notebook stem), e.g. ``03-pool``.
    staging : Path
        The stage's private out_dir.
    out : Path
        The outputs folder.
    executed : Path
        The executed notebook, published last as ``<out>/notebooks/<stage>.ipynb``.
    parameters : mapping
        The stage's parameters as the executed notebook records them (for the manifest).

    Returns
    -------
    Path
        The published notebook.

    Raises
    ------
    PublishError
        A file another stage owns; nothing has been changed then.
    """
    files = staged_files(staging)
    owners = _owners(out, stage)
    taken = [f"{f} (published by {owners[f]})" for f in files if f in owners]
    if taken:
        raise PublishError(f"stage {stage} produced files another stage publishes: {', '.join(taken)}")
    previous = set(read_manifest(out, stage).get("files", {}))
    target = out / "notebooks" / f"{stage}.ipynb"
    target.unlink(missing_ok=True)
    digests = {}
    for rel in files:
        src, dest = staging / rel, out / rel
        digests[rel] = _sha256(src)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)
    for rel in sorted(previous - set(files)):
        if rel not in owners:
            (out / rel).unlink(missing_ok=True)
    _remove_stray_temporaries(out)
    manifest = {"stage": stage, "parameters": dict(parameters), "files": digests}
    write_text(manifest_path(out, stage), json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(executed, target)
    return target
