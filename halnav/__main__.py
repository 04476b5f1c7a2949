"""``python -m halnav``: the command line (see :mod:`halnav.cli`)."""

from __future__ import annotations

import sys

from halnav.cli import main

if __name__ == "__main__":
    sys.exit(main())
