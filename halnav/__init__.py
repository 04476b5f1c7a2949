"""halnav: an async hypermedia (HAL) navigator and crawler.

Parse any HAL document into immutable values::

    >>> import halnav
    >>> doc = halnav.parse(b'{"_links": {"self": {"href": "/o"}}}', "https://h/v5/o")
    >>> doc.rels
    ('self',)
"""

from __future__ import annotations

from . import errors
from ._auth import (
    AssertionGrant,
    Auth,
    BearerAuth,
    ClientCredentialsGrant,
    OAuth2Grant,
    PasswordGrant,
    ProviderAuth,
    TokenProvider,
    discover_token_endpoint,
    password_auth,
    redact,
)
from ._config import Limits
from ._convert import ParseOptions, make_converter, parse, structure_state, unstructure
from ._crawl import ActionRule, Crawler, CrawlStatistics, CrawlSummary, Scope, crawl
from ._graph import Graph, GraphStatistics, Node, canonical_url
from ._model import (
    Action,
    ActionRequest,
    Answer,
    Document,
    FormProperty,
    Link,
    Selector,
    parse_selector,
)
from ._navigator import (
    ActionBody,
    ActionResolver,
    Download,
    Fetched,
    Navigator,
    NavigatorStatistics,
)
from ._records import (
    ActionRecord,
    DocumentRecord,
    ErrorInfo,
    FailureRecord,
    Record,
    parse_record,
    read_records,
)
from ._sinks import (
    ActionAnswered,
    ActionFailed,
    ActionPlanned,
    CrawlEvent,
    CrawlSink,
    DocumentWritten,
    FetchFailed,
    LinkSkipped,
)
from .errors import (
    ActionNotFoundError,
    DocumentError,
    HalnavError,
    LinkNotFoundError,
    MissingVariablesError,
)

__all__ = [
    "Action",
    "ActionAnswered",
    "ActionBody",
    "ActionFailed",
    "ActionNotFoundError",
    "ActionPlanned",
    "ActionRecord",
    "ActionRequest",
    "ActionResolver",
    "ActionRule",
    "Answer",
    "AssertionGrant",
    "Auth",
    "BearerAuth",
    "ClientCredentialsGrant",
    "CrawlEvent",
    "CrawlSink",
    "CrawlStatistics",
    "CrawlSummary",
    "Crawler",
    "Document",
    "DocumentError",
    "DocumentRecord",
    "DocumentWritten",
    "Download",
    "ErrorInfo",
    "FailureRecord",
    "FetchFailed",
    "Fetched",
    "FormProperty",
    "Graph",
    "GraphStatistics",
    "HalnavError",
    "Limits",
    "Link",
    "LinkNotFoundError",
    "LinkSkipped",
    "MissingVariablesError",
    "Navigator",
    "NavigatorStatistics",
    "Node",
    "OAuth2Grant",
    "ParseOptions",
    "PasswordGrant",
    "ProviderAuth",
    "Record",
    "Scope",
    "Selector",
    "TokenProvider",
    "canonical_url",
    "crawl",
    "discover_token_endpoint",
    "errors",
    "make_converter",
    "parse",
    "parse_record",
    "parse_selector",
    "password_auth",
    "read_records",
    "redact",
    "structure_state",
    "unstructure",
]

__version__ = "0.1.0"
