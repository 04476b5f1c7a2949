"""Frozen settings shared by the transport, the navigator and the crawler."""

from __future__ import annotations

import enum

import attrs

__all__ = ["Limits"]

_MAY_BE_ZERO = frozenset(
    {
        "retries",
        "backoff_base",
        "backoff_max",
        "max_retry_after",
        "retry_budget",
        "retry_budget_min",
    }
)


@attrs.frozen(kw_only=True)
class Limits:
    """Concurrency, timeout, retry and size limits.

    Every field has a default sized for real HAL APIs; override what you need::

        Limits(concurrency=128, per_host=32, read_timeout=300.0)

    Concurrency:
        ``concurrency`` requests in flight at once in total, ``per_host`` at
        most per origin (``None``: same as ``concurrency``).
    Timeouts (seconds, ``None`` = no limit):
        ``connect_timeout`` to get a connection, ``read_timeout`` between two
        reads of the body, ``total_timeout`` for one whole attempt of a GET or HEAD
        (default 10 min: a server that sends a byte every 119 s cannot hold a
        request forever). An action (any other method) waits up to
        ``answer_timeout`` for its answer to begin - a Veeam server builds a large
        PST for minutes before its first byte (default 30 min) - then reads a JSON
        (or in-memory) answer within ``total_timeout``; a download it streams to a
        file may take ``transfer_timeout`` from its first byte to its last (default
        6 h, about 100 GB at 5 MB/s), and ends when it stalls for ``read_timeout``.
    Retries:
        ``retries`` extra attempts per request for connection errors, timeouts
        and 429/502/503/504 on idempotent methods, and for 429/503 that carry
        ``Retry-After`` on any method. Backoff is exponential from
        ``backoff_base`` up to ``backoff_max`` with full jitter; a
        ``Retry-After`` longer than ``max_retry_after`` is not waited for.
        ``retry_budget`` bounds retries across the whole client: at most
        ``retry_budget_min`` plus ``retry_budget`` times the number of requests
        made so far, so a failing server is not hammered.
    Sizes (hostile-input guards):
        ``max_response_bytes`` per JSON body (binary downloads are streamed;
        ``max_download_bytes`` caps them, default none), ``max_json_depth``
        nesting, ``max_links`` per document, ``max_href_length`` characters per
        href, ``max_items`` page items and embedded resources per document (a
        parse also stops when the URLs it makes up for items without ``self``
        pass 32 MiB). ``parse`` takes the same ``limits``.
    Paging:
        ``readahead`` pages fetched in parallel when the page size is known;
        ``paginate`` reads at most ``max_pages`` pages of one collection (a server
        whose ``next`` links never end is a ``LimitExceededError``, not a walk that
        runs until memory is gone).
    """

    concurrency: int = 64
    per_host: int | None = None
    connect_timeout: float | None = 15.0
    read_timeout: float | None = 120.0
    total_timeout: float | None = 600.0
    retries: int = 3
    backoff_base: float = 0.2
    backoff_max: float = 10.0
    max_retry_after: float = 120.0
    retry_budget: float = 0.2
    retry_budget_min: int = 20
    max_response_bytes: int = 64 * 1024 * 1024
    max_json_depth: int = 128
    max_links: int = 100_000
    max_href_length: int = 8192
    max_items: int = 100_000
    answer_timeout: float | None = 1800.0
    transfer_timeout: float | None = 6 * 3600.0
    max_download_bytes: int | None = None
    readahead: int = 32
    max_pages: int = 100_000

    def __attrs_post_init__(self) -> None:
        for field in attrs.fields(type(self)):
            value = getattr(self, field.name)
            if value is None and field.name.endswith(("timeout", "per_host", "download_bytes")):
                continue
            if not isinstance(value, int | float) or value < 0:
                raise ValueError(f"Limits.{field.name} must be a number >= 0, got {value!r}")
            if value == 0 and field.name not in _MAY_BE_ZERO:
                raise ValueError(f"Limits.{field.name} must be positive, got {value!r}")

    @property
    def host_limit(self) -> int:
        """The effective per-origin concurrency."""
        return self.per_host if self.per_host is not None else self.concurrency


class Lifecycle(enum.StrEnum):
    """Where a Transport or a Navigator is in its life: made, open, or closed for good
    (a string enum: ``nav_state == "open"`` reads as it says)."""

    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"
