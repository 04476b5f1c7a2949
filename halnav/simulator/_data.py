"""Settings and the deterministic, lazily generated backup data of the simulator.

Nothing here holds the whole data set: every mailbox, folder, item, OneDrive and document is
computed on demand from its indices, and every id encodes those indices (through a keyed
Feistel permutation, so ids look random), which makes id -> entity lookups O(1) and lets a
configuration with millions of items start instantly.

Only the stdlib and attrs are imported: the simulator must not depend on halnav's engine.
"""

from __future__ import annotations

import base64
import binascii
import collections
import datetime as dt
import enum
import functools
import hashlib
import re
import struct
import uuid
from collections.abc import Iterable, Iterator
from typing import Final, NamedTuple
from urllib.parse import quote

import attrs

__all__ = [
    "LIBRARIES",
    "LISTS",
    "TABS",
    "WORKLOADS",
    "Data",
    "DocRef",
    "Faults",
    "FolderRef",
    "ItemRef",
    "Node",
    "OneDriveFolderRef",
    "SimulatorConfig",
    "en_us_time",
    "json_net_date",
    "quote_id",
]

_ItemKey = tuple[int, int, int, int, int]
"""An item as (org, mailbox, top, sub + 1 or 0 for a top-level folder, index)."""

_U16: Final = 0xFFFF
_U32: Final = 0xFFFF_FFFF


def _non_negative_rate(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    """Reject rates outside [0, 1]: a rate is a probability."""
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be within [0, 1], got {value!r}")


def _check_regex(_inst: object, _attribute: attrs.Attribute[str], value: str) -> None:
    """Fail at construction time rather than on the first request."""
    re.compile(value)


@attrs.frozen
class Faults:
    """Injected misbehaviour (NOT Veeam behaviour); everything is off by default.

    Each decision is drawn from an RNG seeded with ``SimulatorConfig.seed``, at the moment a
    request arrives, so a run is reproducible given the seed and the request order.

    Example::

        Faults(throttle_rate=0.1, retry_after=0.5, paths=r"/mailboxes")
    """

    latency: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    """Seconds added to every faultable request (an ``asyncio.sleep``)."""
    jitter: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    """Uniform extra +- seconds around ``latency`` (the total never goes below 0)."""
    error_rate: float = attrs.field(default=0.0, validator=_non_negative_rate)
    """Fraction answered 500/502/503/504 with ``{"message": ...}`` (503 has no Retry-After)."""
    throttle_rate: float = attrs.field(default=0.0, validator=_non_negative_rate)
    """Fraction answered 429 with a ``Retry-After`` header."""
    retry_after: float = attrs.field(default=1.0, validator=attrs.validators.ge(0.0))
    """Seconds sent in ``Retry-After`` (an integer string when whole, else a decimal)."""
    drop_rate: float = attrs.field(default=0.0, validator=_non_negative_rate)
    """Fraction whose connection is closed without any response."""
    malformed_rate: float = attrs.field(default=0.0, validator=_non_negative_rate)
    """Fraction of 200 JSON responses whose body is truncated (invalid JSON)."""
    slow_rate: float = attrs.field(default=0.0, validator=_non_negative_rate)
    """Fraction delayed by ``slow_seconds`` before the handler runs (client read timeouts)."""
    slow_seconds: float = attrs.field(default=30.0, validator=attrs.validators.ge(0.0))
    token_expiry_after: int | None = attrs.field(default=None)
    """Access tokens stop working after this many authenticated (faultable) requests."""
    paths: str = attrs.field(default="", validator=_check_regex)
    """Regex searched (case-insensitively) in the decoded request path; when set, only
    matching requests are faulted. The token endpoint is faulted only when this matches it."""


WORKLOADS: Final = ("vex", "veod", "vesp", "vet")
"""Restore session types: Exchange, OneDrive, SharePoint, Teams."""


def _kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    return tuple(str(kind).lower() for kind in kinds)


def _lower(text: str) -> str:
    return text.lower()


@attrs.frozen
class SimulatorConfig:
    """Everything that shapes the simulated server; same config -> byte-identical documents.

    Example::

        SimulatorConfig(seed=7, mailboxes=50, items=200, tls=True)
    """

    seed: int = 0
    organizations: int = attrs.field(default=2, validator=attrs.validators.in_(range(1, _U16)))
    mailboxes: int = attrs.field(default=3, validator=attrs.validators.in_(range(_U32)))
    """Mailboxes per organization."""
    folders: int = attrs.field(default=3, validator=attrs.validators.in_(range(_U16)))
    """Top-level folders per mailbox, and folders per OneDrive."""
    subfolders: int = attrs.field(default=0, validator=attrs.validators.in_(range(_U16)))
    """Child folders under each top-level mailbox folder (one level only)."""
    items: int = attrs.field(default=5, validator=attrs.validators.in_(range(_U32)))
    """Items per mailbox folder (top-level and child folders alike)."""
    onedrives: int = attrs.field(default=2, validator=attrs.validators.in_(range(_U32)))
    """OneDrives per organization."""
    documents: int = attrs.field(default=3, validator=attrs.validators.in_(range(_U32)))
    """Documents per OneDrive folder, and in each OneDrive's root; per SharePoint library
    folder and library root; files per Teams channel."""
    sites: int = attrs.field(default=2, validator=attrs.validators.in_(range(_U16)))
    """SharePoint sites per organization (each with two libraries and two lists; a library
    has ``folders`` folders, a list ``items`` items)."""
    teams: int = attrs.field(default=2, validator=attrs.validators.in_(range(_U16)))
    """Teams per organization."""
    channels: int = attrs.field(default=2, validator=attrs.validators.in_(range(_U16)))
    """Channels per team (each with two tabs, ``items`` posts and ``documents`` files)."""
    workloads: tuple[str, ...] = attrs.field(
        default=WORKLOADS,
        converter=_kinds,
        validator=attrs.validators.deep_iterable(attrs.validators.in_(WORKLOADS)),
    )
    """The restore session types the organizations have backups of; exploring another one
    answers 400, and the organizations' ``isExchangeOnline``, ``isSharePointOnline``
    (OneDrive or SharePoint) and ``isTeamsOnline`` say which."""
    username: str = "tech\\administrator"
    tenant_assertion: str = "simulated-entra-id-token"
    """What a tenant or restore operator presents as ``assertion`` (standing for the Entra
    ID token); ``client_id`` names the organization: its id (jwt-bearer) or
    ``userId.organizationId`` (operator, v6+)."""
    password: str = "Passw0rd!"  # noqa: S105  the simulator's fixed, documented demo credential
    token_lifetime: float = attrs.field(default=3600.0, validator=attrs.validators.gt(0.0))
    public_base_url: str | None = None
    """Origin for hrefs (e.g. ``"https://vbo.example:4443"``) instead of the request's Host."""
    root_relative_links: bool = False
    """v6-style ``/v5/...`` hrefs; the Organization's collection link even lacks the slash."""
    default_limit: int = attrs.field(default=30, validator=attrs.validators.ge(1))
    max_limit: int = attrs.field(default=10_000, validator=attrs.validators.ge(1))
    pst_bytes_per_item: int = attrs.field(default=4096, validator=attrs.validators.ge(0))
    export_build_seconds: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    """Seconds an export is built before its first byte (a real PST takes minutes)."""
    export_bytes_per_second: float | None = None
    """Throttle an export's transfer to this rate (None: as fast as the socket takes it)."""
    outlook_installed: bool = True
    """False: PST exports answer 500 like a server without 64-bit Outlook."""
    faults: Faults = Faults()
    tls: bool = False
    api_version: str = attrs.field(
        default="v5", converter=_lower, validator=attrs.validators.in_(("v5", "v6", "v7", "v8"))
    )
    """The REST API version served (``/v5/`` ... ``/v8/``); ``_versions.py`` says what differs."""
    restore_seconds: float = attrs.field(default=0.2, validator=attrs.validators.ge(0.0))
    """How long a v8 asynchronous restore runs before its session stops."""
    validators: bool = False
    """Send ``ETag`` on GET answers and answer ``If-None-Match`` with 304 (off by default:
    Veeam's specs document no validators; this is for measuring halnav's cache)."""
    max_age: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.ge(0))
    )
    """With ``validators``: ``Cache-Control: private, max-age=N`` on GET answers."""


