"""Where the simulator's resources live and how their hrefs are written.

:class:`_Paths` names the paths of one restore session's subtree, cased as the seed page and
the specs write them; ``_href_base`` and ``_make_href`` turn a path into an href the way the
served version writes it (v5 absolute, v6+ root-relative), and ``_page_query`` adds a page's
``offset``/``limit``. Also home of ``_ENCODER``, the one compact JSON encoder every answer
(and every cached, JSON-escaped href) is written with. A leaf: only ``_data`` and
``_versions`` below it.
"""

from __future__ import annotations

import functools
import json
from typing import Final

import attrs

from ._data import (
    Data,
    DocRef,
    FolderRef,
    ItemRef,
    Node,
    OneDriveFolderRef,
    SimulatorConfig,
    quote_id,
)
from ._versions import ApiVersion, api_version

# json.dumps(..., ensure_ascii=False, separators=(",", ":")) without a new encoder per call.
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_CACHED_PATHS: Final = 4096


@attrs.define
class _Paths:
    """Paths of one restore session's subtree, cased as the seed page and the specs write them."""

    data: Data
    session_id: str
    version: ApiVersion

    @property
    def session(self) -> str:
        return f"/{self.version.name}/RestoreSessions/{self.session_id}"

    @property
    def seed(self) -> str:
        return f"{self.session}/organization"

    @property
    def mailboxes(self) -> str:
        return f"{self.seed}/mailboxes"

    def mailbox(self, org: int, mailbox: int) -> str:
        return f"{self.mailboxes}/{self.data.mailbox_id(org, mailbox)}"

    def folders(self, org: int, mailbox: int) -> str:
        return f"{self.mailbox(org, mailbox)}/folders"

    def folder(self, folder: FolderRef) -> str:
        return f"{self.folders(folder.org, folder.mailbox)}/{quote_id(self.data.folder_id(folder))}"

    def items(self, org: int, mailbox: int) -> str:
        return f"{self.mailbox(org, mailbox)}/items"

    def item(self, item: ItemRef) -> str:
        folder = item.folder
        return f"{self.items(folder.org, folder.mailbox)}/{quote_id(self.data.item_id(item))}"

    @property
    def onedrives(self) -> str:
        return f"{self.seed}/OneDrives"

    def onedrive(self, org: int, onedrive: int) -> str:
        return f"{self.onedrives}/{self.data.onedrive_id(org, onedrive)}"

    def od_folders(self, org: int, onedrive: int) -> str:
        return f"{self.onedrive(org, onedrive)}/Folders"

    def od_folder(self, folder: OneDriveFolderRef) -> str:
        base = self.od_folders(folder.org, folder.onedrive)
        return f"{base}/{self.data.od_folder_id(folder)}"

    def documents(self, org: int, onedrive: int) -> str:
        return f"{self.onedrive(org, onedrive)}/Documents"

    def document(self, doc: DocRef) -> str:
        return f"{self.documents(doc.org, doc.onedrive)}/{self.data.document_id(doc)}"

    @property
    def sites(self) -> str:
        return f"{self.seed}/Sites"

    def site(self, org: int, site: int) -> str:
        return f"{self.sites}/{self.data.node_id(Node.SITE, org, site)}"

    @property
    def teams(self) -> str:
        return f"{self.seed}/teams"

    def team(self, org: int, team: int) -> str:
        return f"{self.teams}/{self.data.node_id(Node.TEAM, org, team)}"

    def channel(self, org: int, team: int, channel: int) -> str:
        channel_id = quote_id(self.data.node_id(Node.CHANNEL, org, team, channel))
        return f"{self.team(org, team)}/channels/{channel_id}"


_Query = tuple[tuple[str, str], ...]


def _href_base(config: SimulatorConfig, origin: str) -> str:
    """What every non-``bare`` href starts with: ``""`` (root-relative) or an origin.

    v5 writes absolute hrefs naming the server's configured host (``public_base_url``, else
    the request's); v6+ write root-relative ones, as does v5 with ``root_relative_links``.
    """
    if config.root_relative_links or not api_version(config.api_version).absolute_links:
        return ""
    return config.public_base_url.rstrip("/") if config.public_base_url else origin


def _make_href(base: str, path: str, query: _Query = (), *, bare: bool = False) -> str:
    """``base`` + path; with a root-relative ``base`` (``""``), ``bare`` drops the slash."""
    text = path + _query_text(query) if query else path
    if not base:
        return text[1:] if bare else text
    return base + text


@functools.lru_cache(maxsize=_CACHED_PATHS)
def _query_text(query: _Query) -> str:
    """``?key=value&...`` with values percent-encoded (pages repeat the same few)."""
    return "?" + "&".join(f"{key}={quote_id(value)}" for key, value in query)


def _page_query(filters: _Query, offset: int, limit: int) -> _Query:
    return (*filters, ("offset", str(offset)), ("limit", str(limit)))


def _page_offsets(total: int, limit: int) -> range:
    """Offsets of the pages a client walks from offset 0 by ``next`` links."""
    return range(0, max(total, 1), limit)
