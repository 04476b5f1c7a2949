"""Check answers against Veeam's OpenAPI specs: test support for the simulator's contract tests.

The simulator must follow the real API, not the client (STYLE.md), and the nearest thing to a
real server we have is Veeam's own OpenAPI 3.0.1 documents for v6, v7 and v8. This module
answers three questions from them:

- which spec operation a concrete request hits (``find_operation``), with ASP.NET's routing
  rules: literals match case-insensitively and a literal beats a ``{parameter}``;
- whether a simulator route exists in the spec at all (``route_in_spec``);
- whether an answer (status, media type, body) is one the spec allows (``validate_response``),
  with JSON bodies checked by ``openapi-schema-validator`` against the whole document, so every
  ``$ref`` into ``#/components/schemas`` resolves.

``ContractRecorder`` collects many answers and checks them at once; ``recording_middleware``
fills one from inside an ``aiohttp.web`` application (the simulator's ``make_app``).

The specs live outside the repository, in ``shared/veeam/`` beside it (CI copies ``shared/``
next to its clone). ``requires_specs`` skips a test when they are not there.

Example::

    recorder = ContractRecorder()
    app = make_app(config)
    app.middlewares.append(recording_middleware(recorder))
    ...  # drive the app
    recorder.check()  # raises ContractError naming every breach

Decisions worth knowing:

- Formats are checked (``uuid``, ``date-time`` as RFC 3339, ``int32``/``int64`` ranges,
  ``byte``): Veeam's ``2019-06-11T12:02:40.3398778Z`` passes, a date-time without an offset
  (Json.NET's "unspecified kind", ``2017-04-04T12:01:49``) does not.
- ``nullable: true`` follows OpenAPI 3.0.1, the version these specs declare: it "allows sending
  a null value for the defined schema", so ``null`` passes a nullable ``enum`` (the specs never
  list ``null`` among enum values) and a nullable ``allOf: [$ref]`` wrapper. The stricter
  3.0.3 reading would reject the ``"errorCode": null`` a .NET server writes.
- Answers are validated as *read* (``OAS30ReadValidator``): ``readOnly`` properties are allowed
  and still required when listed, ``writeOnly`` ones (e.g. ``newApplicationName``) are not
  allowed unless ``null``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, NamedTuple
from urllib.parse import unquote, urlsplit

import attrs
import pytest
from aiohttp import hdrs, payload, web
from aiohttp.typedefs import Handler, Middleware
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import extend
from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

__all__ = [
    "SPEC_DIR",
    "VERSIONS",
    "ContractError",
    "ContractRecorder",
    "Problem",
    "RecordedAnswer",
    "SpecOperation",
    "Violation",
    "find_operation",
    "load_spec",
    "recording_middleware",
    "requires_specs",
    "route_in_spec",
    "validate_response",
]

SPEC_DIR: Final = Path(__file__).resolve().parents[2] / "shared" / "veeam"
"""``shared/veeam/`` in the repository's parent folder, where CI puts a copy of ``shared/``."""

VERSIONS: Final = ("v6", "v7", "v8")
"""The API versions that have a spec (no v5 spec exists anywhere public)."""

_MISSING_REASON: Final = (
    f"Veeam's OpenAPI specs are not at {SPEC_DIR} "
    "(the folder that holds the repository should also hold shared/veeam/)"
)

requires_specs: Final = pytest.mark.skipif(not SPEC_DIR.is_dir(), reason=_MISSING_REASON)
"""Mark a test (or a module, as ``pytestmark``) that needs the spec files."""

#: How many schema violations one answer's message shows, and how many groups a recorder's.
_SHOWN_PROBLEMS: Final = 5
_SHOWN_GROUPS: Final = 20
#: Long instance reprs in jsonschema messages ("{...whole page...} is not of type 'array'").
_MESSAGE_LIMIT: Final = 200


# ---------------------------------------------------------------------------------------------
# Loading and routing


def load_spec(version: str) -> dict[str, Any]:
    """The parsed spec of ``version`` (``"v6"``, ``"v7"`` or ``"v8"``), loaded once per process.

    The dict is shared by every caller: read it, never change it.

    Example::

        load_spec("v7")["paths"]["/v7/Organizations"]["get"]

    Raises:
        ValueError: ``version`` has no spec.
        FileNotFoundError: the spec files are not in ``SPEC_DIR`` (see ``requires_specs``).
    """
    return _load_spec(_version(version))


@functools.cache
def _load_spec(version: str) -> dict[str, Any]:
    path = SPEC_DIR / f"vb365_rest_{version}.openapi.json"
    if not path.is_file():
        raise FileNotFoundError(f"{_MISSING_REASON}; looked for {path.name}")
    with path.open("rb") as file:
        spec: dict[str, Any] = json.load(file)
    return spec


