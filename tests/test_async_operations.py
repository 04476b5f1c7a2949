"""Asynchronous operations: 201 Created, 202 Accepted with a status monitor, 204 No Content."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import halnav


class Jobs:
    """An API whose actions create things (201), start jobs (202 + a monitor), or answer
    nothing (204); a job's monitor says ``running`` twice, then 303s to its result."""

    def __init__(self, polls_until_done: int = 2) -> None:
        self.polls = 0
        self.polls_until_done = polls_until_done
        self.app = web.Application()
        self.app.router.add_get("/", self.root)
        self.app.router.add_post("/things", self.create)
        self.app.router.add_get("/things/7", self.thing)
        self.app.router.add_post("/jobs", self.start)
        self.app.router.add_get("/jobs/1", self.monitor)
        self.app.router.add_get("/jobs/1/result", self.result)
        self.app.router.add_post("/forget", self.forget)

    async def root(self, _request: web.Request) -> web.Response:
        templates = {
            name: {"method": "POST", "target": f"/{path}", "properties": []}
            for name, path in (("create", "things"), ("start", "jobs"), ("forget", "forget"))
        }
        return web.json_response({"_links": {"self": {"href": "/"}}, "_templates": templates})

    async def create(self, _request: web.Request) -> web.Response:
        return web.json_response({"id": 7}, status=201, headers={"Location": "/things/7"})

    async def thing(self, _request: web.Request) -> web.Response:
        return web.json_response({"id": 7, "name": "seven"})

    async def start(self, _request: web.Request) -> web.Response:
        headers = {"Location": "/jobs/1", "Retry-After": "0"}
        return web.json_response({"status": "queued"}, status=202, headers=headers)

    async def monitor(self, _request: web.Request) -> web.Response:
        self.polls += 1
        if self.polls <= self.polls_until_done:
            return web.json_response({"status": "running"}, headers={"Retry-After": "0"})
        raise web.HTTPSeeOther("/jobs/1/result")

    async def result(self, _request: web.Request) -> web.Response:
        return web.json_response({"answer": 42})

    async def forget(self, _request: web.Request) -> web.Response:
        return web.Response(status=204)


async def test_follow_takes_an_action_to_its_outcome() -> None:
    jobs = Jobs()
    async with TestServer(jobs.app, host="127.0.0.1") as server:
        root = str(server.make_url("/"))
        async with halnav.Navigator(root) as nav:
            doc = await nav.get(root)
            created = await nav.act(doc, "create", json={}, follow=True)
            accepted = await nav.act(doc, "start", json={})  # without follow: the 202 itself
            finished = await nav.act(doc, "start", json={}, follow=True)
            nothing = await nav.act(doc, "forget", json={}, follow=True)
    assert isinstance(created, halnav.Document)
    assert created.state == {"id": 7, "name": "seven"}  # the Location, fetched
    assert isinstance(accepted, halnav.Document)
    assert accepted.answer is not None
    assert accepted.answer.status == 202
    assert isinstance(finished, halnav.Document)
    assert finished.state == {"answer": 42}  # polled while running, then the 303's result
    assert jobs.polls == 3
    assert isinstance(nothing, halnav.Document)
    assert nothing.answer is not None
    assert nothing.answer.status == 204
    assert not nothing.state


async def test_a_job_that_never_ends_times_out_and_says_where_it_runs() -> None:
    jobs = Jobs(polls_until_done=10**6)
    async with TestServer(jobs.app, host="127.0.0.1") as server:
        root = str(server.make_url("/"))
        async with halnav.Navigator(root) as nav:
            doc = await nav.get(root)
            with pytest.raises(TimeoutError, match=r"/jobs/1 still running after 1.2 s"):
                await nav.act(doc, "start", json={}, follow=True, wait=1.2)
    assert jobs.polls == 2  # at once (Retry-After: 0), after 0.5 s; the next would be late
