"""halnav: an async hypermedia (HAL) navigator and crawler.

Parse any HAL document into immutable values::

    >>> import halnav
    >>> doc = halnav.parse(b'{"_links": {"self": {"href": "/o"}}}', "https://h/v5/o")
    >>> doc.rels
    ('self',)
"""

from __future__ import annotations

from . import errors
from ._config import Limits
from ._convert import ParseOptions, make_converter, parse, structure_state, unstructure
from ._model import Action, Document, FormProperty, Link, Selector, parse_selector
from .errors import (
    ActionNotFoundError,
    DocumentError,
    HalnavError,
    LinkNotFoundError,
    MissingVariablesError,
)

__all__ = [
    "Action",
    "ActionNotFoundError",
    "Document",
    "DocumentError",
    "FormProperty",
    "HalnavError",
    "Limits",
    "Link",
    "LinkNotFoundError",
    "MissingVariablesError",
    "ParseOptions",
    "Selector",
    "errors",
    "make_converter",
    "parse",
    "parse_selector",
    "structure_state",
    "unstructure",
]

__version__ = "0.1.0"
