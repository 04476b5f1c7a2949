"""halnav's second tier: the parts under the navigator, for building a profile or tooling.

``halnav`` holds what a user of the navigator, the crawler and the command line needs; this
module holds the pieces they are made of, stable but rarely needed (trio's ``trio`` /
``trio.lowlevel`` split)::

    >>> from halnav import lowlevel
    >>> lowlevel.parse_selector("item[name:alice]")
    Selector(rel='item', index=None, key='name', value='alice')
    >>> lowlevel.canonical_url("HTTPS://Host:443/v5/Organizations")
    'https://host/v5/Organizations'

* :class:`Selector` / :func:`parse_selector`: the ``rel[N]`` / ``rel[key:value]`` steps
  ``follow`` and the CLI take.
* :class:`ParseOptions`: the parse policy ``parse`` and ``Navigator`` build from their
  ``lenient`` / ``link_base`` / ``pin_origin`` options and ``Limits`` (``ParseOptions.of``),
  for code that calls the parser below them.
* :func:`make_converter`: the cattrs converter halnav parses with (to extend with hooks).
* :class:`TokenProvider`: the protocol a custom token source implements for
  :class:`halnav.ProviderAuth`.
* :func:`canonical_url`: the URL form the graph and the crawl key documents by.
* :func:`is_http_url`, :func:`origin_of`: what halnav may request, and a URL's origin.
"""

from __future__ import annotations

from ._auth import TokenProvider
from ._convert import ParseOptions, make_converter
from ._model import Selector, parse_selector
from ._urls import canonical_url, is_http_url, origin_of

__all__ = [
    "ParseOptions",
    "Selector",
    "TokenProvider",
    "canonical_url",
    "is_http_url",
    "make_converter",
    "origin_of",
    "parse_selector",
]
