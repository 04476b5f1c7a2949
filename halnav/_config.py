"""Frozen settings shared by the transport, the navigator and the crawler."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["Limits"]

_Check = Callable[[object, "attrs.Attribute[Any]", Any], None]


def _number(attribute: attrs.Attribute[Any], value: Any) -> None:
    # bool is an int, but Limits(retries=True) is a mistake, not one retry.
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"Limits.{attribute.name} must be a number >= 0, got {value!r}")


def _at_least_zero(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    _number(attribute, value)


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    _number(attribute, value)
    if value == 0:
        raise ValueError(f"Limits.{attribute.name} must be positive, got {value!r}")


def _optional(check: _Check) -> _Check:
    """``check``, or None (no limit)."""

    def optional(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None:
            check(instance, attribute, value)

    return optional


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

    concurrency: int = attrs.field(default=64, validator=_positive)
    per_host: int | None = attrs.field(default=None, validator=_optional(_positive))
    connect_timeout: float | None = attrs.field(default=15.0, validator=_optional(_positive))
    read_timeout: float | None = attrs.field(default=120.0, validator=_optional(_positive))
    total_timeout: float | None = attrs.field(default=600.0, validator=_optional(_positive))
    retries: int = attrs.field(default=3, validator=_at_least_zero)
    backoff_base: float = attrs.field(default=0.2, validator=_at_least_zero)
    backoff_max: float = attrs.field(default=10.0, validator=_at_least_zero)
    max_retry_after: float = attrs.field(default=120.0, validator=_at_least_zero)
    retry_budget: float = attrs.field(default=0.2, validator=_at_least_zero)
    retry_budget_min: int = attrs.field(default=20, validator=_at_least_zero)
    max_response_bytes: int = attrs.field(default=64 * 1024 * 1024, validator=_positive)
    max_json_depth: int = attrs.field(default=128, validator=_positive)
    max_links: int = attrs.field(default=100_000, validator=_positive)
    max_href_length: int = attrs.field(default=8192, validator=_positive)
    max_items: int = attrs.field(default=100_000, validator=_positive)
    answer_timeout: float | None = attrs.field(default=1800.0, validator=_optional(_positive))
    transfer_timeout: float | None = attrs.field(default=6 * 3600.0, validator=_optional(_positive))
    max_download_bytes: int | None = attrs.field(default=None, validator=_optional(_positive))
    readahead: int = attrs.field(default=32, validator=_positive)
    max_pages: int = attrs.field(default=100_000, validator=_positive)

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
