"""An embedded simulator of the Veeam Backup for Microsoft 365 REST API v5 (aiohttp.web).

It serves ``/v5/token``, organizations, restore sessions and the Exchange and OneDrive
subtrees below ``/v5/RestoreSessions/{id}/Organization`` from deterministic, lazily generated
data, with v5's quirks (case-insensitive routes, absolute hrefs, ``POST .../Action`` bodies,
base64 ids) and optional injected faults for testing clients.

Example::

    from halnav.simulator import SimulatorConfig, open_simulator

    async with open_simulator(SimulatorConfig(mailboxes=10)) as sim:
        ...  # POST f"{sim.api}token", then explore an organization

Command line: ``python -m halnav.simulator --port 4443 --tls``.
"""

from ._app import Simulator, SimulatorStats, make_app, open_simulator
from ._cli import run_cli
from ._data import Faults, SimulatorConfig

__all__ = [
    "Faults",
    "Simulator",
    "SimulatorConfig",
    "SimulatorStats",
    "make_app",
    "open_simulator",
    "run_cli",
]
