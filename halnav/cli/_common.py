"""Constants, the help formatter and the usage error every part of the command line shares."""

from __future__ import annotations

import argparse
import re
import textwrap
from typing import TYPE_CHECKING, Final, TypeVar

import halnav

if TYPE_CHECKING:
    pass
from halnav.errors import HalnavError, printable

_T = TypeVar("_T")

_MAX_ITEMS_SHOWN: Final = 50
_FROM_STDIN: Final = "-"  # --password - reads the password from stdin
# Options that carry a secret: each also has --NAME-file; a value given on the command line
# is visible to every user of the machine (ps, /proc/PID/cmdline), so halnav warns.
_SECRET_OPTIONS: Final = ("token", "password", "client-secret", "assertion")
# Exit codes (README "Exit codes"): 0 done; 1 error (a walk that cannot start, bad input);
# 2 usage; 3 a walk that finished with failures; 4 a walk stopped early (the server stopped
# answering; re-run with --state to resume); 130 Ctrl-C; 141 closed pipe; 143 SIGTERM.
_LIMITS: Final = halnav.Limits()  # the defaults the help texts name
_MERMAID_MAX_EDGES: Final = 500  # Mermaid's default maxEdges
# A URL of a Veeam B365 server: an action refused there without --veeam gets a hint.
_VEEAM_PATH: Final = re.compile(r"/v[5-8]/(?:restoresessions|organizations)", re.IGNORECASE)
# Said when a server at a _VEEAM_PATH refuses actions sent without the Veeam profile.
_VEEAM_HINT: Final = (
    "is this a Veeam server? add --veeam: its actions take wrapped bodies and names a plain "
    "HAL client does not know"
)
_EXIT_ERROR: Final = 1
_EXIT_USAGE: Final = 2
_WALKS: Final = frozenset({"crawl", "veeam-walk"})
_EXIT_CODES: Final = """exit status:
  0    done (a walk: complete, or cut short by --max-documents or --max-hits as asked)
  1    error: bad input, or a walk that cannot start (login, connection, TLS)
  2    usage error
  3    a walk (or demo) finished with failures: see the failure records
  4    a walk stopped early: the server stopped answering (resume with --state)
  130  Ctrl-C; 141 closed pipe; 143 SIGTERM (sessions halnav opened are stopped)"""
_EXIT_FAILURES: Final = 3
_EXIT_STOPPED: Final = 4
_EXIT_INTERRUPTED: Final = 130
_EXIT_BROKEN_PIPE: Final = 141  # 128 + SIGPIPE, what a shell reports for a killed writer
_EXIT_TERMINATED: Final = 143  # 128 + SIGTERM


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Wrap descriptions to the terminal, keep the examples' line breaks (indented lines).

    Defaults are written into each option's help by hand, from ``Limits()`` where they
    come from there: argparse's ``%(default)s`` would print a value the environment set.
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for block in text.split("\n\n"):
            if block.startswith(" ") or "\n  " in block:  # examples, exit codes: as written
                paragraphs.append(textwrap.indent(block, indent))
            else:
                paragraphs.append(
                    textwrap.fill(" ".join(block.split()), width, initial_indent=indent,
                                  subsequent_indent=indent)
                )  # fmt: skip
        return "\n\n".join(paragraphs)


def _examples(*lines: str) -> str:
    return "example:\n" + "\n".join(f"  {line}" for line in lines)


_printable = printable  # every string a server sent, shown to a person


_HANDLED: Final = (HalnavError, ValueError, OSError)


class _UsageError(ValueError):
    """The command line itself is wrong (options that do not go together, a malformed
    value): exit status 2, as for argparse's own usage errors."""
