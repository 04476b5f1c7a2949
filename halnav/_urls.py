"""URL facts halnav needs in several layers, in one place: the default ports, the one
canonical spelling of a URL (the graph's and the crawl's key), the origin of an absolute
URL, and the short label a repr shows. A leaf: it imports nothing from halnav.

(Each layer still parses URLs its own way where that is its job and its speed: the
transport with yarl, the graph with its canonical form.)
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit

__all__ = ["DEFAULT_PORTS", "canonical_url", "is_http_url", "origin_of", "short_label"]

DEFAULT_PORTS: Final = {"http": 80, "https": 443}
"""The port a URL of each scheme halnav requests has when it names none."""


_DEFAULT_PORTS: Final = {scheme: f":{port}" for scheme, port in DEFAULT_PORTS.items()}
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")


def canonical_url(url: str) -> str:
    """The one spelling of ``url`` the graph keys nodes by.

    Lower-cases the scheme and host, drops a default port (``:80`` for http,
    ``:443`` for https) and the fragment, turns an empty path into ``/``; the
    path and query are kept byte for byte (a Veeam id's ``%3D`` stays ``%3D``).
    Idempotent, and fast for a URL that is already canonical.

    >>> canonical_url("HTTPS://VBO.example:443/v5/Jobs?id=a%3D#top")
    'https://vbo.example/v5/Jobs?id=a%3D'
    """
    # Fast path: nearly every href a server sends is already canonical.
    if url.startswith("https://"):
        start, default = 8, ":443"
    elif url.startswith("http://"):
        start, default = 7, ":80"
    else:
        return _canonical_slow(url)
    end = url.find("/", start)
    if end > start and "#" not in url:
        authority = url[start:end]
        if (
            authority == authority.lower()
            and "@" not in authority
            and "?" not in authority
            and not authority.endswith((default, ":"))
        ):
            return url
    return _canonical_slow(url)


def _canonical_slow(url: str) -> str:
    url = url.partition("#")[0]
    match = _SCHEME.match(url)
    if match is None:  # a relative reference: nothing to normalise but the fragment
        return url
    scheme = match[0][:-1].lower()
    rest = url[match.end() :]
    if not rest.startswith("//"):  # urn:, mailto:, ... have no authority
        return f"{scheme}:{rest}"
    rest = rest[2:]
    cut = len(rest)
    for stop in "/?":
        found = rest.find(stop)
        if 0 <= found < cut:
            cut = found
    authority, tail = rest[:cut], rest[cut:]
    userinfo, at, hostport = authority.rpartition("@")
    hostport = hostport.lower()
    default = _DEFAULT_PORTS.get(scheme)
    if default is not None and hostport.endswith(default):
        hostport = hostport[: -len(default)]
    if hostport.endswith(":") and not hostport.endswith("]:"):
        hostport = hostport[:-1]  # an empty port means the default one
    elif hostport.endswith("]:"):
        hostport = hostport[:-1]
    if not tail.startswith("/"):
        tail = "/" + tail
    return f"{scheme}://{userinfo}{at}{hostport}{tail}"


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
