"""HAL-FORMS bodies (HAL-NOTES rules 16-17) against a real server on 127.0.0.1: a property's
``value`` is sent when the body leaves it out; a required one missing, a read-only one
changed or a regex refused stops the action before anything is sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from test_cli import cli

import halnav


class Forms:
    """``/order`` offers two templates: ``default`` (JSON) and ``quick`` (form-encoded)."""

    def __init__(self) -> None:
        self.received: list[Any] = []
        self.app = web.Application()
        self.app.router.add_get("/order", self.order)
        self.app.router.add_post("/orders", self.create)

    async def order(self, _request: web.Request) -> web.Response:
        properties = [
            {"name": "item", "required": True},
            {"name": "size", "value": 30},
            {"name": "tenant", "readOnly": True, "value": "acme"},
            {"name": "code", "regex": "[A-Z]{3}"},
        ]
        body = {
            "_links": {"self": {"href": "/order"}},
            "_templates": {
                "default": {"method": "POST", "target": "/orders", "properties": properties},
                "quick": {
                    "method": "POST",
                    "target": "/orders",
                    "contentType": "application/x-www-form-urlencoded",
                    "properties": [{"name": "item", "required": True}, {"name": "n", "value": "1"}],
                },
            },
        }
        return web.json_response(body, content_type="application/prs.hal-forms+json")

    async def create(self, request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            self.received.append(await request.json())
        else:
            self.received.append(dict(await request.post()))
        return web.json_response({"created": True})


@pytest.fixture
async def forms() -> AsyncIterator[tuple[Forms, str]]:
    app = Forms()
    async with TestServer(app.app, host="127.0.0.1") as server:
        yield app, str(server.make_url("/order"))


async def test_a_form_sends_the_values_the_body_leaves_out(forms: tuple[Forms, str]) -> None:
    app, url = forms
    async with halnav.Navigator(url) as nav:
        doc = await nav.get(url)
        await nav.act(doc, "default", json={"item": "pen", "code": "ABC"})
        await nav.act(doc, "quick", json={"item": "pen"})
        planned = nav.plan(doc, "default", json={"item": "ink"})
    assert app.received == [
        {"item": "pen", "code": "ABC", "size": 30, "tenant": "acme"},
        {"item": "pen", "n": "1"},
    ]
    assert planned.json == {"item": "ink", "size": 30, "tenant": "acme"}  # a dry run too


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({}, "item is required"),
        ({"item": ""}, "item is required"),
        ({"item": "pen", "tenant": "other"}, "tenant is read-only (its value is 'acme')"),
        ({"item": "pen", "code": "abcd"}, "code: the value given does not match '[A-Z]{3}'"),
    ],
)
async def test_a_body_the_form_refuses_is_not_sent(
    forms: tuple[Forms, str], body: dict[str, Any], problem: str
) -> None:
    app, url = forms
    async with halnav.Navigator(url) as nav:
        doc = await nav.get(url)
        with pytest.raises(halnav.FormError) as caught:
            await nav.act(doc, "default", json=body)
    assert caught.value.problems == (problem,)
    assert str(caught.value).startswith(f"the form 'default' of {url} was not sent: ")
    assert app.received == []


async def test_the_cli_says_what_the_form_needs(
    forms: tuple[Forms, str], capsys: pytest.CaptureFixture[str]
) -> None:
    app, url = forms
    assert await cli("act", url, "default", "--body", '{"code": "x"}', "--yes") == 1
    err = capsys.readouterr().err
    assert "item is required" in err
    assert "code: the value given does not match" in err
    assert "'x'" not in err  # the value itself is not shown: it may be a password
    assert app.received == []


async def test_an_accept_given_to_the_navigator_asks_a_spring_like_server_for_its_forms() -> None:
    """Spring HATEOAS renders ``_templates`` only for ``application/prs.hal-forms+json``
    (HAL-NOTES rule 13): an ``Accept`` given in ``headers=`` is what every GET sends."""
    seen: list[str] = []

    async def order(request: web.Request) -> web.Response:
        accept = request.headers.get("Accept", "")
        seen.append(accept)
        body: dict[str, Any] = {"_links": {"self": {"href": "/order"}}}
        if "application/prs.hal-forms+json" in accept:
            body["_templates"] = {"default": {"method": "PUT", "properties": [{"name": "n"}]}}
            return web.json_response(body, content_type="application/prs.hal-forms+json")
        return web.json_response(body, content_type="application/hal+json")

    app = web.Application()
    app.router.add_get("/order", order)
    forms = "application/prs.hal-forms+json, application/hal+json;q=0.9"
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url("/order"))
        async with halnav.Navigator(url) as plain:
            assert (await plain.get(url)).action_names == ()
        async with halnav.Navigator(url, headers={"Accept": forms}) as nav:
            assert (await nav.get(url)).action_names == ("default",)
    assert seen[1] == forms
    assert "prs.hal-forms" not in seen[0]
