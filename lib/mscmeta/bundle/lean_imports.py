"""Keep the notebook runners from loading a grammar they never use.

papermill and nbconvert read and validate notebooks with nbformat, which imports
jsonschema. When the optional package ``rfc3987_syntax`` is installed (jupyterlab pulls
it in through ``jsonschema[format-nongpl]``), importing jsonschema builds that package's
Lark grammar for the ``iri`` and ``iri-reference`` string formats: about 2 s of CPU,
i.e. most of the cost of importing papermill, paid once per stage and again by the HTML
renderer. nbformat's notebook schemas declare no ``format`` keyword at all (checked by
``tests/test_lean_imports.py`` for every schema nbformat ships), so that grammar is
never consulted when a notebook is validated.

:func:`skip_iri_grammar` marks the module as unavailable *in the current process* before
jsonschema is imported (a ``None`` entry in :data:`sys.modules`, Python's documented way
to make an import raise ``ImportError``); jsonschema then registers no ``iri`` format
checker, exactly as when the optional package is not installed. Only the runner and
renderer processes call it; kernels and the user's JupyterLab are untouched.

References
----------
Python Language Reference, §5.3.1 "The module cache": "If the value at
``sys.modules[name]`` is ``None``, the import raises a ``ModuleNotFoundError``."
jsonschema 4.26 ``_format.py``: the ``iri`` checkers are defined only
``with suppress(ImportError)`` around ``from rfc3987_syntax import ...``.
"""

from __future__ import annotations

import sys

IRI_GRAMMAR_MODULE = "rfc3987_syntax"


def skip_iri_grammar() -> bool:
    """Make ``rfc3987_syntax`` unavailable to this process unless it is already loaded.

    Returns
    -------
    bool
        True if the module is now blocked, False if it had been imported already (then
        nothing changes).
    """
    if sys.modules.get(IRI_GRAMMAR_MODULE) is not None:
        return False
    sys.modules[IRI_GRAMMAR_MODULE] = None  # type: ignore[assignment]
    return True
