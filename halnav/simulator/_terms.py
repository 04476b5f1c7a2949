"""The search query language: KQL-ish queries parsed into terms, and items matched against them.

Used by search (which items a page holds) and PST export (``contentKeyword``); the parsed
terms are also part of the state's search-page cache key. Pure functions of the data.
"""

from __future__ import annotations

import functools
import re
from typing import Final

import attrs

from ._data import Data

_FIELD_TERMS: Final = {"from", "to", "cc", "bcc", "subject", "importance", "itemclass"}
_TERM = re.compile(r'(?:(?P<field>[A-Za-z]+):)?(?:"(?P<quoted>[^"]*)"|(?P<word>\S+))')


@attrs.frozen
class _Term:
    field: str | None
    """A lowercased field name, or ``None`` for free text."""
    value: str


@functools.lru_cache(maxsize=256)
def _parse_search(query: str) -> tuple[_Term, ...]:
    """KQL-ish: ``from:x to:y subject:"two words" free words``; ANDed, case-insensitive."""
    terms = []
    for match in _TERM.finditer(query):
        field = (match["field"] or "").lower()
        value = (match["quoted"] if match["quoted"] is not None else match["word"]).lower()
        if field in _FIELD_TERMS or field in ("body", "hasattachments"):
            terms.append(_Term(None if field == "body" else field, value))
        elif field:
            # An unknown "name:value" is just text to look for.
            terms.append(_Term(None, f"{field}:{value}"))
        elif value:
            terms.append(_Term(None, value))
    return tuple(terms)


def _matches(data: Data, fields: dict[str, object], terms: tuple[_Term, ...]) -> bool:
    text: str | None = None
    for term in terms:
        if term.field is None:
            text = data.search_text(fields) if text is None else text
            if term.value not in text:
                return False
        elif term.field == "hasattachments":
            if ("attachments" in fields) != (term.value == "true"):
                return False
        else:
            key = "itemClass" if term.field == "itemclass" else term.field
            if term.value not in str(fields.get(key, "")).lower():
                return False
    return True
