"""What differs between the Veeam Backup for Microsoft 365 REST API versions, side by side.

Every version-dependent decision of the simulator reads one field of :class:`ApiVersion`;
nothing else in the simulator compares version names. The sources, per row:

========================  ==========================  =======================  =====================
aspect                    v5 (API-NOTES [C])          v6 / v7 (OpenAPI specs)     v8 (OpenAPI spec)
========================  ==========================  =======================  =====================
hrefs                     absolute, server's host     root-relative (``/v6/..``,  root-relative
                                                      some without the slash)
``GET /Organizations``    bare JSON array             bare JSON array             page envelope
explore                   ``POST .../Action``         ``POST .../explore``        ``.../explore``
                          ``{"explore": {...}}``,     bare RESTExploreOptions,    201
                          201                         200
stop                      ``POST .../Action``         ``POST .../Stop``, 200      204
                          ``{"stop": null}``, 200
action bodies             one key ``{"name": {...}}`` bare options                bare options
organization ``_actions`` exporttoPst, search         none (RESTBackupOrganiz.)   none
action endpoints          one ``.../action``          ``.../search``,             same
                                                      ``.../exportToPst``, ...
page fields               offset, limit               + setId, totalCount         + setId
top-level folders         ``parentId=null``           v6 ``null``, v7 ``root``    ``root``
items of a folder         ``folderId``                v6 ``folderId``, v7         ``parentId``
                                                      ``parentId``
antiforgery cookie        no                          v6 no, v7 yes               yes
``/token/logout``         no                          v6 no, v7 200               204
token ``.issued`` dates   RFC 1123                    ISO 8601                    ISO 8601
restores                  statistics (sync)           statistics (sync)           ``{"sessionId"}``
``send`` (files, posts)   200                         200                         204
Teams file paths          ``teams/{t}/files/{f}``     same                        under channels
========================  ==========================  =======================  =====================
"""

from __future__ import annotations

from typing import Final

import attrs

__all__ = ["API_VERSIONS", "ApiVersion", "api_version"]


@attrs.frozen
class ApiVersion:
    """One REST API version's observable differences (see the module table)."""

    name: str
    """``"v5"`` ... ``"v8"``: the first path segment."""
    absolute_links: bool
    """v5 writes ``https://host:4443/v5/...``; v6+ write ``/v6/...`` (or ``v6/...``)."""
    organizations_paged: bool
    """``GET /vN/Organizations`` answers a page envelope (v8) instead of a bare array."""
    wrapped_actions: bool
    """Actions are POSTed to one ``.../Action`` URI with ``{"<name>": options}`` (v5)."""
    explore_status: int
    stop_status: int
    page_total_count: bool
    """Pages carry ``totalCount`` (v6, v7)."""
    page_set_id: bool
    """Pages carry ``setId`` (v6+)."""
    top_folders: str
    """The ``parentId`` value naming the top level of a mailbox's folders."""
    items_folder_param: str
    """The query parameter that filters a mailbox's items by folder."""
    antiforgery: bool
    """The password grant sets an antiforgery cookie the refresh grant must bring back."""
    logout_status: int | None
    """``POST /vN/token/logout`` answers this, or ``None``: no such route."""
    async_restores: bool
    """Restores answer ``{"sessionId"}`` and run in the background (v8)."""
    iso_token_dates: bool
    """``.issued``/``.expires`` as ISO 8601 (v6+: OAuthTokenResponse date-time), not RFC 1123."""
    send_status: int = 200
    """A ``send`` action (OneDrive, SharePoint, Teams) answers this without a body (v8: 204)."""
    channel_files: bool = False
    """Teams files are ``teams/{t}/channels/{c}/files/{f}`` (v8), not ``teams/{t}/files/{f}``."""

    @property
    def number(self) -> int:
        return int(self.name[1:])

    # Action names as each version's resources advertise them (v5: API-NOTES section 4;
    # v6+: the dedicated endpoint's last segment in the spec).
    @property
    def export_action(self) -> str:
        return "exporttoPst" if self.wrapped_actions else "exportToPst"

    @property
    def save_action(self) -> str:
        return "savetoMsg" if self.wrapped_actions else "save"

    @property
    def restore_action(self) -> str:
        return "restoretoOriginallocation" if self.wrapped_actions else "restore"

    @property
    def item_actions(self) -> tuple[str, str, str]:
        """An item's ``_actions``, in the order it lists them: save, export, restore."""
        return (self.save_action, self.export_action, self.restore_action)


API_VERSIONS: Final = {
    version.name: version
    for version in (
        ApiVersion(
            name="v5",
            absolute_links=True,
            organizations_paged=False,
            wrapped_actions=True,
            explore_status=201,
            stop_status=200,
            page_total_count=False,
            page_set_id=False,
            top_folders="null",
            items_folder_param="folderId",
            antiforgery=False,
            logout_status=None,
            async_restores=False,
            iso_token_dates=False,
        ),
        ApiVersion(
            name="v6",
            absolute_links=False,
            organizations_paged=False,
            wrapped_actions=False,
            explore_status=200,
            stop_status=200,
            page_total_count=True,
            page_set_id=True,
            top_folders="null",
            items_folder_param="folderId",
            antiforgery=False,
            logout_status=None,
            async_restores=False,
            iso_token_dates=True,
        ),
        ApiVersion(
            name="v7",
            absolute_links=False,
            organizations_paged=False,
            wrapped_actions=False,
            explore_status=200,
            stop_status=200,
            page_total_count=True,
            page_set_id=True,
            top_folders="root",
            items_folder_param="parentId",
            antiforgery=True,
            logout_status=200,
            async_restores=False,
            iso_token_dates=True,
        ),
        ApiVersion(
            name="v8",
            absolute_links=False,
            organizations_paged=True,
            wrapped_actions=False,
            explore_status=201,
            stop_status=204,
            page_total_count=False,
            page_set_id=True,
            top_folders="root",
            items_folder_param="parentId",
            antiforgery=True,
            logout_status=204,
            async_restores=True,
            iso_token_dates=True,
            send_status=204,
            channel_files=True,
        ),
    )
}


def api_version(name: str) -> ApiVersion:
    """The version called ``name`` (``"v5"`` ... ``"v8"``, any case).

    Raises:
        ValueError: not a version the simulator serves.
    """
    version = API_VERSIONS.get(name.lower())
    if version is None:
        raise ValueError(f"api_version must be one of {', '.join(API_VERSIONS)}, got {name!r}")
    return version
