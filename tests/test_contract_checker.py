"""The OpenAPI contract checker (tests/contract.py) against Veeam's real specs, both ways.

Every answer here is hand-built in the shape the spec defines (or breaks it on purpose), so a
checker that accepted everything, or nothing, would fail these tests.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import payload, web
from aiohttp.test_utils import TestServer
from contract import (
    ContractError,
    ContractRecorder,
    find_operation,
    load_spec,
    recording_middleware,
    requires_specs,
    route_in_spec,
    validate_response,
)

pytestmark = requires_specs

JSON = "application/json; charset=utf-8"
SESSION = "5e0bbad4-7e7e-4e8e-9b2f-0c1a2b3c4d5e"
ORG = "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
MAILBOX = "6f1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"


def body(document: object) -> bytes:
    return json.dumps(document).encode()


def organization(version: str) -> dict[str, Any]:
    """A RestOrganizationComposed as an admin's ``GET /vN/Organizations`` lists it."""
    return {
        "id": ORG,
        "name": "contoso.onmicrosoft.com",
        "officeName": "contoso",
        "type": "Office365",
        "region": "Worldwide",
        "isExchangeOnline": True,
        "isSharePointOnline": True,
        "isTeamsOnline": None,
        "description": None,
        "isBackedup": True,
        "firstBackuptime": "2019-06-11T12:02:40.3398778Z",
        "lastBackuptime": None,
        "_links": {"self": {"href": f"/{version}/Organizations/{ORG}"}},
    }


def backup_organization(**changes: object) -> dict[str, Any]:
    """A v6 RESTBackupOrganization, the restore session's ``/organization``."""
    document: dict[str, Any] = {
        "id": ORG,
        "name": "contoso.onmicrosoft.com",
        "type": "Office365",
        "_links": {
            "self": {"href": f"/v6/RestoreSessions/{SESSION}/organization"},
            "mailboxes": {"href": f"/v6/RestoreSessions/{SESSION}/organization/mailboxes"},
        },
    }
    document.update(changes)
    return document


def problems_of(excinfo: pytest.ExceptionInfo[ContractError]) -> list[str]:
    return [str(p) for v in excinfo.value.violations for p in v.problems]


# ---------------------------------------------------------------------------------------------
# Loading and routing


def test_load_spec_is_cached_and_knows_its_versions() -> None:
    """Each spec is parsed once; unknown versions are refused by name."""
    assert load_spec("v7") is load_spec("v7")
    assert load_spec("v8")["openapi"] == "3.0.1"
    with pytest.raises(ValueError, match="v5"):
        load_spec("v5")


def test_find_operation_fills_the_template() -> None:
    """A concrete path finds its template, whatever the query, case or trailing slash."""
    expected = "/v7/RestoreSessions/{restoreSessionId}/organization/mailboxes/{mailboxId}/folders"
    for path in (
        f"/v7/RestoreSessions/{SESSION}/organization/mailboxes/{MAILBOX}/folders",
        f"/v7/restoresessions/{SESSION}/Organization/Mailboxes/{MAILBOX}/Folders/",
        f"/v7/RestoreSessions/{SESSION}/organization/mailboxes/{MAILBOX}/folders?offset=0&limit=30",
        f"https://vbo:4443/v7/RestoreSessions/{SESSION}/organization/mailboxes/{MAILBOX}/folders",
    ):
        op = find_operation("v7", "get", path)
        assert op is not None, path
        assert (op.template, op.method) == (expected, "get")
        assert op.operation["operationId"]
    assert find_operation("v7", "DELETE", f"/v7/RestoreSessions/{SESSION}/organization") is None


def test_find_operation_decodes_each_segment_after_splitting() -> None:
    """``%3D`` in a base64 item id decodes, and an encoded ``/`` stays inside its segment."""
    item = "AAMkAGI2TG93AAA%3D"
    path = f"/v6/RestoreSessions/{SESSION}/organization/mailboxes/{MAILBOX}/items/{item}"
    op = find_operation("v6", "GET", path)
    assert op is not None
    assert op.template.endswith("/items/{itemId}")
    op = find_operation("v6", "GET", "/v6/RestoreSessions/a%2Fb/organization")
    assert op is not None
    assert op.template == "/v6/RestoreSessions/{restoreSessionId}/organization"


