"""A primary and its replicas behind one object: reads go to the replicas, writes and
transactions to the primary.

- ``acquire(read_only=True)`` takes a connection of the next replica in turn, skipping
  replicas that recently failed to give one within ``fallback_timeout`` (they are tried
  again after ``retry_dead_after`` seconds). When none can, it takes one of the primary
  (``fallback="primary"``, and ``on_fallback(reason)`` is called) or raises
  (``fallback="none"``).
- ``fetch``, ``fetchrow`` and ``fetchval`` read from a replica; ``execute``, ``executemany``,
  the COPY methods and ``acquire()`` (``read_only=False``) use the primary.
- The primary's pool connects with ``target_session_attrs=read-write`` (unless given), so a
  primary DSN naming several hosts follows a failover the way connection establishment does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any, Callable

from .connection import Record
from .exceptions import InterfaceError
from .pool import Pool, PoolConnectionProxy, create_pool

FALLBACKS = ("primary", "none")


class NoReplicaAvailableError(InterfaceError):
    """No replica gave a connection and the cluster does not fall back to the primary."""


class _Replica:
    __slots__ = ("dead_until", "dsn", "pool")

    def __init__(self, dsn: str, pool: Pool) -> None:
        self.dsn = dsn
        self.pool = pool
        self.dead_until = 0.0


class PoolCluster:
    """Pools for a primary and its replicas; create it with :func:`create_pool_cluster`."""

    def __init__(
        self,
        primary_dsn: str,
        replica_dsns: Sequence[str],
        *,
        fallback: str,
        fallback_timeout: float,
        retry_dead_after: float,
        on_fallback: Callable[[BaseException], None] | None,
        **pool_kwargs: Any,
    ) -> None:
        if fallback not in FALLBACKS:
            raise ValueError(f"fallback must be one of {FALLBACKS}, not {fallback!r}")
        primary_kwargs = dict(pool_kwargs)
        primary_kwargs.setdefault("target_session_attrs", "read-write")
        self.primary: Pool = create_pool(primary_dsn, **primary_kwargs)
        self._replicas = [_Replica(dsn, create_pool(dsn, **pool_kwargs)) for dsn in replica_dsns]
        self._fallback = fallback
        self._fallback_timeout = fallback_timeout
        self._retry_dead_after = retry_dead_after
        self._on_fallback = on_fallback
        self._next = 0
        self._initialized = False

    @property
    def replicas(self) -> list[Pool]:
        return [r.pool for r in self._replicas]

    def __await__(self) -> Any:
        return self._async_init().__await__()

    async def __aenter__(self) -> PoolCluster:
        return await self._async_init()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _async_init(self) -> PoolCluster:
        """Opens the primary's pool (its failure fails the cluster) and the replicas' (a
        replica that fails is skipped until it answers)."""
        if self._initialized:
            return self
        await self.primary
        results = await asyncio.gather(
            *(r.pool._async_init() for r in self._replicas), return_exceptions=True
        )
        loop = asyncio.get_running_loop()
        for replica, result in zip(self._replicas, results):
            if isinstance(result, BaseException):
                replica.dead_until = loop.time() + self._retry_dead_after
        self._initialized = True
        return self

    # -- acquiring --------------------------------------------------------------------------

    async def acquire(
        self, *, read_only: bool = False, timeout: float | None = None
    ) -> PoolConnectionProxy:
        """A connection of a replica (``read_only``) or of the primary; release it with
        :meth:`release`. ``timeout`` bounds the wait for the primary."""
        if read_only:
            replica = await self._replica_connection()
            if replica is not None:
                return replica
        return await self.primary.acquire(timeout=timeout)

    async def _replica_connection(self) -> PoolConnectionProxy | None:
        """A connection of the next live replica; None to fall back to the primary."""
        loop = asyncio.get_running_loop()
        reason: BaseException | None = None
        count = len(self._replicas)
        for _ in range(count):
            replica = self._replicas[self._next % count]
            self._next += 1
            if loop.time() < replica.dead_until:
                continue
            try:
                if not replica.pool._initialized:
                    await asyncio.wait_for(replica.pool._async_init(), self._fallback_timeout)
                return await replica.pool.acquire(timeout=self._fallback_timeout)
            except Exception as e:  # unreachable, too slow, or refusing (e.g. shutting down)
                reason = e
                replica.dead_until = loop.time() + self._retry_dead_after
        if reason is None:
            reason = NoReplicaAvailableError(
                "no replica is configured" if not count else "every replica is marked dead"
            )
        if self._fallback == "none":
            raise NoReplicaAvailableError(f"no replica gave a connection: {reason!r}") from reason
        if self._on_fallback is not None:
            self._on_fallback(reason)
        return None

    async def release(
        self, connection: PoolConnectionProxy, *, timeout: float | None = None
    ) -> None:
        """Gives back a connection from :meth:`acquire`."""
        await connection._pool.release(connection, timeout=timeout)

    # -- one call ---------------------------------------------------------------------------

    async def _read(self, name: str, *args: Any, **kwargs: Any) -> Any:
        conn = await self._replica_connection()
        if conn is None:
            return await getattr(self.primary, name)(*args, **kwargs)
        try:
            return await getattr(conn, name)(*args, **kwargs)
        finally:
            await conn._pool.release(conn)

    async def fetch(
        self,
        query: str,
        *args: Any,
        timeout: float | None = None,
        record_class: type[Record] | None = None,
    ) -> list[Record]:
        """``fetch`` on a replica."""
        return await self._read(  # type: ignore[no-any-return]
            "fetch", query, *args, timeout=timeout, record_class=record_class
        )

    async def fetchrow(
        self,
        query: str,
        *args: Any,
        timeout: float | None = None,
        record_class: type[Record] | None = None,
    ) -> Record | None:
        """``fetchrow`` on a replica."""
        return await self._read(  # type: ignore[no-any-return]
            "fetchrow", query, *args, timeout=timeout, record_class=record_class
        )

    async def fetchval(
        self, query: str, *args: Any, column: int = 0, timeout: float | None = None
    ) -> Any:
        """``fetchval`` on a replica."""
        return await self._read("fetchval", query, *args, column=column, timeout=timeout)

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        """``execute`` on the primary."""
        return await self.primary.execute(query, *args, timeout=timeout)

    async def executemany(
        self, command: str, args: Iterable[Sequence[Any]], *, timeout: float | None = None
    ) -> None:
        """``executemany`` on the primary."""
        await self.primary.executemany(command, args, timeout=timeout)

    async def copy_records_to_table(self, table_name: str, **kwargs: Any) -> str:
        """``copy_records_to_table`` on the primary."""
        return await self.primary.copy_records_to_table(table_name, **kwargs)

    async def copy_to_table(self, table_name: str, **kwargs: Any) -> str:
        """``copy_to_table`` on the primary."""
        return await self.primary.copy_to_table(table_name, **kwargs)

    # -- closing ----------------------------------------------------------------------------

    async def close(self, *, timeout: float | None = 30.0) -> None:
        """Closes every pool (see :meth:`Pool.close`)."""
        await asyncio.gather(
            self.primary.close(timeout=timeout),
            *(r.pool.close(timeout=timeout) for r in self._replicas if r.pool._initialized),
        )

    def terminate(self) -> None:
        self.primary.terminate()
        for r in self._replicas:
            r.pool.terminate()


def create_pool_cluster(
    primary_dsn: str,
    replica_dsns: Sequence[str],
    *,
    fallback: str = "primary",
    fallback_timeout: float = 2.0,
    retry_dead_after: float = 5.0,
    on_fallback: Callable[[BaseException], None] | None = None,
    **pool_kwargs: Any,
) -> PoolCluster:
    """Pools for a primary and its replicas (see :mod:`pgoxide.pool_cluster`):
    ``cluster = await create_pool_cluster(primary_dsn, [replica_dsn, ...])`` or
    ``async with``. ``pool_kwargs`` are :func:`create_pool`'s, for every pool."""
    return PoolCluster(
        primary_dsn,
        replica_dsns,
        fallback=fallback,
        fallback_timeout=fallback_timeout,
        retry_dead_after=retry_dead_after,
        on_fallback=on_fallback,
        **pool_kwargs,
    )