def _version(version: str) -> str:
    name = version.lower()
    if name not in VERSIONS:
        raise ValueError(f"no spec for API version {version!r}; known: {', '.join(VERSIONS)}")
    return name


@attrs.frozen
class SpecOperation:
    """One operation of a spec: the path template it sits under and its Operation Object."""

    version: str
    template: str
    """The spec's path key, e.g. ``/v7/RestoreSessions/{restoreSessionId}/organization``."""
    method: str
    """Lower case, as the spec's keys are: ``"get"``, ``"post"``..."""
    operation: Mapping[str, Any] = attrs.field(repr=False)
    """The Operation Object (``responses``, ``operationId``, ...), straight from the spec."""

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.template}"


@attrs.frozen
class _Template:
    path: str
    segments: tuple[str | None, ...]
    """Case-folded literals, and ``None`` for each ``{parameter}``."""
    item: Mapping[str, Any] = attrs.field(repr=False)

    @property
    def rank(self) -> tuple[int, ...]:
        """Smaller is more specific: a literal (0) beats a parameter (1) at the first difference."""
        return tuple(0 if segment is not None else 1 for segment in self.segments)


_PARAMETER = re.compile(r"\{[^{}]*\}")


def _shape(segment: str) -> str | None:
    return None if _PARAMETER.fullmatch(segment) else segment.casefold()


@functools.cache
def _templates(version: str) -> Mapping[int, tuple[_Template, ...]]:
    """The spec's path templates by segment count, so a lookup scans only the same-length ones."""
    by_length: dict[int, list[_Template]] = {}
    for path, item in load_spec(version)["paths"].items():
        segments = tuple(_shape(segment) for segment in path.strip("/").split("/"))
        by_length.setdefault(len(segments), []).append(_Template(path, segments, item))
    return {length: tuple(group) for length, group in by_length.items()}


def _request_segments(path: str) -> list[str]:
    """Split a request path (or URL) the way a server routes it: no query, one decode per segment.

    Decoding after splitting keeps an encoded ``%2F`` inside its segment.
    """
    if "://" in path:
        path = urlsplit(path).path
    path = path.split("?", 1)[0].split("#", 1)[0]
    return [unquote(segment) for segment in path.strip("/").split("/")]


def _matching_templates(version: str, path: str) -> list[_Template]:
    segments = _request_segments(path)
    return [
        template
        for template in _templates(version).get(len(segments), ())
        if all(
            segment != "" if shape is None else segment.casefold() == shape
            for shape, segment in zip(template.segments, segments, strict=True)
        )
    ]


def find_operation(version: str, method: str, path: str) -> SpecOperation | None:
    """The spec operation that answers ``method path``, or ``None`` if the spec has none.

    ``path`` is a concrete request path (a full URL works too): the query is ignored, each
    segment is percent-decoded, a trailing slash does not count, and literal segments match
    case-insensitively. Among templates that fit, a literal segment wins over a parameter at
    the same position, so ``POST .../items/restore`` finds the ``restore`` operation and not
    ``.../items/{itemId}``.

    Example::

        op = find_operation("v7", "GET", "/v7/RestoreSessions/abc/organization/mailboxes")
        assert op.template == "/v7/RestoreSessions/{restoreSessionId}/organization/mailboxes"

    Raises:
        ValueError: ``version`` has no spec.
    """
    version = _version(version)
    key = method.lower()
    candidates = [t for t in _matching_templates(version, path) if key in t.item]
    if not candidates:
        return None
    best = min(candidates, key=lambda template: template.rank)
    return SpecOperation(version, best.path, key, best.item[key])


def route_in_spec(version: str, method: str, pattern: str) -> bool:
    """Whether a simulator route pattern has an operation of that method in the spec.

    ``pattern`` is written in segments with placeholders, e.g.
    ``"v7/restoresessions/{session}/organization/mailboxes/{mailbox}/items"``. Only shapes are
    compared: a placeholder must face a spec parameter (whatever either is called) and a
    literal must face the same literal, ignoring case.

    Example::

        assert route_in_spec("v6", "POST", "v6/organizations/{org}/explore")

    Raises:
        ValueError: ``version`` has no spec.
    """
    version = _version(version)
    key = method.lower()
    shape = tuple(_shape(segment) for segment in pattern.strip("/").split("/"))
    return any(
        template.segments == shape and key in template.item
        for template in _templates(version).get(len(shape), ())
    )


# ---------------------------------------------------------------------------------------------
# Schema validation