def test_a_literal_segment_beats_a_parameter() -> None:
    """``/Organizations/SyncState`` is its own operation, not an organization called SyncState."""
    op = find_operation("v8", "GET", "/v8/organizations/syncstate")
    assert op is not None
    assert op.template == "/v8/Organizations/SyncState"
    op = find_operation("v8", "GET", f"/v8/Organizations/{ORG}")
    assert op is not None
    assert op.template == "/v8/Organizations/{organizationId}"

    items = f"/v7/RestoreSessions/{SESSION}/organization/mailboxes/{MAILBOX}/items"
    op = find_operation("v7", "POST", f"{items}/restore")
    assert op is not None
    assert op.template.endswith("/items/restore")
    # Only GET exists at items/{itemId}: a GET of "restore" is an item, as ASP.NET routes it.
    op = find_operation("v7", "GET", f"{items}/restore")
    assert op is not None
    assert op.template.endswith("/items/{itemId}")


def test_route_in_spec_compares_shapes() -> None:
    """Placeholders face parameters, literals face literals (any case), and the method counts."""
    assert route_in_spec("v6", "POST", "v6/organizations/{org}/explore")
    assert route_in_spec("v6", "post", "/v6/Organizations/{organization}/Explore/")
    assert not route_in_spec("v6", "POST", "v6/organizations/{org}/action")
    assert not route_in_spec("v6", "GET", "v6/organizations/{org}/explore")
    items = "v7/restoresessions/{session}/organization/mailboxes/{mailbox}/items"
    assert route_in_spec("v7", "GET", items)
    assert route_in_spec("v7", "POST", f"{items}/restore")
    assert route_in_spec("v7", "GET", f"{items}/{{item}}")
    assert not route_in_spec("v7", "POST", f"{items}/{{item}}")
    assert not route_in_spec("v7", "GET", f"{items}/restore")


# ---------------------------------------------------------------------------------------------
# Bodies against schemas


def test_v7_organizations_is_a_bare_array() -> None:
    """v7 lists organizations as a JSON array; a page envelope there breaks the contract."""
    validate_response("v7", "GET", "/v7/Organizations", 200, JSON, body([organization("v7")]))
    page = {"offset": 0, "limit": 30, "results": [organization("v7")]}
    with pytest.raises(ContractError) as excinfo:
        validate_response("v7", "GET", "/v7/Organizations", 200, JSON, body(page))
    message = str(excinfo.value)
    assert "GET /v7/Organizations -> 200" in message
    assert "$: " in message
    assert "is not of type 'array'" in message


def test_v8_organizations_is_a_page() -> None:
    """v8 answers PageOfRestOrganizationComposed; a bare array there breaks the contract."""
    page = {
        "offset": 0,
        "limit": 30,
        "setId": SESSION,
        "results": [organization("v8")],
        "_links": {"self": {"href": "/v8/Organizations?offset=0&limit=30"}},
    }
    validate_response("v8", "GET", "/v8/Organizations?limit=30", 200, JSON, body(page))
    with pytest.raises(ContractError, match="is not of type 'object'"):
        validate_response("v8", "GET", "/v8/Organizations", 200, JSON, body([organization("v8")]))
    del page["results"]
    with pytest.raises(ContractError, match="'results' is a required property"):
        validate_response("v8", "GET", "/v8/Organizations", 200, JSON, body(page))


def test_v6_restore_session_organization() -> None:
    """RESTBackupOrganization passes; an int ``id`` or an unknown ``type`` fails, by field."""
    path = f"/v6/RestoreSessions/{SESSION}/organization"
    validate_response("v6", "GET", path, 200, JSON, body(backup_organization()))
    with pytest.raises(ContractError) as excinfo:
        validate_response("v6", "GET", path, 200, JSON, body(backup_organization(id=42)))
    assert problems_of(excinfo) == ["$.id: 42 is not of type 'string'"]
    assert f"GET {path} -> 200" in str(excinfo.value)
    with pytest.raises(ContractError, match=r"\$\.type: 'Office 365' is not one of"):
        validate_response(
            "v6", "GET", path, 200, JSON, body(backup_organization(type="Office 365"))
        )
    bad_link = backup_organization(_links={"self": {"href": 7}})
    with pytest.raises(ContractError, match=r"\$\['_links'\]\.self\.href: 7 is not of type"):
        validate_response("v6", "GET", path, 200, JSON, body(bad_link))


