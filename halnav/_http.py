"""HTTP facts halnav needs in several layers, in one place: which media types are JSON, the
server's explanation in an error body, one-line text, and redacting secrets. A leaf: it
imports nothing from halnav, so the transport, auth and the navigator all can."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable
from typing import Final
from urllib.parse import quote, quote_plus

__all__ = ["JSON_TYPES", "error_detail", "is_json_type", "one_line", "redact"]

JSON_TYPES: Final = frozenset(
    {
        "application/json",
        "application/hal+json",
        "application/problem+json",
        "application/prs.hal-forms+json",
    }
)
"""The JSON media types by name; any other ``+json`` type is JSON too (:func:`is_json_type`)."""

_DETAIL_KEYS: Final = ("message", "detail", "title", "error_description", "error")


def is_json_type(content_type: str) -> bool:
    """Whether a lowercased media type (no parameters) is JSON (``+json`` included).

    An answer with no ``Content-Type`` (``""``) is not JSON here; the navigator decides
    what to make of one (it parses it as JSON, for servers that leave it out).
    """
    return content_type in JSON_TYPES or content_type.endswith("+json")


# A secret shorter than this is redacted only where it stands alone (not inside a word):
# replacing every "r" of a message would garble it and tell the secret.
_SHORT_SECRET: Final = 8


def redact(text: str, secrets: Iterable[str | None]) -> str:
    r"""``text`` with each secret replaced by ``***``, in every spelling a server may echo
    it: as sent, form-encoded (``%21``, ``+``), JSON-escaped, and with its whitespace
    runs collapsed. A secret shorter than 8 characters is replaced only where it stands
    alone (not inside a word), so a message stays readable and does not spell it out.

    >>> redact("user tech\\re: password re refused", ["re"])
    'user tech\\***: password *** refused'
    """
    for secret in secrets:
        if not secret:
            continue
        for spelling in _spellings(secret):
            if spelling not in text:
                continue
            if len(secret) >= _SHORT_SECRET:
                text = text.replace(spelling, "***")
            else:
                alone = rf"(?<![^\W_]){re.escape(spelling)}(?![^\W_])"
                text = re.sub(alone, "***", text)
    return text


@functools.lru_cache(maxsize=64)
def _spellings(secret: str) -> tuple[str, ...]:
    found = [
        secret,
        quote_plus(secret),
        quote(secret, safe=""),
        json.dumps(secret)[1:-1],
        " ".join(secret.split()),
    ]
    return tuple(dict.fromkeys(spelling for spelling in found if spelling))


def error_detail(
    content_type: str,
    body: bytes,
    limit: int = 200,
    redact: Callable[[str], str] | None = None,
) -> str:
    """The server's own explanation in an error body, on one line, at most ``limit`` chars.

    Looks for (any key case) Veeam ``message``, problem+json ``detail`` /
    ``title``, OAuth ``error_description`` / ``error``; else an excerpt of the
    text body. ``redact`` runs on the whole text before it is cut to ``limit`` and
    after its whitespace is collapsed, so no part of an echoed secret survives.
    """
    text = _detail_text(content_type, body, limit)
    if redact is None:
        return one_line(text, limit)
    return one_line(redact(" ".join(redact(text).split())), limit)


def _detail_text(content_type: str, body: bytes, limit: int) -> str:
    if not body or _is_html(content_type, body):
        return ""  # an HTML error page is markup for a browser: the status says it better
    if is_json_type(content_type) or body.lstrip()[:1] == b"{":
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            lowered = {k.lower(): v for k, v in doc.items() if isinstance(k, str)}
            for key in _DETAIL_KEYS:
                value = lowered.get(key)
                if isinstance(value, str) and value.strip():
                    return value
    return body[: limit * 4].decode("utf-8", "replace")


def _is_html(content_type: str, body: bytes) -> bool:
    if content_type in ("text/html", "application/xhtml+xml"):
        return True
    head = body.lstrip()[:15].lower()
    return head.startswith((b"<!doctype html", b"<html"))


def one_line(text: str, limit: int) -> str:
    """``text`` with its whitespace runs collapsed, cut to ``limit`` characters (``…``)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- RFC 8288 Link headers ---------------------------------------------------------------

_LINK_VALUE = re.compile(
    r"\s*<([^>]*)>\s*((?:;\s*[^;,=\s]+\s*(?:=\s*(?:\"(?:[^\"\\]|\\.)*\"|[^;,\"]*))?\s*)*)"
)
_LINK_PARAM = re.compile(r";\s*([^;,=\s]+)\s*(?:=\s*(\"(?:[^\"\\]|\\.)*\"|[^;,\"]*))?")


def parse_link_header(values: Iterable[str]) -> list[tuple[str, dict[str, str]]]:
    r"""The links of ``Link`` header values (RFC 8288): ``(target, params)`` pairs, in order.

    Several links in one value (comma-separated), several values, quoted and unquoted
    parameter values (``rel=next``, ``rel="next prev"``) and quoted commas and semicolons
    are handled; parameter names are lower-cased, the first of a repeated one wins (RFC
    8288 section 3), and ``title*`` is kept as given. Targets are not resolved: a caller
    resolves them (and ``anchor``) against the request URL. Malformed pieces are skipped.

    >>> parse_link_header(['<https://h/p?page=2>; rel="next", </p/1>; rel=first; title="a, b"'])
    [('https://h/p?page=2', {'rel': 'next'}), ('/p/1', {'rel': 'first', 'title': 'a, b'})]
    """
    found: list[tuple[str, dict[str, str]]] = []
    for value in values:
        position = 0
        while position < len(value):
            match = _LINK_VALUE.match(value, position)
            if match is None:
                comma = value.find(",", position + 1)
                if comma < 0:
                    break
                position = comma + 1  # skip a malformed link value
                continue
            params: dict[str, str] = {}
            for name, raw in _LINK_PARAM.findall(match[2]):
                text = raw.strip()
                if text.startswith('"'):
                    text = re.sub(r"\\(.)", r"\1", text[1:-1])
                params.setdefault(name.lower(), text)
            found.append((match[1].strip(), params))
            position = match.end()
            rest = value[position:].lstrip()
            if not rest.startswith(","):
                break
            position = len(value) - len(rest) + 1
    return found
