"""The statement cache: an LRU of prepared statements keyed by SQL text, with expiry.

Evicted named statements are closed on the server with the connection's next request, so an
eviction costs no round trip. With ``statement_cache_size=0`` statements are unnamed and only
their descriptions are kept (client-side), so repeated queries still take one round trip.
"""

from __future__ import annotations

import asyncio
import collections

from . import _pgoxide

# With statement_cache_size=0, how many query descriptions are kept client-side.
_DESCRIPTION_CACHE_SIZE = 100


class StatementCache:
    """Statements of one connection, least recently used first."""

    def __init__(
        self,
        session: _pgoxide.Session,
        loop: asyncio.AbstractEventLoop,
        *,
        size: int,
        lifetime: float,
        max_cacheable: int,
    ) -> None:
        self._session = session
        self._loop = loop
        self._entries: collections.OrderedDict[str, _pgoxide.Statement] = collections.OrderedDict()
        # Expiry timers (max_cached_statement_lifetime).
        self._expiry: dict[str, asyncio.TimerHandle] = {}
        self.size = size
        self._lifetime = lifetime
        self._max_cacheable = max_cacheable

    @property
    def names_statements(self) -> bool:
        """Whether statements are named on the server (``statement_cache_size`` above 0)."""
        return self.size > 0

    def cacheable(self, query: str) -> bool:
        return len(query) <= self._max_cacheable

    def get(self, query: str) -> _pgoxide.Statement | None:
        stmt = self._entries.get(query)
        if stmt is not None:
            self._entries.move_to_end(query)
        return stmt

    def put(self, query: str, stmt: _pgoxide.Statement) -> None:
        """Caches ``stmt``, evicting the least recently used beyond the size."""
        self.evict(query)
        self._entries[query] = stmt
        if self._lifetime:
            self._expiry[query] = self._loop.call_later(self._lifetime, self.evict, query, stmt)
        while len(self._entries) > (self.size or _DESCRIPTION_CACHE_SIZE):
            self.evict(next(iter(self._entries)))

    def replace(self, query: str, old: _pgoxide.Statement, new: _pgoxide.Statement) -> None:
        """Keeps ``new`` (a fresh description of the same statement) in place of ``old``."""
        if self._entries.get(query) is old:
            self._entries[query] = new

    def evict(self, query: str, stmt: _pgoxide.Statement | None = None) -> None:
        """Drops ``query`` (only if it is still ``stmt``, when given) and closes it."""
        current = self._entries.get(query)
        if current is None or (stmt is not None and current is not stmt):
            return
        del self._entries[query]
        timer = self._expiry.pop(query, None)
        if timer is not None:
            timer.cancel()
        if current.name:
            # The Close rides with the next request instead of costing a round trip.
            self._session.close_statement(current.name)

    def clear(self) -> None:
        while self._entries:
            self.evict(next(iter(self._entries)))

    def close(self) -> None:
        """Forgets everything without closing on the server (the connection is gone), so
        no timer keeps the connection alive."""
        for timer in self._expiry.values():
            timer.cancel()
        self._expiry.clear()
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, query: str) -> bool:
        return query in self._entries