def test_nullable_allows_null_and_only_there() -> None:
    """``nullable: true`` lets null through, enums included; a non-nullable field still refuses it."""
    path = f"/v6/RestoreSessions/{SESSION}/organization"
    # RestOrganizationType is a nullable enum that does not list null itself.
    validate_response("v6", "GET", path, 200, JSON, body(backup_organization(type=None)))
    with pytest.raises(ContractError, match=r"\$\.name: None"):
        validate_response("v6", "GET", path, 200, JSON, body(backup_organization(name=None)))
    failure = {"message": "Proxy is offline.", "errorCode": None, "stackTrace": None}
    validate_response("v8", "GET", "/v8/Organizations", 500, JSON, body(failure))


def test_formats_are_checked_with_the_real_shapes() -> None:
    """Json.NET's 7-digit UTC date-times and GUIDs pass; offset-less times and non-GUIDs fail."""
    orgs = [organization("v7") | {"lastBackuptime": "2017-06-29T07:42:21.191694+02:00"}]
    validate_response("v7", "GET", "/v7/Organizations", 200, JSON, body(orgs))
    orgs = [organization("v7") | {"firstBackuptime": "2017-04-04T12:01:49"}]
    with pytest.raises(ContractError, match=r"\$\[0\]\.firstBackuptime: .* is not a 'date-time'"):
        validate_response("v7", "GET", "/v7/Organizations", 200, JSON, body(orgs))
    path = f"/v6/RestoreSessions/{SESSION}/organization"
    with pytest.raises(ContractError, match=r"\$\.id: 'contoso' is not a 'uuid'"):
        validate_response("v6", "GET", path, 200, JSON, body(backup_organization(id="contoso")))


def test_read_only_fields_pass_and_write_only_fields_do_not() -> None:
    """Answers may carry ``readOnly`` fields (``_links``, ``id``), not ``writeOnly`` ones."""
    validate_response("v7", "GET", "/v7/Organizations", 200, JSON, body([organization("v7")]))
    orgs = [organization("v7") | {"newApplicationName": "halnav"}]
    with pytest.raises(ContractError, match=r"\$\[0\]\.newApplicationName: .*write-only"):
        validate_response("v7", "GET", "/v7/Organizations", 200, JSON, body(orgs))


def test_a_body_that_is_not_json_fails() -> None:
    """A declared JSON body that does not parse is reported as such."""
    half = body([organization("v7")])[:40]
    with pytest.raises(ContractError, match="body is not JSON"):
        validate_response("v7", "GET", "/v7/Organizations", 200, JSON, half)


def test_token_answers_match_star_star_and_are_still_validated() -> None:
    """``*/*`` admits any media type, and a JSON body under it meets OAuthTokenResponse."""
    token = {
        "access_token": "eyJhbGciOiJIUzI1NiJ9.e30.sig",
        "refresh_token": "r",
        "token_type": "bearer",
        "expires_in": 3600,
        "userName": "tech\\administrator",
        ".issued": "2020-09-28T13:58:53.1234567Z",
        ".expires": "2020-09-28T14:58:53.1234567Z",
    }
    validate_response("v7", "POST", "/v7/token", 200, JSON, body(token))
    # OWIN's RFC 1123 dates are not the spec's date-time.
    owin = token | {".issued": "Mon, 28 Sep 2020 13:58:53 GMT"}
    with pytest.raises(ContractError, match=r"\$\['\.issued'\]: .* is not a 'date-time'"):
        validate_response("v7", "POST", "/v7/token", 200, JSON, body(owin))


# ---------------------------------------------------------------------------------------------
# Statuses, media types, empty bodies


