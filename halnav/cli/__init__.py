r"""The ``halnav`` command line: get, follow, act, crawl, graph, sim, repl, demo.

::

    halnav get https://vbo:4443/v5/Organizations --username 'tech\admin' --password -
    halnav follow URL mailboxes --token "$TOKEN"
    halnav crawl URL --out walk.jsonl --graph walk.mmd
    halnav demo

Every failure halnav, the network or a file reports ends the command with one line
``halnav: error: <message>`` on stderr and exit status 1 (2 for usage errors, as
argparse does); ``--debug`` shows the traceback instead. Ctrl-C exits with 130; SIGTERM
is handled the same way by every command but repl (the command is cancelled, so its restore
sessions are stopped and its output flushed) and exits with 143.
Credentials come from options or the environment (``HALNAV_TOKEN``,
``HALNAV_USERNAME``, ``HALNAV_PASSWORD``) and are never printed.

The package holds no library logic: ``_options`` builds the parser (and moves shared
options given before the command), ``_render`` is everything it shows (documents, JSON,
progress, summaries, error lines), ``_commands`` the commands, each a few calls into the
public API, and ``main``.
"""

from __future__ import annotations

from ._commands import main
from ._render import render

__all__ = ["main", "render"]
