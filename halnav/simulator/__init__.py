"""An embedded simulator of the Veeam Backup for Microsoft 365 REST API v5-v8 (aiohttp.web).

It serves ``/vN/token``, organizations, restore sessions and the Exchange, OneDrive,
SharePoint and Teams subtrees below ``/vN/RestoreSessions/{id}/Organization`` (with their
actions: search, export, save, send, restore, copy) from deterministic, lazily generated
data, in one API version per app (``SimulatorConfig(api_version="v8")``): v5 with its quirks
(absolute hrefs, ``POST .../Action`` bodies, bare-array organizations), v6-v8 as Veeam's
OpenAPI specifications define them (``_versions.py`` lists every difference), all with
case-insensitive routes and base64 ids, and optional injected faults for testing clients.

Example::

    from halnav.simulator import SimulatorConfig, open_simulator

    async with open_simulator(SimulatorConfig(mailboxes=10)) as sim:
        ...  # POST f"{sim.api}token", then explore an organization

Command line: ``python -m halnav.simulator --port 4443 --tls``.
"""

from ._app import Simulator, SimulatorStats, make_app, open_simulator, routes
from ._cli import run_cli
from ._data import Faults, SimulatorConfig

__all__ = [
    "Faults",
    "Simulator",
    "SimulatorConfig",
    "SimulatorStats",
    "make_app",
    "open_simulator",
    "routes",
    "run_cli",
]