# ---------------------------------------------------------------------------------------------
# Entity references: plain index tuples, cheap to build by the ten thousand.


class Node(enum.IntEnum):
    """The SharePoint and Teams entities, each named by its kind and a tuple of indices:
    a site ``(s,)``, a library or list ``(s, l)``, a library folder ``(s, l, f)``, a
    document ``(s, l, f + 1 or 0 for the library root, i)``, a list item ``(s, l, i)``; a
    team ``(t,)``, a channel ``(t, c)``, a tab, post or file ``(t, c, i)``. Their ids encode
    kind, organization and indices (the values are the id blocks' kind bytes)."""

    SITE = 10
    LIBRARY = 11
    LIST = 12
    SP_FOLDER = 13
    SP_DOCUMENT = 14
    SP_ITEM = 15
    TEAM = 16
    CHANNEL = 17
    TAB = 18
    POST = 19
    FILE = 20


LIBRARIES: Final = ("Documents", "Site Assets")
LISTS: Final = ("Tasks", "Announcements")
TABS: Final = (("Wiki", "Wiki"), ("Planner", "Planner"))


@attrs.frozen
class FolderRef:
    """A mailbox folder: ``sub is None`` for a top-level folder."""

    org: int
    mailbox: int
    top: int
    sub: int | None


@attrs.frozen
class ItemRef:
    """A message item inside a mailbox folder."""

    folder: FolderRef
    index: int


@attrs.frozen
class OneDriveFolderRef:
    """A (top-level) folder of a OneDrive."""

    org: int
    onedrive: int
    folder: int


@attrs.frozen
class DocRef:
    """A OneDrive document; ``folder is None`` means the OneDrive's root."""

    org: int
    onedrive: int
    folder: int | None
    index: int


# ---------------------------------------------------------------------------------------------
# Word lists: names look like a real tenant, and search queries have something to match.

_TENANT_PREFIX: Final = (
    "west", "north", "east", "south", "blue", "contoso", "fabrikam", "litware", "adatum", "tail",
)  # fmt: skip
_TENANT_SUFFIX: Final = ("support", "labs", "works", "retail", "spin", "traders", "health", "bank")
_FIRST: Final = (
    "Adele", "Alex", "Diego", "Grady", "Henrietta", "Isaiah", "Johanna", "Joni", "Lee", "Lidia",
    "Lynne", "Megan", "Miriam", "Nestor", "Patti", "Pradeep", "Irvin", "Allan", "Debra", "Enrico",
)  # fmt: skip
_LAST: Final = (
    "Vance", "Wilber", "Siciliani", "Archie", "Gonzales", "Langer", "Lanier", "Sherman", "Gu",
    "Holgate", "Valdes", "Bowen", "Graham", "Wilke", "Fernandez", "Gupta", "Sayers", "Deyoung",
)  # fmt: skip
_TOP_FOLDERS: Final = (
    "Inbox", "Sent Items", "Drafts", "Deleted Items", "Junk Email", "Archive", "Outbox",
    "Conversation History", "RSS Feeds", "Sync Issues",
)  # fmt: skip
_SUB_FOLDERS: Final = (
    "Projects", "Receipts", "Newsletters", "Travel", "Team", "Customers", "Invoices", "Reports",
)  # fmt: skip
_SUBJECT_A: Final = (
    "Quarterly", "Weekly", "Budget", "Project", "Invoice", "Meeting", "Travel", "Contract",
    "Release", "Security", "Customer", "Hiring",
)  # fmt: skip
_SUBJECT_B: Final = (
    "report", "review", "update", "notes", "approval", "reminder", "plan", "summary", "request",
    "agenda",
)  # fmt: skip
_OD_FOLDERS: Final = ("Documents", "Projects", "Shared", "Photos", "Archive", "Finance", "Drafts")
_DOC_EXT: Final = (".docx", ".xlsx", ".pptx", ".pdf", ".txt")
_SITES: Final = ("Marketing", "Human Resources", "Engineering", "Sales", "Legal", "Finance")
_TEAMS: Final = ("Mark 8 Project", "Retail", "Digital Initiative", "Sales and Marketing")
_CHANNELS: Final = ("General", "Research", "Go to Market", "Design", "Operations")
_CHANNEL_ID: Final = re.compile(r"19:([0-9a-f]{32})@thread\.tacv2", re.IGNORECASE)
_POST_BASE: Final = 1_000_000_000_000
_POST_STRIDE: Final = 10_000_000_000
_IMPORTANCE: Final = ("Normal",) * 17 + ("High", "High", "Low")

