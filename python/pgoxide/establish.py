"""Establishing connections: libpq-style parameters, trying each host, TLS negotiation and
startup (authentication happens in the Rust session)."""

from __future__ import annotations

import asyncio
import inspect
import ssl as ssl_module
from collections.abc import Awaitable
from typing import Any, Callable

from . import _pgoxide, conninfo, tls
from .connection import Connection, Record
from .exceptions import ClientConfigurationError, PostgresError
from .protocol import Protocol, TLSNegotiation

# SQLSTATE cannot_connect_now: the server is starting up or shutting down; try the next host.
_CANNOT_CONNECT_NOW = "57P03"


async def connect(
    dsn: str | None = None,
    *,
    timeout: float | None = 60.0,
    statement_cache_size: int = 100,
    max_cached_statement_lifetime: float = 300.0,
    max_cacheable_statement_size: int = 15 * 1024,
    command_timeout: float | None = None,
    ssl: ssl_module.SSLContext | str | bool | None = None,
    password: str | Callable[[], str | Awaitable[str]] | None = None,
    record_class: type[Record] | None = None,
    **kwargs: Any,
) -> Connection:
    """Opens a connection, with libpq's connection-string grammar and defaults.

    ``dsn`` is a ``postgresql://`` URI or a ``key=value`` string; keyword arguments are libpq
    keywords (``host``, ``port``, ``dbname``/``database``, ``user``, ``sslmode``,
    ``application_name``, ``connect_timeout``, ``max_message_size``, ...) or asyncpg's
    options (``server_settings``, ``ssl``, ``statement_cache_size``, ``command_timeout``, ...).
    An unknown keyword is an error. ``timeout`` bounds the whole attempt; ``connect_timeout``
    bounds each host.
    """
    if callable(password):
        result = password()
        password = await result if inspect.isawaitable(result) else result
    ssl_context: ssl_module.SSLContext | None = None
    if isinstance(ssl, ssl_module.SSLContext):
        ssl_context = ssl
    elif ssl is True:
        ssl_context = ssl_module.create_default_context()
    elif ssl is False:
        kwargs["sslmode"] = "disable"
    elif isinstance(ssl, str):
        kwargs["sslmode"] = ssl
    elif ssl is not None:
        raise TypeError(f"ssl must be an SSLContext, a bool or an sslmode string, not {ssl!r}")
    params = conninfo.resolve(dsn, password=password, **kwargs)
    encoding = params.startup.get("client_encoding", "UTF8")
    if encoding.upper().replace("-", "") not in ("UTF8", "UNICODE"):
        raise ClientConfigurationError(
            f"client_encoding {encoding!r} is not supported: pgoxide always uses UTF8"
        )
    options = dict(
        statement_cache_size=statement_cache_size,
        max_cached_statement_lifetime=max_cached_statement_lifetime,
        max_cacheable_statement_size=max_cacheable_statement_size,
        command_timeout=command_timeout,
        record_class=record_class,
    )
    attempt = _connect_any(params, ssl_context, options)
    if timeout is None:
        return await attempt
    return await asyncio.wait_for(attempt, timeout)


async def _connect_any(
    params: conninfo.ConnectParams,
    ssl_context: ssl_module.SSLContext | None,
    options: dict[str, Any],
) -> Connection:
    """Tries each host in order; an authentication failure is not retried on other hosts."""
    failures: list[tuple[conninfo.Target, BaseException]] = []
    for target in params.targets:
        try:
            attempt = _connect_target(target, params, ssl_context, options)
            if params.connect_timeout:
                return await asyncio.wait_for(attempt, params.connect_timeout)
            return await attempt
        except (OSError, asyncio.TimeoutError) as exc:
            failures.append((target, exc))
        except PostgresError as exc:
            if exc.sqlstate != _CANNOT_CONNECT_NOW:
                raise
            failures.append((target, exc))
    if len(failures) == 1:
        raise failures[0][1]
    detail = "; ".join(f"{_describe(t)}: {e or type(e).__name__}" for t, e in failures)
    raise OSError(f"could not connect to any host: {detail}")


def _describe(target: conninfo.Target) -> str:
    if target.is_unix:
        return target.socket_path
    return f"{target.host}:{target.port}"


async def _connect_target(
    target: conninfo.Target,
    params: conninfo.ConnectParams,
    ssl_context: ssl_module.SSLContext | None,
    options: dict[str, Any],
) -> Connection:
    loop = asyncio.get_running_loop()
    if target.is_unix:
        # sslmode does not apply to Unix sockets (libpq).
        transport, _ = await loop.create_unix_connection(asyncio.Protocol, target.socket_path)
        use_tls = False
    else:
        if ssl_context is not None:
            context, mandatory = ssl_context, True
        else:
            context, mandatory = tls.client_context(params.settings)
        transport, use_tls = await _open_tcp(loop, target, context, mandatory)
    try:
        password = target.password.encode() if target.password is not None else None
        # Every text value is decoded as UTF-8, whatever the database's encoding.
        startup = {**params.startup, "client_encoding": "UTF8"}
        session = _pgoxide.Session(
            params.user,
            params.database,
            list(startup.items()),
            password,
            params.max_message_size,
            use_tls,
            None,
            params.settings.get("channel_binding", "prefer"),
        )
        protocol = Protocol(session, loop)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        await protocol.send(session.startup())
    except BaseException:
        transport.abort()
        raise
    return Connection(protocol, params, target, **options)


async def _open_tcp(
    loop: asyncio.AbstractEventLoop,
    target: conninfo.Target,
    context: ssl_module.SSLContext | None,
    mandatory: bool,
) -> tuple[asyncio.Transport, bool]:
    """Connects and, when TLS is wanted, negotiates it with SSLRequest on the same socket."""
    address = target.hostaddr or target.host
    if context is None:
        transport, _ = await loop.create_connection(asyncio.Protocol, address, target.port)
        return transport, False
    transport, negotiation = await loop.create_connection(
        lambda: TLSNegotiation(loop), address, target.port
    )
    try:
        transport.write(_pgoxide.ssl_request())
        answer = await negotiation.answer
        if answer == b"S":
            tls_transport = await loop.start_tls(
                transport, negotiation, context, server_hostname=target.host
            )
            assert tls_transport is not None
            return tls_transport, True
        if answer == b"N":
            if mandatory:
                raise ConnectionError("server does not support SSL, but SSL was required")
            return transport, False
        # An 'E' answer comes from a pre-7.4 server or an attacker; it is never shown.
        raise ConnectionError("server responded to SSLRequest with an unexpected answer")
    except BaseException:
        transport.abort()
        raise
