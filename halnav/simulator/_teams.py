"""Teams (``Vet`` sessions): teams, channels, tabs, posts and files; and their actions.

Paths follow the specs, lowercase (``organization/teams/{teamId}/posts?channelId=...``).
A team's posts and files are listed below the team and filtered by ``channelId``; a file is
``teams/{t}/files/{f}`` up to v7 and ``teams/{t}/channels/{c}/files/{f}`` on v8. As for
OneDrive and SharePoint, v6+ resources carry no ``_actions``; v5 advertises them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from aiohttp import web

from ._content import _content_actions, _File, _node, _Scope
from ._context import _ApiError, _Ctx, _json_response, _page
from ._data import TABS, Node, quote_id
from ._hrefs import _Query
from ._router import _ALL, _V8, _route
from ._state import _Session

_TEAMS: Final = "restoresessions/{session}/organization/teams"
_TEAM: Final = f"{_TEAMS}/{{team}}"
_CHANNEL: Final = f"{_TEAM}/channels/{{channel}}"
_UP_TO_V7: Final = _ALL - _V8
_Leaf = tuple[int, int]
"""A post, file or tab: channel, index."""


class _Team:
    """One team of a session: its paths, lookups and documents."""

    def __init__(self, ctx: _Ctx, session: _Session, team: int) -> None:
        self.ctx = ctx
        self.session = session
        self.org = session.org
        self.team = team
        self.path = ctx.paths(session).team(self.org, team)

    def node(self, kind: Node, *indices: int) -> str:
        return self.ctx.data.node_id(kind, self.org, self.team, *indices)

    def actions(self, path: str, *names: str) -> dict[str, object]:
        if not self.ctx.version.wrapped_actions:
            return {}
        return {"_actions": self.ctx.actions(path, *names)}

    def channel_path(self, channel: int) -> str:
        return self.ctx.paths(self.session).channel(self.org, self.team, channel)

    def post_path(self, channel: int, index: int) -> str:
        return f"{self.path}/posts/{self.ctx.data.post_id(channel, index)}"

    def file_path(self, channel: int, index: int) -> str:
        base = self.channel_path(channel) if self.ctx.version.channel_files else self.path
        return f"{base}/files/{self.node(Node.FILE, channel, index)}"

    def tab_path(self, channel: int, index: int) -> str:
        return f"{self.channel_path(channel)}/tabs/{self.node(Node.TAB, channel, index)}"

    def in_channel(self, channel: int) -> _Query:
        return (("channelId", self.node(Node.CHANNEL, channel)),)

    # -- documents ------------------------------------------------------------------------------
    def team_doc(self) -> dict[str, object]:
        return {
            "id": self.node(Node.TEAM),
            **self.ctx.data.team_fields(self.org, self.team),
            "_links": {
                "self": self.ctx.link(self.path),
                "channels": self.ctx.link(f"{self.path}/channels"),
            },
            **self.actions(self.path, "restore"),
        }

    def channel_doc(self, channel: int, *, preview: bool) -> dict[str, object]:
        path = self.channel_path(channel)
        link = self.ctx.link
        doc: dict[str, object] = {
            "id": self.node(Node.CHANNEL, channel),
            **self.ctx.data.channel_fields(self.org, self.team, channel),
        }
        if preview:
            doc["type"] = "Standard"
        doc["_links"] = {
            "self": link(path),
            "team": link(self.path),
            "posts": link(f"{self.path}/posts", self.in_channel(channel)),
            "files": link(f"{self.path}/files", self.in_channel(channel)),
            "tabs": link(f"{path}/tabs"),
        }
        doc.update(self.actions(path, "restore"))
        return doc

    def leaf_links(self, path: str, channel: int) -> dict[str, object]:
        return {
            "self": self.ctx.link(path),
            "team": self.ctx.link(self.path),
            "channel": self.ctx.link(self.channel_path(channel)),
        }

    def post_doc(self, channel: int, index: int) -> dict[str, object]:
        path = self.post_path(channel, index)
        return {
            **self.ctx.data.post_fields(self.org, self.team, channel, index),
            "_links": self.leaf_links(path, channel),
            **self.actions(path, "save", "export"),
        }

    def file_doc(self, channel: int, index: int) -> dict[str, object]:
        path = self.file_path(channel, index)
        return {
            "id": self.node(Node.FILE, channel, index),
            **self.ctx.data.file_fields(self.org, self.team, channel, index),
            "_links": self.leaf_links(path, channel),
            **self.actions(path, "save", "restore"),
        }

    def tab_doc(self, channel: int, index: int) -> dict[str, object]:
        path = self.tab_path(channel, index)
        return {
            "id": self.node(Node.TAB, channel, index),
            **self.ctx.data.tab_fields(self.org, self.team, channel, index),
            "_links": self.leaf_links(path, channel),
            **self.actions(path, "restore"),
        }

    # -- scopes -----------------------------------------------------------------------------
    def leaves(self, count: int, channel: int | None = None) -> list[_Leaf]:
        channels = range(self.ctx.config.channels) if channel is None else (channel,)
        return [(c, i) for c in channels for i in range(count)]

    def scope(self, path: str, name: str, channel: int | None = None) -> _Scope:
        """A team's or a channel's posts, files and tabs (a restore restores them all)."""
        config = self.ctx.config
        posts = self.leaves(config.items, channel)
        files = self.leaves(config.documents, channel)
        tabs = self.leaves(len(TABS), channel)

        def documents() -> Iterator[dict[str, object]]:
            for leaf in posts:
                yield self.post_doc(*leaf)
            for leaf in files:
                yield self.file_doc(*leaf)

        return _Scope(
            path=path,
            name=name,
            files=lambda: self.files(files),
            documents=documents,
            others=len(posts) + len(tabs),
            statistics="team",
        )

    def files(self, leaves: list[_Leaf]) -> list[_File]:
        found = []
        for channel, index in leaves:
            fields = self.ctx.data.file_fields(self.org, self.team, channel, index)
            size = fields["sizeBytes"]
            assert isinstance(size, int)
            label = f"file:{self.node(Node.FILE, channel, index)}"
            found.append(_File(label, str(fields["name"]), size))
        return found

    # -- lookups -----------------------------------------------------------------------------
    def find(self, kind: Node, text: str, *bounds: int) -> tuple[int, ...]:
        """The indices below this team of the entity ``text`` (404 if it is another's)."""
        found = _node(self.ctx, kind, self.org, text, self.team + 1, *bounds, within=self.team)
        return found[1:]

    def channel(self, text: str) -> int:
        return self.find(Node.CHANNEL, text, self.ctx.config.channels)[0]

    def channel_filter(self) -> int | None:
        text = self.ctx.query.get("channelid")
        return None if text in (None, "") else self.channel(text)

    def post(self, text: str) -> _Leaf:
        found = self.ctx.data.find_post(text)
        if found is None:
            raise _ApiError(404, f"Post with ID '{text}' not found.")
        return found

    def file(self, text: str) -> _Leaf:
        channel, index = self.find(
            Node.FILE, text, self.ctx.config.channels, self.ctx.config.documents
        )
        if self.ctx.version.channel_files and channel != self.channel(self.ctx.params["channel"]):
            raise _ApiError(404, f"File with ID '{text}' not found.")
        return channel, index

    def tab(self, text: str, channel: int) -> _Leaf:
        found_channel, index = self.find(Node.TAB, text, self.ctx.config.channels, len(TABS))
        if found_channel != channel:
            raise _ApiError(404, f"Tab with ID '{text}' not found.")
        return channel, index


def _team(ctx: _Ctx) -> _Team:
    session = ctx.session("Vet")
    (team,) = _node(ctx, Node.TEAM, session.org, ctx.params["team"], ctx.config.teams)
    return _Team(ctx, session, team)


def _named(ctx: _Ctx, names: list[str]) -> list[int]:
    """The indices whose display name holds the ``displayName`` filter (all without one)."""
    wanted = ctx.query.get("displayname", "").lower()
    return [i for i, name in enumerate(names) if wanted in name.lower()]


@_route("GET", _TEAMS)
async def _teams(ctx: _Ctx) -> web.StreamResponse:
    session = ctx.session("Vet")
    data = ctx.data
    names = [str(data.team_fields(session.org, t)["displayName"]) for t in range(ctx.config.teams)]
    found = _named(ctx, names)
    wanted = ctx.query.get("displayname")
    filters: _Query = () if wanted is None else (("displayName", wanted),)
    return _page(
        ctx,
        ctx.paths(session).teams,
        filters,
        len(found),
        lambda i: _Team(ctx, session, found[i]).team_doc(),
    )


@_route("GET", _TEAM)
async def _team_get(ctx: _Ctx) -> web.StreamResponse:
    return _json_response(_team(ctx).team_doc())


@_route("GET", f"{_TEAM}/channels")
async def _channels(ctx: _Ctx) -> web.StreamResponse:
    team = _team(ctx)
    count = ctx.config.channels
    return _page(
        ctx, f"{team.path}/channels", (), count, lambda c: team.channel_doc(c, preview=True)
    )


@_route("GET", _CHANNEL)
async def _channel_get(ctx: _Ctx) -> web.StreamResponse:
    team = _team(ctx)
    return _json_response(team.channel_doc(team.channel(ctx.params["channel"]), preview=False))


@_route("GET", f"{_CHANNEL}/tabs")
async def _tabs(ctx: _Ctx) -> web.StreamResponse:
    team = _team(ctx)
    channel = team.channel(ctx.params["channel"])
    path = f"{team.channel_path(channel)}/tabs"
    return _page(ctx, path, (), len(TABS), lambda i: team.tab_doc(channel, i))


@_route("GET", f"{_CHANNEL}/tabs/{{tab}}")
async def _tab_get(ctx: _Ctx) -> web.StreamResponse:
    team = _team(ctx)
    channel = team.channel(ctx.params["channel"])
    return _json_response(team.tab_doc(*team.tab(ctx.params["tab"], channel)))


def _leaf_page(ctx: _Ctx, team: _Team, kind: str, count: int) -> web.Response:
    channel = team.channel_filter()
    leaves = team.leaves(count, channel)
    filters = () if channel is None else team.in_channel(channel)
    render = team.post_doc if kind == "posts" else team.file_doc
    return _page(ctx, f"{team.path}/{kind}", filters, len(leaves), lambda i: render(*leaves[i]))


@_route("GET", f"{_TEAM}/posts")
async def _posts(ctx: _Ctx) -> web.StreamResponse:
    return _leaf_page(ctx, _team(ctx), "posts", ctx.config.items)


@_route("GET", f"{_TEAM}/posts/{{post}}")
async def _post_get(ctx: _Ctx) -> web.StreamResponse:
    team = _team(ctx)
    return _json_response(team.post_doc(*team.post(ctx.params["post"])))


@_route("GET", f"{_TEAM}/files")
async def _files(ctx: _Ctx) -> web.StreamResponse:
    return _leaf_page(ctx, _team(ctx), "files", ctx.config.documents)


@_route("GET", f"{_TEAM}/files/{{file}}", versions=_UP_TO_V7)
async def _file_get(ctx: _Ctx) -> web.StreamResponse:
    team = _team(ctx)
    return _json_response(team.file_doc(*team.file(ctx.params["file"])))


@_route("GET", f"{_CHANNEL}/files/{{file}}", versions=_V8)
async def _channel_file_get(ctx: _Ctx) -> web.StreamResponse:
    team = _team(ctx)
    return _json_response(team.file_doc(*team.file(ctx.params["file"])))


# -- actions ----------------------------------------------------------------------------------


@_content_actions(_TEAM, ("restore",), ("restore", "search"))
def _team_scope(ctx: _Ctx) -> tuple[_Session, _Scope]:
    team = _team(ctx)
    name = str(ctx.data.team_fields(team.org, team.team)["displayName"])
    return team.session, team.scope(team.path, name)


@_content_actions(_CHANNEL, ("restore",), ("restore", "search"))
def _channel_scope(ctx: _Ctx) -> tuple[_Session, _Scope]:
    team = _team(ctx)
    channel = team.channel(ctx.params["channel"])
    name = str(ctx.data.channel_fields(team.org, team.team, channel)["displayName"])
    return team.session, team.scope(team.channel_path(channel), name, channel)


@_content_actions(f"{_CHANNEL}/tabs/{{tab}}", ("restore",), ("restore",))
def _tab_scope(ctx: _Ctx) -> tuple[_Session, _Scope]:
    team = _team(ctx)
    channel, index = team.tab(ctx.params["tab"], team.channel(ctx.params["channel"]))
    path = team.tab_path(channel, index)
    return team.session, _Scope(path=path, name="tab", files=list, others=1, statistics="team")


@_content_actions(f"{_TEAM}/posts/{{post}}", ("save", "export"), ("export", "save", "send"))
def _post_scope(ctx: _Ctx) -> tuple[_Session, _Scope]:
    team = _team(ctx)
    channel, index = team.post(ctx.params["post"])
    post_id = ctx.data.post_id(channel, index)
    size = 1024 + post_id % 4096
    post = _File(f"post:{quote_id(str(post_id))}", f"{post_id}.html", size)
    path = team.post_path(channel, index)
    return team.session, _Scope(path=path, name="post", files=lambda: [post], single=True)


def _file_scope(ctx: _Ctx) -> tuple[_Session, _Scope]:
    team = _team(ctx)
    channel, index = team.file(ctx.params["file"])
    path = team.file_path(channel, index)
    files = team.files([(channel, index)])
    return team.session, _Scope(path=path, name="file", files=lambda: files, single=True)


_content_actions(f"{_TEAM}/files/{{file}}", ("save", "restore"), ("restore", "save", "send"),
                 versions=_UP_TO_V7)(_file_scope)  # fmt: skip
_content_actions(f"{_CHANNEL}/files/{{file}}", (), ("restore", "save", "send"), versions=_V8)(
    _file_scope
)