# 2017-06-26 15:07:39 UTC (the seed page's point in time); data times spread from there.
_EPOCH: Final = dt.datetime(2017, 6, 26, 15, 7, 39, tzinfo=dt.UTC)
_TICKS_PER_SECOND: Final = 10_000_000

# One 16-byte block per id: kind, org, a, b, c, d, pad (big-endian, no alignment).
_BLOCK: Final = struct.Struct(">BHIHHIB")
_KIND_ORG: Final = 1
_KIND_MAILBOX: Final = 2
_KIND_FOLDER: Final = 3
_KIND_ITEM: Final = 4
_KIND_ONEDRIVE: Final = 5
_KIND_ONEDRIVE_B: Final = 6
_KIND_OD_FOLDER: Final = 7
_KIND_DOCUMENT: Final = 8
_KIND_SESSION: Final = 9
_FEISTEL_ROUNDS: Final = 4  # _feistel unrolls them
_ENCRYPT_ROUNDS: Final = tuple(bytes((number,)) for number in range(_FEISTEL_ROUNDS))
_HALVES: Final = struct.Struct(">QQ")
_U64: Final = struct.Struct(">Q")
_FOLDER_ID_BYTES: Final = 46  # 46 % 3 == 1 -> base64 ends in "==", like real EWS ids
_ITEM_ID_BYTES: Final = 70
# Bounded memo sizes: enough for a client's working set (a page of items, then each item),
# small enough that memory stays flat however large the configured tree is.
_CACHE_ITEMS: Final = 8192
_CACHE_SMALL: Final = 4096
_MIN_STRFTIME_YEAR: Final = 1000
# Characters ``quote(value, safe="")`` keeps as they are, plus "=" (which it makes "%3D").
_QUOTE_PLAIN: Final = re.compile(r"[A-Za-z0-9_.~=-]*")


def json_net_date(moment: dt.datetime, ticks: int = 0) -> str:
    """Format a UTC time the way Json.NET does: 7-digit fraction, trailing zeros trimmed.

    ``ticks`` (0..9,999,999, 100 ns units) replaces the microseconds, since .NET keeps one
    more digit than Python.
    """
    if moment.tzinfo is not dt.UTC:
        moment = moment.astimezone(dt.UTC)
    if moment.year >= _MIN_STRFTIME_YEAR:
        # What strftime("%Y-%m-%dT%H:%M:%S") gives for four-digit years, without its cost.
        text = (
            f"{moment.year}-{moment.month:02d}-{moment.day:02d}"
            f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
        )
    else:
        text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{ticks:07d}".rstrip("0") if ticks else ""
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"


def quote_id(value: str) -> str:
    """Percent-encode an id for a path segment or query value (``=`` -> ``%3D``)."""
    if _QUOTE_PLAIN.fullmatch(value):
        # Base64 ids and GUIDs: the same text ``quote`` gives, an order of magnitude sooner.
        return value.replace("=", "%3D")
    return quote(value, safe="")


def en_us_time(moment: dt.datetime) -> str:
    """``M/d/yyyy h:mm:ss tt``, the en-US format of the seed's organization name."""
    hour = moment.hour % 12 or 12
    suffix = "AM" if moment.hour < 12 else "PM"
    return (
        f"{moment.month}/{moment.day}/{moment.year} "
        f"{hour}:{moment.minute:02d}:{moment.second:02d} {suffix}"
    )


