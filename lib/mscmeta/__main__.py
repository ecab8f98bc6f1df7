"""``python -m mscmeta``: see :mod:`mscmeta.cli`."""

import sys

from mscmeta.cli import main

if __name__ == "__main__":
    sys.exit(main())
