"""The halnav exception tree.

Every error halnav raises derives from :class:`HalnavError`. Errors carry their
data as attributes and build their message from it; no message ever contains a
token, password or refresh token.

::

    HalnavError
    ├── DocumentError              the bytes are not a HAL document we can use (also ValueError)
    ├── LinkNotFoundError          no link for a rel / selector (also LookupError)
    ├── ActionNotFoundError        no action of that name (also LookupError)
    ├── MissingVariablesError      a templated link lacks variables (also ValueError)
    ├── UnsafeLinkError            a link we refuse to send (scheme, unexpanded template)
    ├── LimitExceededError         a configured limit (size, depth, count) was hit
    ├── StateError                 the Navigator is closed / used wrongly (also RuntimeError)
    └── TransportError             the HTTP exchange failed
        ├── ConnectError           no connection, or it dropped before a response
        ├── RequestTimeoutError    connect / read / total timeout (also TimeoutError)
        ├── HTTPStatusError        a 4xx / 5xx answer
        │   └── AuthenticationError   401 after refreshing, or the token grant failed
        ├── TLSError               certificate verification failed
        └── RetryBudgetExceededError  retries were needed but the budget was spent

Warnings: :class:`DeprecatedLinkWarning` (a traversed link carries
``deprecation``), :class:`DeprecatedResourceWarning` (a response carried ``Deprecation`` or
``Sunset``), :class:`InsecureTLSWarning` (certificate checks switched off),
:class:`TemplateWarning` (an href looks templated but is not marked so).

Layer edges wrap the library errors below them (aiohttp -> ``TransportError``,
cattrs / json -> ``DocumentError``) with ``raise ... from exc``.
"""

from __future__ import annotations

import difflib
import http
import re
from collections.abc import Iterable

__all__ = [
    "ActionNotFoundError",
    "AuthenticationError",
    "ConnectError",
    "DeprecatedLinkWarning",
    "DeprecatedResourceWarning",
    "DocumentError",
    "FormError",
    "HTTPStatusError",
    "HalnavError",
    "InsecureTLSWarning",
    "LimitExceededError",
    "LinkNotFoundError",
    "MissingVariablesError",
    "RequestTimeoutError",
    "RetryBudgetExceededError",
    "StateError",
    "TLSError",
    "TemplateWarning",
    "TransportError",
    "UnsafeLinkError",
    "printable",
]


def _names(items: Iterable[str]) -> str:
    listed = sorted(set(items))
    return ", ".join(listed) if listed else "(none)"


_SELECTOR_SHAPE = re.compile(r"^[^\[\]]+\[(?:\*|-?\d+|[^:\]]+:[^\]]*)\]$")


def _did_you_mean(wanted: str, available: Iterable[str]) -> str:
    """``; did you mean 'mailboxes'?`` when one name is close to ``wanted`` (any case)."""
    by_lower = {name.lower(): name for name in available}
    close = difflib.get_close_matches(wanted.lower(), list(by_lower), n=1, cutoff=0.75)
    if not close or by_lower[close[0]] == wanted:
        return ""
    return f"; did you mean {by_lower[close[0]]!r}?"


def printable(value: object) -> str:
    """``value`` as text with every non-printable character escaped (``\\x1b``,
    ``\\u202e``): control characters, C1 controls, bidirectional overrides. What a server
    sends cannot set a terminal's title, write its clipboard (OSC 52), move its cursor or
    reorder a line when halnav shows it to a person.

    >>> printable("ok\\x1b]0;pwned\\x07")
    'ok\\\\x1b]0;pwned\\\\x07'
    """
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escaped(c) for c in text)


def _escaped(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


class HalnavError(Exception):
    """Root of every error halnav raises. Its message shows what a server sent with
    control characters escaped (:func:`printable`); the attributes keep it as it came."""

    def __str__(self) -> str:
        return printable(super().__str__())


class DocumentError(HalnavError, ValueError):
    """A response body is not a HAL document halnav can use.

    ``path`` says where in the JSON it failed, e.g. ``$._links.self.href``.
    """

    def __init__(self, url: str, path: str, reason: str) -> None:
        self.url = url
        self.path = path
        self.reason = reason
        super().__init__(f"bad HAL document at {url}: {path}: {reason}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.url, self.path, self.reason))


class LinkNotFoundError(HalnavError, LookupError):
    """No link matches the rel or selector; names the rels that were there."""

    def __init__(self, url: str, rel: str, available: Iterable[str]) -> None:
        self.url = url
        self.rel = rel
        self.available = tuple(sorted(set(available)))
        hint = _did_you_mean(rel, self.available)
        if ("[" in rel or "]" in rel) and not _SELECTOR_SHAPE.match(rel):
            hint = "; a selector is rel, rel[N] or rel[key:value]"
        super().__init__(f"no link {rel!r} on {url}; available: {_names(self.available)}{hint}")

    def __str__(self) -> str:  # LookupError/KeyError would repr() the message otherwise
        return printable(self.args[0])

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.url, self.rel, self.available))


