"""``python -m halnav.simulator``: serve the simulator until interrupted."""

import sys

from ._cli import run_cli

sys.exit(run_cli())
