"""URL facts halnav needs in several layers, in one place: the default ports, the origin of
an absolute URL, and the short label a repr shows. A leaf: it imports nothing from halnav.

(Each layer still parses URLs its own way where that is its job and its speed: the
transport with yarl, the graph with its canonical form.)
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

__all__ = ["DEFAULT_PORTS", "is_http_url", "origin_of", "short_label"]

DEFAULT_PORTS: Final = {"http": 80, "https": 443}
"""The port a URL of each scheme halnav requests has when it names none."""


def is_http_url(url: str) -> bool:
    """Whether ``url`` is an absolute ``http``/``https`` URL with a host: what halnav may
    request (the transport checks the rest: userinfo, the host's form).

    >>> is_http_url("https://vbo:4443/v5"), is_http_url("ftp://h/x"), is_http_url("/v5/x")
    (True, False, False)
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # a malformed authority, such as an unclosed IPv6 bracket
        return False
    return parts.scheme.lower() in DEFAULT_PORTS and bool(parts.netloc)


def origin_of(url: str) -> str:
    """``scheme://authority`` of an absolute URL as written (``""`` when it has none).

    >>> origin_of("https://vbo:4443/v5/Organizations?limit=30")
    'https://vbo:4443'
    >>> origin_of("https://vbo?x=1")
    'https://vbo'
    """
    start = url.find("//")
    if start < 0:
        return ""
    end = url.find("/", start + 2)  # the authority ends at a "/", or a "?" or "#" before it
    if end < 0:
        end = len(url)
    query = url.find("?", start + 2, end)  # searched within the authority only: cheap
    if query >= 0:
        end = query
    fragment = url.find("#", start + 2, end)
    return url[: fragment if fragment >= 0 else end]


def short_label(url: str) -> str:
    """The last two path segments (and the query) of a long URL: enough to tell siblings
    apart in a repr or a picture.

    >>> short_label("https://vbo:4443/v5/RestoreSessions/abc/Organization/Mailboxes/m1?x=1")
    '.../Mailboxes/m1?x=1'
    """
    path, mark, query = url.partition("?")
    parts = path.rstrip("/").split("/")
    if len(parts) <= 5:  # scheme, '', host and two segments: show it whole
        return url
    return ".../" + "/".join(parts[-2:]) + mark + query