class Data:
    """The lazily computed content of every organization, for one ``SimulatorConfig``.

    All methods are pure functions of the config. Per-organization values are memoised, and
    so are (in bounded LRU caches) ids, people, item fields and id lookups: a client walks a
    page of items and then each item, so recent values are asked for again and again. Memory
    stays flat however large the configured tree is.
    """

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        material = f"halnav-simulator:{config.seed}".encode()
        self._id_key = hashlib.blake2b(material, digest_size=32, person=b"ids").digest()
        self._content_key = hashlib.blake2b(material, digest_size=32, person=b"content").digest()
        # Keyed hashers to copy: the key block is absorbed once, not once per hash.
        id_hasher = hashlib.blake2b(digest_size=8, key=self._id_key)
        self._round_hashers = tuple(_absorbed(id_hasher, prefix) for prefix in _ENCRYPT_ROUNDS)
        self._content_hasher = hashlib.blake2b(digest_size=8, key=self._content_key)
        # Per-organization values are asked for by every item; at most 65,535 entries.
        self._tenants: dict[int, str] = {}
        self._last_backups: dict[int, dt.datetime] = {}
        self._last_backup_seconds: dict[int, int] = {}
        cache = functools.lru_cache
        self._org_ids = cache(maxsize=_CACHE_SMALL)(self._compute_organization_id)
        self._mailbox_ids = cache(maxsize=_CACHE_SMALL)(self._compute_mailbox_id)
        self._store_guids = cache(maxsize=_CACHE_SMALL)(self._compute_store_guid)
        self._folder_ids = cache(maxsize=_CACHE_SMALL)(self._compute_folder_id)
        self._item_fields = cache(maxsize=_CACHE_ITEMS)(self._compute_item_fields)
        self._item_fields_json = cache(maxsize=_CACHE_ITEMS)(self._compute_item_fields_json)
        self._people = cache(maxsize=_CACHE_SMALL)(self._compute_person)
        self._day_texts = cache(maxsize=_CACHE_SMALL)(self._day_text)
        self._found_mailboxes = cache(maxsize=_CACHE_SMALL)(self._find_mailbox)
        # Mailbox id -> (org, mailbox), for ids handed out recently (bounded like the caches).
        self._mailboxes_by_id: collections.OrderedDict[str, tuple[int, int]] = (
            collections.OrderedDict()
        )
        self._found_folders = cache(maxsize=_CACHE_SMALL)(self._find_folder)
        # Recent item ids both ways: (org, mailbox, top, sub + 1 or 0, index) <-> id. Bounded,
        # the oldest entries dropped first; filled by encoding and by decoding alike.
        self._item_ids: collections.OrderedDict[_ItemKey, str] = collections.OrderedDict()
        self._items_by_id: collections.OrderedDict[str, _ItemKey] = collections.OrderedDict()

    # -- hashing ------------------------------------------------------------------------------

    def _hash(self, *parts: object) -> int:
        """A 64-bit value derived from the seed and ``parts``: the source of all variety."""
        digest = self._content_hasher.copy()
        digest.update(repr(parts).encode())
        return int.from_bytes(digest.digest(), "big")

    def content_bytes(self, label: str, size: int) -> bytes:
        """Deterministic pseudo-random bytes for export streams."""
        return hashlib.shake_256(self._content_key + label.encode()).digest(size)

    def _feistel(self, block: bytes, *, decrypt: bool) -> bytes:
        """A keyed permutation of 16-byte blocks, so ids look random yet decode to indices.

        Round ``n`` maps (L, R) to (R, L ^ F(n, R)), F being a keyed blake2b of the round
        number and the 8-byte half; decrypting undoes the rounds in reverse order. Unrolled
        as in-place XORs of the two halves, from hashers that already absorbed key and number.
        """
        f0, f1, f2, f3 = self._round_hashers
        a, b = _HALVES.unpack(block)
        if decrypt:
            # (L4, R4) = (a, b) -> (L0, R0) = (a, b), undoing round 3 first.
            f0, f1, f2, f3 = f3, f2, f1, f0
            a, b = b, a
        digest = f0.copy()
        digest.update(_U64.pack(b))
        a ^= int.from_bytes(digest.digest(), "big")
        digest = f1.copy()
        digest.update(_U64.pack(a))
        b ^= int.from_bytes(digest.digest(), "big")
        digest = f2.copy()
        digest.update(_U64.pack(b))
        a ^= int.from_bytes(digest.digest(), "big")
        digest = f3.copy()
        digest.update(_U64.pack(a))
        b ^= int.from_bytes(digest.digest(), "big")
        return _HALVES.pack(b, a) if decrypt else _HALVES.pack(a, b)

    def _block(self, kind: int, org: int, *indices: int) -> bytes:
        """Encrypt kind, org and up to four more indices (missing ones are 0)."""
        a, b, c, d = (*indices, 0, 0, 0, 0)[:4]
        return self._feistel(_BLOCK.pack(kind, org, a, b, c, d, 0), decrypt=False)

    def _unblock(self, block: bytes, kind: int) -> tuple[int, int, int, int, int] | None:
        found, org, a, b, c, d, pad = _BLOCK.unpack(self._feistel(block, decrypt=True))
        if found != kind or pad != 0 or org >= self.config.organizations:
            return None
        return org, a, b, c, d

    def _guid(self, kind: int, org: int, *indices: int) -> str:
        # str(uuid.UUID(bytes=...)), without building the UUID.
        text = self._block(kind, org, *indices).hex()
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"

    def _unguid(self, text: str, kind: int) -> tuple[int, int, int, int, int] | None:
        try:
            parsed = uuid.UUID(text)
        except ValueError:
            return None
        return self._unblock(parsed.bytes, kind)

    # -- sessions -----------------------------------------------------------------------------

    def session_id(self, number: int) -> str:
        """The id of the ``number``-th restore session (deterministic per simulator run)."""
        return self._guid(_KIND_SESSION, 0, number)

    # -- organizations ------------------------------------------------------------------------

    def organization_id(self, org: int) -> str:
        return self._org_ids(org)

    def _compute_organization_id(self, org: int) -> str:
        return self._guid(_KIND_ORG, org)

    def find_organization(self, text: str) -> int | None:
        decoded = self._unguid(text, _KIND_ORG)
        return None if decoded is None else decoded[0]

    def tenant(self, org: int) -> str:
        """``westsupport.onmicrosoft.com``-style name; unique because later ones end in digits."""
        name = self._tenants.get(org)
        if name is None:
            value = self._hash("tenant", org)
            prefix = _TENANT_PREFIX[value % len(_TENANT_PREFIX)]
            suffix = _TENANT_SUFFIX[(value >> 16) % len(_TENANT_SUFFIX)]
            name = self._tenants[org] = f"{prefix}{suffix}{org or ''}.onmicrosoft.com"
        return name

    def last_backup(self, org: int) -> dt.datetime:
        """The latest restore point; an explore without ``datetime`` lands here."""
        moment = self._last_backups.get(org)
        if moment is None:
            seconds = self._hash("last-backup", org) % (3 * 365 * 86_400)
            moment = self._last_backups[org] = _EPOCH + dt.timedelta(seconds=seconds)
        return moment

    def _backup_seconds(self, org: int) -> int:
        """``last_backup`` as whole seconds since 0001-01-01 00:00 UTC."""
        seconds = self._last_backup_seconds.get(org)
        if seconds is None:
            moment = self.last_backup(org)
            seconds = moment.toordinal() * 86_400 + moment.hour * 3600 + moment.minute * 60
            seconds = self._last_backup_seconds[org] = seconds + moment.second
        return seconds

    def _stamp(self, seconds: int, ticks: int) -> str:
        """``json_net_date`` of the moment ``seconds`` after 0001-01-01 00:00 UTC."""
        day, rest = divmod(seconds, 86_400)
        hour, rest = divmod(rest, 3600)
        minute, second = divmod(rest, 60)
        text = f"{self._day_texts(day)}T{hour:02d}:{minute:02d}:{second:02d}"
        fraction = f"{ticks:07d}".rstrip("0") if ticks else ""
        return f"{text}.{fraction}Z" if fraction else f"{text}Z"

    @staticmethod
    def _day_text(ordinal: int) -> str:
        """The date part ``json_net_date`` writes for a proleptic Gregorian ordinal."""
        day = dt.date.fromordinal(ordinal)
        text = json_net_date(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC))
        return text.partition("T")[0]

    def first_backup(self, org: int) -> dt.datetime:
        return self.last_backup(org) - dt.timedelta(days=180 + self._hash("first", org) % 180)

    def organization_name(self, org: int, point_in_time: dt.datetime) -> str:
        """The seed's ``name``: ``<tenant> (M/d/yyyy h:mm:ss AM/PM)``."""
        return f"{self.tenant(org)} ({en_us_time(point_in_time)})"

    # -- people -------------------------------------------------------------------------------

    def _person(self, org: int, number: int) -> tuple[str, str]:
        """Display name and email of the ``number``-th person of an organization."""
        return self._people(org, number)

    def _compute_person(self, org: int, number: int) -> tuple[str, str]:
        value = self._hash("person", org, number)
        first = _FIRST[value % len(_FIRST)]
        last = _LAST[(value >> 16) % len(_LAST)]
        local = f"{first}.{last}".lower() + (str(number) if number else "")
        return f"{first} {last}", f"{local}@{self.tenant(org)}"

    # -- mailboxes ----------------------------------------------------------------------------

    def mailbox_id(self, org: int, mailbox: int) -> str:
        return self._mailbox_ids(org, mailbox)

    def _compute_mailbox_id(self, org: int, mailbox: int) -> str:
        text = self._guid(_KIND_MAILBOX, org, mailbox)
        known = self._mailboxes_by_id
        if len(known) >= _CACHE_SMALL:
            known.popitem(last=False)
        known[text] = (org, mailbox)
        return text

    def find_mailbox(self, org: int, text: str) -> int | None:
        known = self._mailboxes_by_id.get(text)
        if known is not None:
            # An id handed out recently (so a canonical GUID): what decoding it would give.
            found_org, mailbox = known
            return mailbox if found_org == org and mailbox < self.config.mailboxes else None
        return self._found_mailboxes(org, text)

    def _find_mailbox(self, org: int, text: str) -> int | None:
        decoded = self._unguid(text, _KIND_MAILBOX)
        if decoded is None or decoded[0] != org or decoded[1] >= self.config.mailboxes:
            return None
        return decoded[1]

    def mailbox_fields(self, org: int, mailbox: int) -> dict[str, object]:
        """``name``, ``email``, ``isArchive`` (every tenth mailbox is an online archive)."""
        name, email = self._person(org, mailbox)
        is_archive = mailbox % 10 == 9
        return {
            "name": f"Online Archive - {name}" if is_archive else name,
            "email": email,
            "isArchive": is_archive,
        }

    # -- mailbox folders ----------------------------------------------------------------------

    @property
    def folders_per_mailbox(self) -> int:
        return self.config.folders * (1 + self.config.subfolders)

    @property
    def items_per_mailbox(self) -> int:
        return self.folders_per_mailbox * self.config.items

    def folder_at(self, org: int, mailbox: int, linear: int) -> FolderRef:
        """The ``linear``-th folder of a mailbox: each top-level folder, then its children."""
        top, rest = divmod(linear, 1 + self.config.subfolders)
        return FolderRef(org, mailbox, top, None if rest == 0 else rest - 1)

    def folder_linear(self, folder: FolderRef) -> int:
        offset = 0 if folder.sub is None else folder.sub + 1
        return folder.top * (1 + self.config.subfolders) + offset

    def _store_guid(self, org: int, mailbox: int) -> bytes:
        """The mailbox-store part shared by the folder and item ids of one mailbox."""
        return self._store_guids(org, mailbox)

    def _compute_store_guid(self, org: int, mailbox: int) -> bytes:
        return self._hash("store", org, mailbox).to_bytes(8, "big") + self._hash(
            "store2", org, mailbox
        ).to_bytes(8, "big")

    def folder_id(self, folder: FolderRef) -> str:
        """EWS-style base64 (urlsafe alphabet, ``=`` padded), 46 bytes like the v5 examples."""
        sub = 0 if folder.sub is None else folder.sub + 1
        return self._folder_ids(folder.org, folder.mailbox, folder.top, sub)

    def _compute_folder_id(self, org: int, mailbox: int, top: int, sub: int) -> str:
        raw = (
            b"\x00\x00\x00\x00"
            + self._store_guid(org, mailbox)
            + b"\x01\x00"
            + self._block(_KIND_FOLDER, org, mailbox, top, sub)
            + b"\x00\x00\x00\x00\x01\x0e\x00\x00"
        )
        return base64.urlsafe_b64encode(raw).decode()

    def find_folder(self, org: int, mailbox: int, text: str) -> FolderRef | None:
        """Decode a folder id of this mailbox; ``None`` for anything else."""
        return self._found_folders(org, mailbox, text)

    def _find_folder(self, org: int, mailbox: int, text: str) -> FolderRef | None:
        raw = _unbase64(text)
        if raw is None or len(raw) != _FOLDER_ID_BYTES:
            return None
        decoded = self._unblock(raw[22:38], _KIND_FOLDER)
        if decoded is None:
            return None
        found_org, found_mailbox, top, sub, _ = decoded
        if found_org != org or found_mailbox != mailbox or found_mailbox >= self.config.mailboxes:
            return None
        if top >= self.config.folders or sub > self.config.subfolders:
            return None
        folder = FolderRef(org, mailbox, top, None if sub == 0 else sub - 1)
        # Re-encoding rejects ids whose other bytes were tampered with.
        return folder if self.folder_id(folder) == text else None

    def folder_fields(self, folder: FolderRef) -> dict[str, object]:
        names: tuple[str, ...]
        if folder.sub is None:
            names = _TOP_FOLDERS
            index = folder.top
        else:
            names = _SUB_FOLDERS
            index = folder.sub
        name = names[index] if index < len(names) else f"Folder {index + 1}"
        return {"name": name, "type": "None", "description": ""}

    # -- items --------------------------------------------------------------------------------

    def item_at(self, org: int, mailbox: int, linear: int) -> ItemRef:
        """The ``linear``-th item of a mailbox, in folder order."""
        folder_linear, index = divmod(linear, self.config.items)
        return ItemRef(self.folder_at(org, mailbox, folder_linear), index)

    def item_key_at(self, linear: int) -> tuple[int, int | None, int]:
        """``item_at`` as ``(top, sub, index)``, without building references."""
        folder_linear, index = divmod(linear, self.config.items)
        top, rest = divmod(folder_linear, 1 + self.config.subfolders)
        return top, None if rest == 0 else rest - 1, index

    def item_id(self, item: ItemRef) -> str:
        folder = item.folder
        return self.item_id_of(folder.org, folder.mailbox, folder.top, folder.sub, item.index)

    def item_id_of(self, org: int, mailbox: int, top: int, sub: int | None, index: int) -> str:
        """``item_id`` of the item these indices name."""
        key = (org, mailbox, top, 0 if sub is None else sub + 1, index)
        text = self._item_ids.get(key)
        if text is None:
            block = self._block(_KIND_ITEM, *key)
            text = base64.urlsafe_b64encode(self._item_raw(org, mailbox, block)).decode()
            self._remember_item(key, text)
        return text

    def _item_raw(self, org: int, mailbox: int, block: bytes) -> bytes:
        """The 70 bytes of an item id around its encrypted block."""
        filler = self.content_bytes(f"item-id:{block.hex()}", 32)
        return b"\x00\x00\x19\x5c" + self._store_guid(org, mailbox) + b"\x07\x00" + block + filler

    def _remember_item(self, key: _ItemKey, text: str) -> None:
        ids, items = self._item_ids, self._items_by_id
        if len(ids) >= _CACHE_ITEMS:
            items.pop(ids.popitem(last=False)[1], None)
        if len(items) >= _CACHE_ITEMS:
            ids.pop(items.popitem(last=False)[1], None)
        ids[key] = text
        items[text] = key

    def find_item(self, org: int, mailbox: int, text: str) -> ItemRef | None:
        config = self.config
        decoded = self._items_by_id.get(text)
        raw = None
        if decoded is None:
            raw = _unbase64(text)
            if raw is None or len(raw) != _ITEM_ID_BYTES:
                return None
            decoded = self._unblock(raw[22:38], _KIND_ITEM)
            if decoded is None:
                return None
        found_org, found_mailbox, top, sub, index = decoded
        if found_org != org or found_mailbox != mailbox or found_mailbox >= config.mailboxes:
            return None
        if top >= config.folders or sub > config.subfolders:
            return None
        if index >= config.items:
            return None
        if raw is not None:
            # Tampered ids fail here. The block decrypted to these indices, so it is what they
            # encrypt to: re-encoding needs no cipher, only the bytes around the block.
            if base64.urlsafe_b64encode(self._item_raw(org, mailbox, raw[22:38])) != text.encode():
                return None
            self._remember_item(decoded, text)
        return ItemRef(FolderRef(org, mailbox, top, None if sub == 0 else sub - 1), index)

    def item_fields(self, item: ItemRef) -> dict[str, object]:
        """Message fields in v5 order; absent values are omitted, never ``null``.

        The dict is shared by a cache: read it, never change it.
        """
        folder = item.folder
        return self._item_fields(folder.org, folder.mailbox, folder.top, folder.sub, item.index)

    def item_fields_of(
        self, org: int, mailbox: int, top: int, sub: int | None, index: int
    ) -> dict[str, object]:
        """``item_fields`` of the item these indices name (shared: never change it)."""
        return self._item_fields(org, mailbox, top, sub, index)

    def item_fields_json(
        self, org: int, mailbox: int, top: int, sub: int | None, index: int
    ) -> str:
        """``item_fields_of`` serialised as compact JSON (``separators=(",", ":")``)."""
        return self._item_fields_json(org, mailbox, top, sub, index)

    def _compute_item_fields(
        self, org: int, mailbox: int, top: int, sub: int | None, index: int
    ) -> dict[str, object]:
        return self._item_values(org, mailbox, top, sub, index).fields()

    def _compute_item_fields_json(
        self, org: int, mailbox: int, top: int, sub: int | None, index: int
    ) -> str:
        return self._item_values(org, mailbox, top, sub, index).json()

    def _item_values(
        self, org: int, mailbox: int, top: int, sub: int | None, index: int
    ) -> _ItemValues:
        value = self._hash("item", org, mailbox, top, sub, index)
        person = self._people
        subject = (
            f"{_SUBJECT_A[value % len(_SUBJECT_A)]} "
            f"{_SUBJECT_B[(value >> 8) % len(_SUBJECT_B)]} #{index + 1}"
        )
        # Whole seconds since 0001-01-01, as datetime arithmetic would give them.
        sent = self._backup_seconds(org) - (value >> 16) % (300 * 86_400)
        received = sent + 1 + (value >> 40) % 90
        attachment = None
        if (value >> 54) % 4 == 1:
            name = f"{subject.split(maxsplit=1)[0].lower()}.pdf"
            attachment = (name, 1024 + (value >> 4) % 900_000)
        return _ItemValues(
            subject=subject,
            sender=person(org, 1000 + value % 37)[1],
            owner=person(org, mailbox)[1],
            cc=person(org, 2000 + (value >> 28) % 11)[1] if (value >> 24) % 3 == 0 else None,
            bcc=person(org, 3000 + (value >> 36) % 5)[1] if (value >> 32) % 10 == 0 else None,
            sent=self._stamp(sent, (value >> 12) % _TICKS_PER_SECOND),
            received=self._stamp(received, (value >> 20) % _TICKS_PER_SECOND),
            importance=_IMPORTANCE[(value >> 44) % len(_IMPORTANCE)],
            reminder=(value >> 50) % 7 == 0,
            attachment=attachment,
        )

    def search_text(self, fields: dict[str, object]) -> str:
        """What free words of a search match: the visible text fields, lowercased."""
        parts = [str(fields.get(name, "")) for name in ("subject", "from", "to", "cc", "bcc")]
        attachments = fields.get("attachments")
        if isinstance(attachments, list):
            parts.extend(str(entry["name"]) for entry in attachments if isinstance(entry, dict))
        return "\n".join(parts).lower()

    def mailbox_items(self, org: int, mailbox: int) -> Iterator[ItemRef]:
        for linear in range(self.items_per_mailbox):
            yield self.item_at(org, mailbox, linear)

    def folder_items(self, folder: FolderRef) -> Iterator[ItemRef]:
        for index in range(self.config.items):
            yield ItemRef(folder, index)

    # -- OneDrive -----------------------------------------------------------------------------

    def onedrive_id(self, org: int, onedrive: int) -> str:
        """Two GUIDs concatenated, as v5 shows OneDrive ids."""
        return self._guid(_KIND_ONEDRIVE, org, onedrive) + self._guid(
            _KIND_ONEDRIVE_B, org, onedrive
        )

    def find_onedrive(self, org: int, text: str) -> int | None:
        if len(text) != 72:
            return None
        decoded = self._unguid(text[:36], _KIND_ONEDRIVE)
        if decoded is None or decoded[0] != org or decoded[1] >= self.config.onedrives:
            return None
        onedrive = decoded[1]
        return onedrive if self.onedrive_id(org, onedrive) == text.lower() else None

    def onedrive_fields(self, org: int, onedrive: int) -> dict[str, object]:
        name, email = self._person(org, 5000 + onedrive)
        site = email.replace("@", "_").replace(".", "_")
        host = self.tenant(org).split(".", 1)[0]
        return {"name": name, "url": f"https://{host}-my.sharepoint.com/personal/{site}"}

    def od_folder_id(self, folder: OneDriveFolderRef) -> str:
        return self._guid(_KIND_OD_FOLDER, folder.org, folder.onedrive, folder.folder)

    def find_od_folder(self, org: int, onedrive: int, text: str) -> OneDriveFolderRef | None:
        decoded = self._unguid(text, _KIND_OD_FOLDER)
        if decoded is None or decoded[0] != org or decoded[1] != onedrive:
            return None
        if decoded[2] >= self.config.folders:
            return None
        return OneDriveFolderRef(org, onedrive, decoded[2])

    def od_folder_fields(self, folder: OneDriveFolderRef) -> dict[str, object]:
        names = _OD_FOLDERS
        name = names[folder.folder] if folder.folder < len(names) else f"Folder {folder.folder + 1}"
        return {"name": name, **self._authorship(folder.org, "od-folder", folder.onedrive, name)}

    def document_id(self, doc: DocRef) -> str:
        folder = 0 if doc.folder is None else doc.folder + 1
        return self._guid(_KIND_DOCUMENT, doc.org, doc.onedrive, folder, 0, doc.index)

    def find_document(self, org: int, onedrive: int, text: str) -> DocRef | None:
        decoded = self._unguid(text, _KIND_DOCUMENT)
        if decoded is None or decoded[0] != org or decoded[1] != onedrive:
            return None
        _, _, folder, _, index = decoded
        if folder > self.config.folders or index >= self.config.documents:
            return None
        return DocRef(org, onedrive, None if folder == 0 else folder - 1, index)

    def document_fields(self, doc: DocRef) -> dict[str, object]:
        value = self._hash("doc", doc.org, doc.onedrive, doc.folder, doc.index)
        versions = 1 + self._hash("doc-version", doc.onedrive, doc.folder, doc.index) % 4
        stem = f"{_SUBJECT_A[value % len(_SUBJECT_A)]} {_SUBJECT_B[(value >> 8) % len(_SUBJECT_B)]}"
        name = f"{stem} {doc.index + 1}{_DOC_EXT[(value >> 16) % len(_DOC_EXT)]}"
        return {
            "name": name,
            "sizeBytes": 512 + (value >> 20) % 2_000_000,
            # The same in every organization, so each has the same number of versions.
            "version": f"{versions}.0",
            **self._authorship(doc.org, "doc", doc.onedrive, name),
        }

    def versions(self, fields: dict[str, object]) -> int:
        """How many versions a document (or file) with these fields has: its major version."""
        return int(str(fields["version"]).split(".")[0])

    # -- SharePoint and Teams -----------------------------------------------------------------

    def node_id(self, kind: Node, org: int, *indices: int) -> str:
        """The id of a SharePoint or Teams entity (a GUID; a channel's is Teams-shaped)."""
        guid = self._guid(kind, org, *indices)
        if kind is Node.CHANNEL:
            return f"19:{guid.replace('-', '')}@thread.tacv2"
        return guid

    def find_node(
        self, kind: Node, org: int, text: str, bounds: tuple[int, ...]
    ) -> tuple[int, ...] | None:
        """The indices of the ``kind`` entity with id ``text`` (each below its bound)."""
        if kind is Node.CHANNEL:
            found = _CHANNEL_ID.fullmatch(text)
            if found is None:
                return None
            text = found[1]
        decoded = self._unguid(text, kind)
        if decoded is None or decoded[0] != org:
            return None
        indices = decoded[1 : 1 + len(bounds)]
        if any(index >= bound for index, bound in zip(indices, bounds, strict=True)):
            return None
        if any(decoded[1 + len(bounds) :]):
            return None
        return indices

    def post_id(self, channel: int, index: int) -> int:
        """A post's ``postId`` (int64, unique in its team)."""
        return _POST_BASE + channel * _POST_STRIDE + index

    def find_post(self, text: str) -> tuple[int, int] | None:
        """``(channel, index)`` of a post id within the configured bounds."""
        if not text.isdigit() or int(text) < _POST_BASE:
            return None
        channel, index = divmod(int(text) - _POST_BASE, _POST_STRIDE)
        if channel >= self.config.channels or index >= self.config.items:
            return None
        return channel, index

    def site_fields(self, org: int, site: int) -> dict[str, object]:
        name = _SITES[site] if site < len(_SITES) else f"Site {site + 1}"
        host = self.tenant(org).split(".", 1)[0]
        return {"name": name, "url": f"https://{host}.sharepoint.com/sites/{name.replace(' ', '')}"}

    def container_fields(
        self, org: int, site: int, index: int, *, library: bool
    ) -> dict[str, object]:
        """A library's or a list's fields (RESTSharePointLibrary / RESTSharePointList)."""
        name = (LIBRARIES if library else LISTS)[index]
        site_url = self.site_fields(org, site)["url"]
        created = self._authorship(org, "container", site, index, library)["creationTime"]
        return {
            "name": name,
            "url": f"{site_url}/{name.replace(' ', '')}" if library else f"{site_url}/Lists/{name}",
            "description": "",
            "creationTime": created,
            "siteId": self.node_id(Node.SITE, org, site),
        }

    def sp_folder_fields(self, org: int, site: int, library: int, folder: int) -> dict[str, object]:
        name = _OD_FOLDERS[folder] if folder < len(_OD_FOLDERS) else f"Folder {folder + 1}"
        return {
            "name": name,
            **self._authorship(org, "sp-folder", site, library, folder),
            "isFolder": True,
            "siteId": self.node_id(Node.SITE, org, site),
        }

    def sp_document_fields(self, org: int, indices: tuple[int, ...]) -> dict[str, object]:
        site, library, folder, index = indices
        fields = self.document_fields(DocRef(org, 10_000 + site * 100 + library, folder, index))
        return {**fields, "isFolder": False, "siteId": self.node_id(Node.SITE, org, site)}

    def sp_item_fields(self, org: int, site: int, listing: int, index: int) -> dict[str, object]:
        value = self._hash("sp-item", org, site, listing, index)
        title = (
            f"{_SUBJECT_A[value % len(_SUBJECT_A)]} {_SUBJECT_B[(value >> 8) % len(_SUBJECT_B)]}"
        )
        return {
            "name": f"{index + 1}_.000",
            "title": title,
            "version": f"{1 + (value >> 16) % 3}.0",
            **self._authorship(org, "sp-item", site, listing, index),
            "isFolder": False,
            "siteId": self.node_id(Node.SITE, org, site),
        }

    def team_fields(self, org: int, team: int) -> dict[str, object]:
        name = _TEAMS[team] if team < len(_TEAMS) else f"Team {team + 1}"
        alias = name.replace(" ", "")
        return {
            "displayName": name,
            "description": f"The {name} team",
            "groupEmail": f"{alias}@{self.tenant(org)}",
            "alias": alias,
            "privacy": "Private" if team % 3 == 2 else "Public",
            "isArchived": False,
        }

    def channel_fields(self, org: int, team: int, channel: int) -> dict[str, object]:
        name = _CHANNELS[channel] if channel < len(_CHANNELS) else f"Channel {channel + 1}"
        return {"displayName": name, "teamId": self.node_id(Node.TEAM, org, team)}

    def post_fields(self, org: int, team: int, channel: int, index: int) -> dict[str, object]:
        value = self._hash("post", org, team, channel, index)
        created = self.last_backup(org) - dt.timedelta(seconds=value % (200 * 86_400))
        subject = (
            f"{_SUBJECT_A[value % len(_SUBJECT_A)]} {_SUBJECT_B[(value >> 8) % len(_SUBJECT_B)]}"
        )
        return {
            "postId": self.post_id(channel, index),
            "isImportant": (value >> 12) % 10 == 0,
            "author": self._person(org, 6000 + (value >> 16) % 13)[0],
            "subject": subject,
            "createdTime": json_net_date(created),
            "lastModifiedTime": json_net_date(created + dt.timedelta(minutes=(value >> 24) % 90)),
            "isDeleted": False,
            "channelId": self.node_id(Node.CHANNEL, org, team, channel),
            "teamId": self.node_id(Node.TEAM, org, team),
        }

    def file_fields(self, org: int, team: int, channel: int, index: int) -> dict[str, object]:
        doc = self.document_fields(DocRef(org, 20_000 + team * 100 + channel, None, index))
        major = self.versions(doc)
        return {
            "name": doc["name"],
            "sizeBytes": doc["sizeBytes"],
            "version": major,
            "uiVersion": f"{major}.0",
            "modified": doc["modificationTime"],
            "modifiedBy": doc["modifiedBy"],
            "channelId": self.node_id(Node.CHANNEL, org, team, channel),
            "teamId": self.node_id(Node.TEAM, org, team),
            "fileType": "File",
        }

    def tab_fields(self, org: int, team: int, channel: int, index: int) -> dict[str, object]:
        name, kind = TABS[index]
        host = self.tenant(org).split(".", 1)[0]
        return {
            "displayName": name,
            "contentUrl": f"https://{host}.sharepoint.com/tabs/{kind.lower()}/{team}-{channel}",
            "type": kind,
            "channelId": self.node_id(Node.CHANNEL, org, team, channel),
            "teamId": self.node_id(Node.TEAM, org, team),
        }

    def _authorship(self, org: int, *parts: object) -> dict[str, object]:
        value = self._hash("authorship", org, *parts)
        created = self.last_backup(org) - dt.timedelta(seconds=value % (400 * 86_400))
        modified = created + dt.timedelta(seconds=(value >> 24) % (30 * 86_400))
        return {
            "createdBy": self._person(org, 6000 + value % 13)[0],
            "creationTime": json_net_date(created, (value >> 8) % _TICKS_PER_SECOND),
            "modifiedBy": self._person(org, 6000 + (value >> 4) % 13)[0],
            "modificationTime": json_net_date(modified, (value >> 32) % _TICKS_PER_SECOND),
        }