def _nullable_allows_null(keyword: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a keyword check so ``null`` passes every schema object that says ``nullable: true``."""

    def check(
        validator: Validator, value: Any, instance: Any, schema: Mapping[str, Any]
    ) -> Iterator[ValidationError] | None:
        if instance is None and schema.get("nullable") is True:
            return None
        result: Iterator[ValidationError] | None = keyword(validator, value, instance, schema)
        return result

    return check


#: OAS30ReadValidator with the OpenAPI 3.0.1 reading of ``nullable`` (see the module docstring).
_ResponseValidator: type[Validator] = extend(  # type: ignore[no-untyped-call]  # untyped in the stubs
    OAS30ReadValidator,
    validators={
        name: _nullable_allows_null(keyword)
        for name, keyword in OAS30ReadValidator.VALIDATORS.items()
    },
)


def _spec_uri(version: str) -> str:
    return f"urn:veeam:vb365:{version}"


@functools.cache
def _registry(version: str) -> Registry[Any]:
    """The whole spec as one resource, so ``#/components/...`` refs resolve inside it."""
    resource: Resource[Any] = DRAFT4.create_resource(load_spec(version))
    return Registry().with_resources([(_spec_uri(version), resource)])


@functools.cache
def _validator(version: str, pointer: str) -> Validator:
    """A validator for the schema at ``pointer`` in the spec, built once and reused.

    The root schema is a ``$ref`` into the registered document, so relative refs in the
    target resolve against the spec rather than against an anonymous inline schema.
    """
    return _ResponseValidator(
        {"$ref": f"{_spec_uri(version)}#{pointer}"},
        registry=_registry(version),
        format_checker=oas30_format_checker,
    )


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _schema_pointer(operation: SpecOperation, status_key: str, media_key: str) -> str:
    schema = operation.operation["responses"][status_key]["content"][media_key]["schema"]
    ref = schema.get("$ref") if len(schema) == 1 else None
    if isinstance(ref, str) and ref.startswith("#/"):
        # Shared by many operations: one validator per component schema.
        return ref[1:]
    tokens = ("paths", operation.template, operation.method, "responses", status_key)
    return "/" + "/".join(map(_escape, (*tokens, "content", media_key, "schema")))


# ---------------------------------------------------------------------------------------------
# Breaches and their reports


@attrs.frozen
class Problem:
    """One thing wrong with one answer."""

    rule: str
    """What was broken: ``operation``, ``status``, ``media type``, ``body``, ``json``, or the
    schema keyword (``type``, ``required``, ``format``, ``enum``...)."""
    where: str
    """The JSON path in the body (``$.results[0].id``), or ``""`` for the answer as a whole."""
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}" if self.where else self.what

    @property
    def kind(self) -> tuple[str, str]:
        """The problem without its array indices, so item 3 and item 7 count as the same kind."""
        return self.rule, re.sub(r"\[\d+\]", "[*]", self.where)


@attrs.frozen
class Violation:
    """An answer the spec does not allow, with every problem found in it."""

    version: str
    method: str
    path: str
    status: int
    content_type: str | None
    template: str | None
    """The spec template the request matched, if any."""
    problems: tuple[Problem, ...]

    @property
    def headline(self) -> str:
        where = f" (spec: {self.method.upper()} {self.template})" if self.template else ""
        media = f" {self.content_type}" if self.content_type else ""
        return f"{self.method.upper()} {self.path} -> {self.status}{media}{where}"

    def describe(self, *, shown: int = _SHOWN_PROBLEMS) -> str:
        lines = [f"{self.headline} breaks the {self.version} spec:"]
        lines += [f"  {problem}" for problem in self.problems[:shown]]
        if len(self.problems) > shown:
            lines.append(f"  ... {len(self.problems) - shown} more problems")
        return "\n".join(lines)


class ContractError(AssertionError):
    """Answers that break Veeam's spec; ``violations`` holds each one with its problems.

    An ``AssertionError``, so pytest reports it as a failed check rather than a crash.
    """

    def __init__(self, violations: Sequence[Violation], *, checked: int | None = None) -> None:
        self.violations = tuple(violations)
        self.checked = checked
        super().__init__(_report(self.violations, checked))