def test_stop_status_differs_between_v7_and_v8() -> None:
    """v8 stops with 204 and no body; v6/v7 with 200; each fails the other's status."""
    validate_response("v8", "POST", f"/v8/RestoreSessions/{SESSION}/Stop", 204, None, b"")
    validate_response("v8", "POST", f"/v8/restoresessions/{SESSION}/stop", 204, None, None)
    with pytest.raises(ContractError, match="status 200 not declared: 204, default"):
        validate_response("v8", "POST", f"/v8/RestoreSessions/{SESSION}/Stop", 200, None, b"")
    validate_response("v7", "POST", f"/v7/RestoreSessions/{SESSION}/Stop", 200, None, b"")
    with pytest.raises(ContractError, match="status 204 not declared"):
        validate_response("v7", "POST", f"/v7/RestoreSessions/{SESSION}/Stop", 204, None, b"")


def test_no_declared_content_means_an_empty_body() -> None:
    """A response the spec gives no content must come without a body."""
    stop = f"/v8/RestoreSessions/{SESSION}/Stop"
    with pytest.raises(ContractError, match="declares no body for 204; got 2 bytes"):
        validate_response("v8", "POST", stop, 204, "application/json", b"{}")


def test_default_covers_failures_only() -> None:
    """``default`` (RESTExceptionInfo) accepts a >= 400 error body, never an undeclared success."""
    error = body({"message": "Restore session cannot be created."})
    explore = f"/v8/Organizations/{ORG}/explore"
    validate_response("v8", "POST", explore, 404, JSON, error)
    validate_response("v6", "GET", f"/v6/RestoreSessions/{SESSION}/organization", 500, JSON, error)
    with pytest.raises(ContractError, match=r"default covers only statuses >= 400"):
        validate_response("v8", "POST", explore, 202, JSON, error)
    with pytest.raises(ContractError, match=r"\$\.message: 5 is not of type 'string'"):
        validate_response("v8", "POST", explore, 400, JSON, body({"message": 5}))
    with pytest.raises(ContractError, match="text/plain not declared for 404: application/json"):
        validate_response("v8", "POST", explore, 404, "text/plain", b"404: Not Found")


def test_unknown_operations_fail() -> None:
    """A path or method the spec does not have is a breach, whatever the status."""
    with pytest.raises(ContractError, match="no operation for GET at this path"):
        validate_response("v7", "GET", "/v7/Nothing/here", 200, JSON, b"{}")
    stop = f"/v8/RestoreSessions/{SESSION}/Stop"
    with pytest.raises(
        ContractError, match=r"no operation for GET at this path \(the spec has POST there\)"
    ):
        validate_response("v8", "GET", stop, 200, JSON, b"{}")


def test_pst_export_is_an_octet_stream() -> None:
    """exportToPst answers application/octet-stream; its bytes are not looked into."""
    export = f"/v7/RestoreSessions/{SESSION}/organization/mailboxes/{MAILBOX}/exportToPst"
    validate_response("v7", "POST", export, 200, "application/octet-stream", b"!BDN\x00\x01")
    validate_response("v7", "POST", export, 200, "application/octet-stream", None)
    with pytest.raises(ContractError, match="application/json not declared for 200"):
        validate_response("v7", "POST", export, 200, JSON, body({"sessionId": SESSION}))
    with pytest.raises(ContractError, match="no Content-Type not declared"):
        validate_response("v7", "POST", export, 200, None, None)


# ---------------------------------------------------------------------------------------------
# The recorder and the middleware


def test_recorder_reports_every_breach_grouped() -> None:
    """``check`` lists all breaches at once, same kinds counted together, 20 groups at most."""
    recorder = ContractRecorder()
    recorder.record("v7", "GET", "/v7/Organizations", 200, JSON, body([organization("v7")]))
    assert recorder.check() == 1
    for n in range(25):
        path = f"/v6/RestoreSessions/{SESSION}/organization?n={n}"
        recorder.record("v6", "GET", path, 200, JSON, body(backup_organization(id=n)))
    for n in range(24):
        recorder.record("v7", "GET", f"/v7/Unknown{n}", 200, JSON, b"{}")
    with pytest.raises(ContractError) as excinfo:
        recorder.check()
    error = excinfo.value
    assert len(error.violations) == 49
    assert error.checked == 50
    message = str(error)
    assert message.startswith("49 of 50 answers break the Veeam spec, 25 kinds of breach")
    assert "(the first 20 shown)" in message
    assert "[25x] GET /v6/RestoreSessions/" in message
    assert "$.id: 0 is not of type 'string'" in message
    assert message.count("\n- ") == 20