class ActionNotFoundError(HalnavError, LookupError):
    """No action of that name; names the actions that were there."""

    def __init__(self, url: str, name: str, available: Iterable[str]) -> None:
        self.url = url
        self.name = name
        self.available = tuple(sorted(set(available)))
        hint = _did_you_mean(name, self.available)
        super().__init__(f"no action {name!r} on {url}; available: {_names(self.available)}{hint}")

    def __str__(self) -> str:
        return printable(self.args[0])

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.url, self.name, self.available))


class FormError(HalnavError, ValueError):
    """A body does not fill a HAL-FORMS template as it says: ``problems`` name each
    property (a required one missing, a read-only one changed, a value its ``regex``
    refuses). Nothing was sent."""

    def __init__(self, url: str, name: str, problems: Iterable[str]) -> None:
        self.url = url
        self.name = name
        self.problems = tuple(problems)
        super().__init__(f"the form {name!r} of {url} was not sent: {'; '.join(self.problems)}")

    def __str__(self) -> str:
        return printable(self.args[0])

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.url, self.name, self.problems))


class MissingVariablesError(HalnavError, ValueError):
    """A templated link was expanded with the wrong variables.

    ``missing`` are required variables not given, ``unknown`` given ones the
    template does not take, ``wanted`` every variable it takes.
    """

    def __init__(
        self,
        href: str,
        missing: Iterable[str],
        wanted: Iterable[str],
        *,
        unknown: Iterable[str] = (),
    ) -> None:
        self.href = href
        self.missing = tuple(sorted(set(missing)))
        self.wanted = tuple(sorted(set(wanted)))
        self.unknown = tuple(sorted(set(unknown)))
        problems = []
        if self.missing:
            problems.append(f"needs {_names(self.missing)}")
        if self.unknown:
            problems.append(f"does not take {_names(self.unknown)}")
        super().__init__(
            f"template {href} {' and '.join(problems)}; it takes: {_names(self.wanted)}"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.href, self.missing, self.wanted), {"unknown": self.unknown})


class UnsafeLinkError(HalnavError, ValueError):
    """halnav refuses to send this URL (a scheme other than http/https, an unexpanded template)."""

    def __init__(self, href: str, reason: str) -> None:
        self.href = href
        self.reason = reason
        super().__init__(f"refusing to request {href}: {reason}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.href, self.reason))


class LimitExceededError(HalnavError):
    """A configured limit was hit: ``what`` exceeded ``limit`` at ``url``."""

    def __init__(self, url: str, what: str, limit: int | float) -> None:
        self.url = url
        self.what = what
        self.limit = limit
        super().__init__(f"{what} exceeds the limit of {limit} at {url}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.url, self.what, self.limit))


class StateError(HalnavError, RuntimeError):
    """An object was used in a state that does not allow it (e.g. a closed Navigator)."""


class TransportError(HalnavError):
    """The HTTP exchange with ``url`` failed."""

    def __init__(self, method: str, url: str, reason: str) -> None:
        self.method = method
        self.url = url
        self.reason = reason
        super().__init__(f"{method} {url}: {reason}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.method, self.url, self.reason))


class ConnectError(TransportError):
    """No connection could be made, or it dropped before a complete response."""


class RequestTimeoutError(TransportError, TimeoutError):
    """A connect, read or total timeout expired."""


class TLSError(TransportError):
    """The server's certificate could not be verified."""


class RetryBudgetExceededError(TransportError):
    """The request failed and the retry budget did not allow another try."""


class HTTPStatusError(TransportError):
    """The server answered with a 4xx or 5xx status.

    ``detail`` is the server's own explanation when it gave one (Veeam
    ``{"message"}``, problem+json ``detail``/``title``, OAuth
    ``error_description``), else a short excerpt of the body (none for an HTML page:
    then the message names the status's reason phrase, ``HTTP 404 Not Found``).
    """

    def __init__(self, method: str, url: str, status: int, detail: str = "") -> None:
        self.status = status
        self.detail = detail
        if detail:
            reason = f"HTTP {status}: {detail}"
        else:
            try:
                reason = f"HTTP {status} {http.HTTPStatus(status).phrase}"
            except ValueError:  # a status with no registered phrase
                reason = f"HTTP {status}"
        super().__init__(method, url, reason)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.method, self.url, self.status, self.detail))


class AuthenticationError(HTTPStatusError):
    """Credentials were refused: a 401 that survived a refresh, or a failed token grant."""


class DeprecatedLinkWarning(UserWarning):
    """A traversed link carries a ``deprecation`` URL (HAL draft section 5.4)."""


class DeprecatedResourceWarning(UserWarning):
    """A response carried ``Deprecation`` or ``Sunset`` headers: the resource is going away."""


class InsecureTLSWarning(UserWarning):
    """TLS certificate verification was switched off explicitly."""


class TemplateWarning(UserWarning):
    """An href contains ``{...}`` but is not marked ``templated: true``; it is used as is."""