class _ItemValues(NamedTuple):
    """One message's field values. Every string is built from the ASCII word lists above,
    digits and `` .@#-``, so it needs no JSON escaping (a test checks ``json()``)."""

    subject: str
    sender: str
    owner: str
    cc: str | None
    bcc: str | None
    sent: str
    received: str
    importance: str
    reminder: bool
    attachment: tuple[str, int] | None

    def fields(self) -> dict[str, object]:
        """Message fields in v5 order; absent values are omitted, never ``null``."""
        fields: dict[str, object] = {
            "itemClass": "IPM.Note",
            "subject": self.subject,
            "from": self.sender,
            "to": self.owner,
        }
        if self.cc is not None:
            fields["cc"] = self.cc
        if self.bcc is not None:
            fields["bcc"] = self.bcc
        fields["sent"] = self.sent
        fields["received"] = self.received
        fields["importance"] = self.importance
        fields["reminder"] = self.reminder
        if self.attachment is not None:
            name, size = self.attachment
            fields["attachments"] = [{"name": name, "sizeBytes": size}]
        return fields

    def json(self) -> str:
        """``fields()`` as compact JSON, without the encoder."""
        cc = "" if self.cc is None else f',"cc":"{self.cc}"'
        bcc = "" if self.bcc is None else f',"bcc":"{self.bcc}"'
        attachments = ""
        if self.attachment is not None:
            name, size = self.attachment
            attachments = f',"attachments":[{{"name":"{name}","sizeBytes":{size}}}]'
        return (
            f'{{"itemClass":"IPM.Note","subject":"{self.subject}","from":"{self.sender}",'
            f'"to":"{self.owner}"{cc}{bcc},"sent":"{self.sent}","received":"{self.received}",'
            f'"importance":"{self.importance}","reminder":{"true" if self.reminder else "false"}'
            f"{attachments}}}"
        )


def _absorbed(hasher: hashlib.blake2b, data: bytes) -> hashlib.blake2b:
    """A copy of ``hasher`` that has absorbed ``data``."""
    copy = hasher.copy()
    copy.update(data)
    return copy


def _unbase64(text: str) -> bytes | None:
    """Decode a urlsafe (or standard) base64 id; ``None`` when it is not base64 at all."""
    try:
        return base64.urlsafe_b64decode(text.replace("+", "-").replace("/", "_").encode())
    except (binascii.Error, ValueError):
        return None