def test_recorder_validates_repeated_answers_once_but_counts_them_all() -> None:
    """The same bad answer recorded three times is reported three times."""
    recorder = ContractRecorder()
    for _ in range(3):
        recorder.record("v7", "GET", "/v7/Organizations", 200, JSON, b"{}")
    with pytest.raises(ContractError, match=r"\[3x\] GET /v7/Organizations -> 200"):
        recorder.check()
    recorder.clear()
    assert len(recorder) == 0
    assert recorder.check() == 0


async def test_middleware_records_what_handlers_answer(
    serve: Callable[..., Awaitable[TestServer]],
) -> None:
    """Buffered, streamed, raised and 204 answers are recorded; paths without a spec are not."""
    recorder = ContractRecorder()
    export = f"/v7/RestoreSessions/{SESSION}/organization/mailboxes/{MAILBOX}/exportToPst"

    async def organizations(request: web.Request) -> web.StreamResponse:
        return web.json_response([organization("v7")])

    async def organization_page(request: web.Request) -> web.StreamResponse:
        page = {"offset": 0, "limit": 30, "results": [organization("v8")]}
        return web.Response(body=payload.JsonPayload(page))

    async def stop(request: web.Request) -> web.StreamResponse:
        return web.Response(status=204)

    async def pst(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        await response.write(b"!BDN" + bytes(1024))
        await response.write_eof()
        return response

    async def missing(request: web.Request) -> web.StreamResponse:
        raise web.HTTPNotFound

    app = web.Application()
    app.router.add_get("/v7/Organizations", organizations)
    app.router.add_get("/v8/Organizations", organization_page)
    app.router.add_post("/v8/RestoreSessions/{id}/Stop", stop)
    app.router.add_post(export, pst)
    app.router.add_get("/v7/RestoreSessions/{id}/organization", missing)
    app.router.add_get("/v5/Organizations", organizations)
    app.middlewares.append(recording_middleware(recorder))
    server = await serve(app)

    async with aiohttp.ClientSession() as client:
        for method, path in [
            ("GET", "/v7/Organizations?extendedView=true"),
            ("GET", "/v8/Organizations"),
            ("POST", f"/v8/RestoreSessions/{SESSION}/Stop"),
            ("POST", export),
            ("GET", f"/v7/RestoreSessions/{SESSION}/organization"),
            ("GET", "/v5/Organizations"),
        ]:
            async with client.request(method, server.make_url(path)) as response:
                await response.read()

    answers = recorder.answers
    assert [(a.version, a.method, a.path, a.status) for a in answers] == [
        ("v7", "GET", "/v7/Organizations?extendedView=true", 200),
        ("v8", "GET", "/v8/Organizations", 200),
        ("v8", "POST", f"/v8/RestoreSessions/{SESSION}/Stop", 204),
        ("v7", "POST", export, 200),
        ("v7", "GET", f"/v7/RestoreSessions/{SESSION}/organization", 404),
    ]
    assert json.loads(answers[1].body or b"") == {
        "offset": 0,
        "limit": 30,
        "results": [organization("v8")],
    }
    assert (answers[2].content_type, answers[2].body) == (None, b"")
    assert (answers[3].content_type, answers[3].body) == ("application/octet-stream", None)
    with pytest.raises(ContractError) as excinfo:
        recorder.check()
    # Only aiohttp's plain-text 404 breaks the spec: Veeam's errors are JSON.
    [violation] = excinfo.value.violations
    assert violation.status == 404
    assert [str(p) for p in violation.problems] == [
        "text/plain not declared for 404: application/json"
    ]
