"""halnav: an async hypermedia (HAL) navigator and crawler.

Parse any HAL document into immutable values::

    >>> import halnav
    >>> doc = halnav.parse(b'{"_links": {"self": {"href": "/o"}}}', "https://h/v5/o")
    >>> doc.rels
    ('self',)
"""

from __future__ import annotations

from typing import Final

from . import errors, lowlevel
from ._apimap import ApiMap, ResourceKind
from ._auth import (
    AssertionGrant,
    Auth,
    AuthContext,
    BearerAuth,
    ClientCredentialsGrant,
    OAuth2Grant,
    PasswordGrant,
    ProviderAuth,
    discover_token_endpoint,
    password_auth,
)
from ._cache import HttpCache, MemoryCache, SqliteCache
from ._config import Limits
from ._convert import parse, structure_state, unstructure
from ._crawl import ActionRule, Crawler, CrawlStatistics, CrawlSummary, Scope, crawl
from ._graph import Graph, GraphStatistics, Node
from ._http import redact
from ._model import (
    Action,
    ActionRequest,
    Answer,
    Document,
    Form,
    FormProperty,
    Link,
    changes_data,
)
from ._navigator import (
    ActionBody,
    ActionResolver,
    Download,
    Fetched,
    Invoked,
    Navigator,
    NavigatorStatistics,
    ResourceEvent,
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
from ._transport import TransportStatistics
from ._version import __version__ as __version__
from ._walkgraph import RecordsGraph, graph_from_records
from .errors import (
    ActionNotFoundError,
    AuthenticationError,
    ConnectError,
    DeprecatedLinkWarning,
    DeprecatedResourceWarning,
    DocumentError,
    FormError,
    HalnavError,
    HTTPStatusError,
    InsecureTLSWarning,
    LimitExceededError,
    LinkNotFoundError,
    MissingVariablesError,
    RequestTimeoutError,
    RetryBudgetExceededError,
    StateError,
    TemplateWarning,
    TLSError,
    TransportError,
    UnsafeLinkError,
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
    "ApiMap",
    "AssertionGrant",
    "Auth",
    "AuthContext",
    "AuthenticationError",
    "BearerAuth",
    "ClientCredentialsGrant",
    "ConnectError",
    "CrawlEvent",
    "CrawlSink",
    "CrawlStatistics",
    "CrawlSummary",
    "Crawler",
    "DeprecatedLinkWarning",
    "DeprecatedResourceWarning",
    "Document",
    "DocumentError",
    "DocumentRecord",
    "DocumentWritten",
    "Download",
    "ErrorInfo",
    "FailureRecord",
    "FetchFailed",
    "Fetched",
    "Form",
    "FormError",
    "FormProperty",
    "Graph",
    "GraphStatistics",
    "HTTPStatusError",
    "HalnavError",
    "HttpCache",
    "InsecureTLSWarning",
    "Invoked",
    "LimitExceededError",
    "Limits",
    "Link",
    "LinkNotFoundError",
    "LinkSkipped",
    "MemoryCache",
    "MissingVariablesError",
    "Navigator",
    "NavigatorStatistics",
    "Node",
    "OAuth2Grant",
    "PasswordGrant",
    "ProviderAuth",
    "Record",
    "RecordsGraph",
    "RequestTimeoutError",
    "ResourceEvent",
    "ResourceKind",
    "RetryBudgetExceededError",
    "Scope",
    "SqliteCache",
    "StateError",
    "TLSError",
    "TemplateWarning",
    "TransportError",
    "TransportStatistics",
    "UnsafeLinkError",
    "changes_data",
    "crawl",
    "discover_token_endpoint",
    "errors",
    "graph_from_records",
    "lowlevel",
    "parse",
    "parse_record",
    "password_auth",
    "read_records",
    "redact",
    "structure_state",
    "unstructure",
]


_MOVED: Final = frozenset(
    {
        "ParseOptions",
        "Selector",
        "TokenProvider",
        "canonical_url",
        "make_converter",
        "parse_selector",
    }
)


def __getattr__(name: str) -> object:
    """The names that moved to :mod:`halnav.lowlevel`, with a DeprecationWarning."""
    if name in _MOVED:
        import warnings  # noqa: PLC0415  only for the moved names

        from . import lowlevel  # noqa: PLC0415  a cycle at import time otherwise

        warnings.warn(
            f"halnav.{name} moved to halnav.lowlevel.{name}", DeprecationWarning, stacklevel=2
        )
        return getattr(lowlevel, name)
    raise AttributeError(f"module 'halnav' has no attribute {name!r}")