def _report(violations: Sequence[Violation], checked: int | None) -> str:
    if len(violations) == 1 and checked is None:
        return violations[0].describe()
    groups: dict[tuple[object, ...], list[Violation]] = {}
    for violation in violations:
        key = (
            violation.version,
            violation.method.upper(),
            violation.template or violation.path,
            violation.status,
            tuple(problem.kind for problem in violation.problems[:_SHOWN_PROBLEMS]),
        )
        groups.setdefault(key, []).append(violation)
    of = f" of {checked}" if checked is not None else ""
    lines = [
        f"{len(violations)}{of} answers break the Veeam spec, {len(groups)} kinds of breach"
        + (f" (the first {_SHOWN_GROUPS} shown)" if len(groups) > _SHOWN_GROUPS else "")
        + ":"
    ]
    for members in list(groups.values())[:_SHOWN_GROUPS]:
        first = members[0]
        times = f"[{len(members)}x] " if len(members) > 1 else ""
        lines.append(f"- {times}{first.describe(shown=3)}")
    return "\n".join(lines)


def _short(text: str) -> str:
    """Elide the middle: a message starts with the value and ends with the rule it broke."""
    if len(text) <= _MESSAGE_LIMIT:
        return text
    half = (_MESSAGE_LIMIT - 5) // 2
    return f"{text[:half]} ... {text[-half:]}"


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _declared_media(media: str, declared: Collection[str]) -> str | None:
    """The ``content`` key that covers ``media``: exact first, then ``type/*``, then ``*/*``."""
    by_lower = {key.lower(): key for key in declared}
    for candidate in (media, media.split("/", 1)[0] + "/*", "*/*"):
        if candidate in by_lower:
            return by_lower[candidate]
    return None


def _is_json(media: str) -> bool:
    return media in {"application/json", "text/json"} or media.endswith("+json")


def _declared_status(responses: Mapping[str, Any], status: int) -> str | None:
    """The ``responses`` key for ``status``; ``default`` only answers failures.

    Every ``default`` in these specs is the ``RESTExceptionInfo`` failure shape, so letting it
    cover a 2xx would accept any success status the spec never mentions.
    """
    for key in (str(status), f"{status // 100}XX"):
        if key in responses:
            return key
    if status >= 400 and "default" in responses:
        return "default"
    return None


def _problems(
    version: str,
    method: str,
    path: str,
    status: int,
    content_type: str | None,
    body: bytes | None,
) -> tuple[SpecOperation | None, list[Problem]]:
    operation = find_operation(version, method, path)
    if operation is None:
        others = sorted(
            {m.upper() for t in _matching_templates(version, path) for m in t.item}
            & {"GET", "POST", "PUT", "DELETE", "PATCH"}
        )
        hint = f" (the spec has {', '.join(others)} there)" if others else ""
        what = f"no operation for {method.upper()} at this path{hint}"
        return None, [Problem("operation", "", what)]
    responses: Mapping[str, Any] = operation.operation["responses"]
    status_key = _declared_status(responses, status)
    if status_key is None:
        declared = ", ".join(responses)
        note = " (default covers only statuses >= 400)" if "default" in responses else ""
        return operation, [Problem("status", "", f"status {status} not declared: {declared}{note}")]
    content: Mapping[str, Any] = responses[status_key].get("content") or {}
    if not content:
        if body:
            return operation, [
                Problem(
                    "body", "", f"the spec declares no body for {status}; got {len(body)} bytes"
                )
            ]
        return operation, []
    media = _media_type(content_type)
    media_key = _declared_media(media, content)
    if media_key is None:
        got = media or "no Content-Type"
        return operation, [
            Problem("media type", "", f"{got} not declared for {status}: {', '.join(content)}")
        ]
    if body is None or not _is_json(media) or "schema" not in content[media_key]:
        # A streamed body was not captured; octet-stream (a PST, a ZIP) has no schema to check.
        return operation, []
    try:
        document = json.loads(body)
    except ValueError as exc:
        return operation, [Problem("json", "", _short(f"body is not JSON: {exc}"))]
    validator = _validator(version, _schema_pointer(operation, status_key, media_key))
    return operation, [
        Problem(str(error.validator), error.json_path, _short(error.message))
        for error in validator.iter_errors(document)
    ]


def _violation(
    version: str,
    method: str,
    path: str,
    status: int,
    content_type: str | None,
    body: bytes | None,
) -> Violation | None:
    operation, problems = _problems(version, method, path, status, content_type, body)
    if not problems:
        return None
    template = operation.template if operation is not None else None
    return Violation(version, method, path, status, content_type, template, tuple(problems))


