"""Lenient request bodies: action bodies read the way Veeam's Json.NET binds them.

v5 action bodies (``{"<name>": options}``, ``_read_action``) and v6+ bare options
(``_read_options``, property names checked strictly), both case-insensitive and tolerant of
trailing commas; ``_flag`` and ``_parse_datetime`` read the option values clients send.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Final

from ._context import _ApiError, _Ctx


def _strip_trailing_commas(text: str) -> str:
    """Drop ``,`` before ``}``/``]`` outside strings: Json.NET accepts them, clients send them."""
    if "," not in text:
        return text
    out: list[str] = []
    in_string = False
    escaped = False
    for index, char in enumerate(text):
        if in_string:
            out.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char == ",":
            rest = text[index + 1 :].lstrip()
            if rest[:1] in ("}", "]"):
                continue
        out.append(char)
    return "".join(out)


def _lower_keys(value: object) -> object:
    if isinstance(value, dict):
        return {str(key).lower(): _lower_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_lower_keys(item) for item in value]
    return value


async def _read_action(ctx: _Ctx, allowed: tuple[str, ...]) -> tuple[str, dict[str, object]]:
    """The one-key action body: (lowercased action name, options with lowercased keys)."""
    text = (await ctx.request.text()).strip()
    try:
        body = json.loads(_strip_trailing_commas(text)) if text else None
    except ValueError:
        raise _ApiError(400, "The request is invalid: the body is not valid JSON.") from None
    if not isinstance(body, dict) or len(body) != 1:
        raise _ApiError(
            400, "The request is invalid: the body must be a JSON object with exactly one key."
        )
    ((name, options),) = body.items()
    action = str(name).lower()
    if action not in allowed:
        raise _ApiError(400, f"Action '{name}' is not supported for this resource.")
    if options is None:
        return action, {}
    if not isinstance(options, dict):
        raise _ApiError(400, f"The request is invalid: options of '{name}' must be an object.")
    lowered = _lower_keys(options)
    assert isinstance(lowered, dict)
    return action, lowered


async def _read_options(ctx: _Ctx, allowed: tuple[str, ...]) -> dict[str, object]:
    """A v6+ action body: the bare options object, property names checked strictly.

    Names match case-insensitively (Json.NET binds them so) and come back lowercased. A
    name outside ``allowed`` is a 400, so a v5-style wrapped body (``{"search": {...}}``)
    or a misspelt option (``contentKeywords`` for ``contentKeyword``) is refused instead
    of silently running with defaults. An empty body or ``null`` is no options.
    """
    text = (await ctx.request.text()).strip()
    try:
        body = json.loads(_strip_trailing_commas(text)) if text else None
    except ValueError:
        raise _ApiError(400, "The request is invalid: the body is not valid JSON.") from None
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise _ApiError(400, "The request is invalid: the body must be a JSON object.")
    lowered = _lower_keys(body)
    assert isinstance(lowered, dict)
    unknown = sorted(
        str(key) for key, name in zip(body, lowered, strict=True) if name not in allowed
    )
    if unknown:
        expected = ", ".join(allowed) or "no properties"
        raise _ApiError(
            400,
            f"The request is invalid: unknown property '{unknown[0]}' (expected {expected}).",
        )
    return lowered


def _flag(options: Mapping[str, object], name: str, default: bool) -> bool:
    """A boolean option given as ``true`` or as a string ``"true"``/``"True"``."""
    value = options.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _ApiError(400, f"The request is invalid: '{name}' must be a boolean.")


_DATE_FORMATS: Final = (
    "%Y.%m.%d %H:%M:%S",
    "%Y.%m.%d %H:%M",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y.%m.%d",
    "%Y-%m-%d",
)


def _parse_datetime(text: str) -> dt.datetime:
    """The ``datetime`` forms v5 accepts (documented ones and what clients send)."""
    text = text.strip()
    for pattern in _DATE_FORMATS:
        with contextlib.suppress(ValueError):
            return dt.datetime.strptime(text, pattern).replace(tzinfo=dt.UTC)
    # ISO 8601 with up to 7 fractional digits (.NET ticks): Python takes 6.
    iso = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        raise _ApiError(400, f"The request is invalid: cannot parse datetime '{text}'.") from None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