def validate_response(
    version: str,
    method: str,
    path: str,
    status: int,
    content_type: str | None,
    body: bytes | None,
) -> None:
    """Check one answer against the spec of ``version``.

    The rules: the operation must exist; ``status`` must be declared (``default`` is accepted
    only for statuses >= 400); if the spec declares content, the media type (parameters such
    as ``charset`` ignored) must be one of its keys, ``*/*`` matching anything; a JSON body is
    validated against the schema; an ``application/octet-stream`` body is not looked into; if
    the spec declares no content, the body must be empty. ``body=None`` means it was not
    captured (a streamed download): status and media type are still checked.

    Example::

        validate_response("v8", "POST", "/v8/RestoreSessions/42/Stop", 204, None, b"")

    Raises:
        ContractError: the answer breaks the spec; the message names method, path, status and
            the JSON path of the first problems.
        ValueError: ``version`` has no spec.
    """
    violation = _violation(version, method, path, status, content_type, body)
    if violation is not None:
        raise ContractError([violation])


# ---------------------------------------------------------------------------------------------
# Recording


class RecordedAnswer(NamedTuple):
    """One request's answer, as ``validate_response`` takes it."""

    version: str
    method: str
    path: str
    status: int
    content_type: str | None
    body: bytes | None


@attrs.define
class ContractRecorder:
    """Collects answers as a test runs and checks them all at the end.

    Checking at the end keeps a single bad answer from hiding the rest: ``check`` reports
    every breach, grouped by kind.

    Example::

        recorder = ContractRecorder()
        recorder.record("v7", "GET", "/v7/Organizations", 200, "application/json", b"[]")
        recorder.check()
    """

    _answers: list[RecordedAnswer] = attrs.field(factory=list, init=False)

    @property
    def answers(self) -> tuple[RecordedAnswer, ...]:
        return tuple(self._answers)

    def __len__(self) -> int:
        return len(self._answers)

    def record(
        self,
        version: str,
        method: str,
        path: str,
        status: int,
        content_type: str | None,
        body: bytes | None,
    ) -> None:
        self._answers.append(RecordedAnswer(version, method, path, status, content_type, body))

    def clear(self) -> None:
        self._answers.clear()

    def check(self) -> int:
        """Validate every recorded answer; return how many were checked.

        Raises:
            ContractError: one or more answers break the spec (all of them are listed,
                grouped by kind, at most 20 groups shown).
        """
        # Tests fetch the same simulator pages again and again: validate each distinct answer
        # once (a 30-item page costs about 10 ms), but count and list every occurrence.
        verdicts = {answer: _violation(*answer) for answer in dict.fromkeys(self._answers)}
        violations = [v for answer in self._answers if (v := verdicts[answer]) is not None]
        if violations:
            raise ContractError(violations, checked=len(self._answers))
        return len(self._answers)


def _api_version(path: str, versions: Collection[str]) -> str | None:
    first = path.lstrip("/").split("/", 1)[0].lower()
    return first if first in versions else None


async def _captured_body(response: web.StreamResponse) -> bytes | None:
    """The body of a ``web.Response`` as bytes; ``None`` for a stream or a file payload."""
    if not isinstance(response, web.Response):
        return None
    body: object = response.body
    if body is None:
        return b""
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    if isinstance(body, str):
        return body.encode(response.charset or "utf-8")
    if isinstance(body, payload.BytesPayload):
        # In memory and re-readable (str and JSON payloads are BytesPayloads too).
        return await body.as_bytes()
    return None


def recording_middleware(
    recorder: ContractRecorder, *, versions: Collection[str] = VERSIONS
) -> Middleware:
    """An ``aiohttp.web`` middleware that records every answer under ``/v6``, ``/v7``, ``/v8``.

    Append it to ``app.middlewares`` before the app starts; being last, it is the innermost
    middleware and sees what the handlers answer, before outer middlewares (such as the
    simulator's fault injection) change it. Requests under other prefixes (``/v5`` has no
    spec) pass through unrecorded. An ``HTTPException`` raised by a handler is recorded and
    re-raised. Streamed answers (``web.StreamResponse`` that is not a ``web.Response``) are
    recorded with ``body=None``: status and media type are checked, the bytes are not.

    Example::

        app = make_app(config)
        app.middlewares.append(recording_middleware(recorder))
    """
    known = {version.lower() for version in versions}

    async def record(request: web.Request, response: web.StreamResponse) -> None:
        version = _api_version(request.path, known)
        assert version is not None
        body = await _captured_body(response)
        content_type = response.headers.get(hdrs.CONTENT_TYPE)
        if content_type is None and body:
            content_type = "application/octet-stream"  # what aiohttp sends for an untyped body
        recorder.record(
            version, request.method, request.raw_path, response.status, content_type, body
        )

    @web.middleware
    async def record_answers(request: web.Request, handler: Handler) -> web.StreamResponse:
        if _api_version(request.path, known) is None:
            return await handler(request)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            await record(request, exc)
            raise
        await record(request, response)
        return response

    return record_answers
