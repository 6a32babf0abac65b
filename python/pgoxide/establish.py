"""Establishing connections as libpq does: each host in turn (optionally shuffled), each of
its addresses, each allowed encryption method; TLS negotiation; startup and authentication
(answered by the Rust session under ``require_auth`` and ``channel_binding``); then the
``target_session_attrs`` check.

Which failures move on and which end the attempt follows libpq's PQconnectPoll:

- a host name that does not resolve, or 57P03 (the server is starting up or shutting down),
  or a server of the wrong kind for ``target_session_attrs``: the next host;
- a refused or timed-out TCP connection (``connect_timeout``, per address): the next address;
- a failed TLS handshake, or an ErrorResponse before authentication succeeded: the same
  address again with the next encryption method ``sslmode`` allows, else the attempt ends;
- anything else (a wrong password, a refused authentication policy, an unknown database, a
  protocol violation): the attempt ends at once, whatever hosts are left.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import socket
import ssl as ssl_module
import time
import warnings
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, Callable

from . import _pgoxide, conninfo, tls, tracing
from .connection import Connection, Record
from .exceptions import (
    ClientConfigurationError,
    ConnectionDoesNotExistError,
    ConnectionFailedError,
    DeprecatedAuthWarning,
    InsecureAuthWarning,
    PostgresError,
    TargetServerAttributeNotMatched,
)
from .protocol import Protocol
from .tracing import Tracer

_log = logging.getLogger("pgoxide.connection")

__all__ = ["AuthEvent", "connect"]

# SQLSTATE cannot_connect_now: the server is starting up or shutting down; try the next host.
_CANNOT_CONNECT_NOW = "57P03"


@dataclass(frozen=True)
class AuthEvent:
    """What ``on_insecure_auth`` and ``on_deprecated_auth`` hooks receive."""

    method: str
    """The method the server asked for: ``'password'`` (cleartext) or ``'md5'``."""
    tls: bool
    """Whether the connection was encrypted when the password was sent."""
    host: str
    port: int


AuthHook = Callable[[AuthEvent], None]


async def connect(
    dsn: str | None = None,
    *,
    timeout: float | None = 60.0,
    statement_cache_size: int = 100,
    max_cached_statement_lifetime: float = 300.0,
    max_cacheable_statement_size: int = 15 * 1024,
    command_timeout: float | None = None,
    ssl: ssl_module.SSLContext | str | bool | None = None,
    direct_tls: bool = False,
    password: str | Callable[[], str | Awaitable[str]] | None = None,
    record_class: type[Record] | None = None,
    on_insecure_auth: AuthHook | None = None,
    on_deprecated_auth: AuthHook | None = None,
    connection_class: type[Connection] = Connection,
    tracer: Tracer | None = None,
    parse_json: bool = False,
    infinity: str = "max",
    loop: asyncio.AbstractEventLoop | None = None,
    **kwargs: Any,
) -> Connection:
    """Opens a connection, with libpq's connection-string grammar, defaults and host selection.

    ``dsn`` is a ``postgresql://`` URI or a ``key=value`` string; keyword arguments are libpq
    keywords (``host``, ``port``, ``dbname``/``database``, ``user``, ``sslmode``,
    ``require_auth``, ``channel_binding``, ``target_session_attrs``, ``connect_timeout``, ...)
    or asyncpg's options (``server_settings``, ``ssl``, ``direct_tls``,
    ``statement_cache_size``, ``command_timeout``, ...). An unknown keyword is an error.

    ``timeout`` bounds the whole attempt; ``connect_timeout`` bounds each address.
    ``connection_class`` (a subclass of :class:`Connection`) is instantiated, as in asyncpg.
    ``on_insecure_auth`` is called when a cleartext password is sent over TCP without TLS and
    ``on_deprecated_auth`` when the server asks for MD5; both are advisory (an
    :class:`InsecureAuthWarning` or :class:`DeprecatedAuthWarning` is issued as well), and
    ``require_auth`` is the way to refuse such methods.

    ``loop`` is accepted as asyncpg accepts it (the running loop is used).

    Values have asyncpg's shapes. ``parse_json=True`` returns json and jsonb as Python
    objects parsed in Rust instead of ``str``; ``infinity="raise"`` makes an infinite date,
    timestamp or interval raise DataError instead of being ``date.max``/``datetime.max``
    (``-infinity``: ``min``), and sends ``max`` and ``min`` as the real dates they are.
    """
    if command_timeout is not None and (
        isinstance(command_timeout, bool)
        or not isinstance(command_timeout, (int, float))
        or command_timeout <= 0
    ):
        raise ValueError(
            f"invalid command_timeout value: expected a number of seconds above 0, "
            f"got {command_timeout!r}"
        )
    if infinity not in ("max", "raise"):
        raise ValueError(f"infinity must be 'max' or 'raise', not {infinity!r}")
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
    if direct_tls:
        kwargs["sslnegotiation"] = "direct"
    params = conninfo.resolve(dsn, password=password, **kwargs)
    encoding = params.startup.get("client_encoding", "UTF8")
    if encoding.upper().replace("-", "") not in ("UTF8", "UNICODE"):
        raise ClientConfigurationError(
            f"client_encoding {encoding!r} is not supported: pgoxide always uses UTF8"
        )
    if not (isinstance(connection_class, type) and issubclass(connection_class, Connection)):
        raise TypeError(
            f"connection_class must be a subclass of pgoxide.Connection, not {connection_class!r}"
        )
    if tracer is None:
        tracer = tracing.default_tracer()
    attempt = _Attempt(
        params,
        tls.policy(params.settings, ssl_context),
        on_insecure_auth,
        on_deprecated_auth,
        connection_class,
        dict(
            statement_cache_size=statement_cache_size,
            max_cached_statement_lifetime=max_cached_statement_lifetime,
            max_cacheable_statement_size=max_cacheable_statement_size,
            command_timeout=command_timeout,
            record_class=record_class,
            tracer=tracer,
            parse_json=bool(parse_json),
            infinity=infinity,
        ),
    )
    run = attempt.run() if timeout is None else asyncio.wait_for(attempt.run(), timeout)
    if tracer is None:
        return await run
    return await _traced_connect(tracer, params, run)


async def _traced_connect(
    tracer: Tracer, params: conninfo.ConnectParams, run: Awaitable[Connection]
) -> Connection:
    """``run`` between the tracer's connect hooks: the hosts it may try, then the host
    chosen, whether TLS is on and the password method."""
    hosts = [f"{t.host}:{t.port}" for t in params.targets]
    context = tracing.start(tracer, "connect", tracing.ConnectStart(hosts))
    began = time.perf_counter()
    try:
        conn = await run
    except BaseException as e:
        tracing.end(tracer, "connect", context, tracing.End(time.perf_counter() - began, e))
        raise
    target = conn._target
    details = {
        "host": f"{target.host}:{target.port}",
        "tls": conn._protocol.transport.get_extra_info("ssl_object") is not None,  # type: ignore[union-attr]
        "auth_method": conn.auth_method,
    }
    tracing.end(
        tracer, "connect", context, tracing.End(time.perf_counter() - began, None, details=details)
    )
    return conn


class _NextAddress(Exception):
    """This address failed in a way that lets the next one be tried."""


class _NextHost(Exception):
    """This host failed in a way that lets the next one be tried."""


class _Retry(Exception):
    """Connect to the same address again with the next encryption method."""


class _Attempt:
    """One call of :func:`connect`: every host, address and method it may try."""

    def __init__(
        self,
        params: conninfo.ConnectParams,
        policy: tls.TLSPolicy,
        on_insecure_auth: AuthHook | None,
        on_deprecated_auth: AuthHook | None,
        connection_class: type[Connection],
        options: dict[str, Any],
    ) -> None:
        self.params = params
        self.policy = policy
        self.on_insecure_auth = on_insecure_auth
        self.on_deprecated_auth = on_deprecated_auth
        self.connection_class = connection_class
        self.options = options
        self.settings = params.settings
        self.loop = asyncio.get_running_loop()
        self.random = random.Random()
        # (where, error) for every failure that let the attempt go on.
        self.failures: list[tuple[str, BaseException]] = []

    async def run(self) -> Connection:
        targets = list(self.params.targets)
        balance = self.settings.get("load_balance_hosts") == "random"
        if balance:
            self.random.shuffle(targets)
        wanted = self.settings.get("target_session_attrs", "any")
        # prefer-standby: a pass for standbys, then one that takes any server.
        passes = [wanted] if wanted != "prefer-standby" else ["standby", "any"]
        try:
            for mode in passes:
                for target in targets:
                    try:
                        return await self._connect_host(target, mode, balance)
                    except _NextHost:
                        continue
        except BaseException as e:
            self._annotate(e)
            raise
        raise self._exhausted()

    def _failed(self, where: str, error: BaseException) -> None:
        """Records a failure that lets the attempt go on."""
        _log.debug("%s failed: %s", where, _text(error))
        self.failures.append((where, error))

    def _annotate(self, error: BaseException) -> None:
        """Adds the earlier failures to an error that ended the attempt (Python 3.11+)."""
        add_note = getattr(error, "add_note", None)
        if add_note is not None:
            for where, failure in self.failures:
                add_note(f"before that: {where} failed: {_text(failure)}")

    def _exhausted(self) -> BaseException:
        failures = self.failures
        if len(failures) == 1 and not isinstance(failures[0][1], OSError):
            return failures[0][1]  # e.g. 57P03 or a standby: the server's own words
        lines = "\n".join(f"  {where} failed: {_text(err)}" for where, err in failures)
        if failures and all(isinstance(e, TargetServerAttributeNotMatched) for _, e in failures):
            return TargetServerAttributeNotMatched(
                "no host matches target_session_attrs="
                f"{self.settings.get('target_session_attrs')}:\n{lines}"
            )
        error = ConnectionFailedError(f"could not connect to any host:\n{lines}", failures)
        error.__cause__ = failures[-1][1] if failures else None
        return error

    # -- one host ---------------------------------------------------------------------------

    async def _connect_host(self, target: conninfo.Target, mode: str, balance: bool) -> Connection:
        addresses = await self._resolve(target)
        if balance:
            self.random.shuffle(addresses)
        for address in addresses:
            where = _describe(target, address)
            try:
                conn = await self._connect_address(target, address, where)
            except _NextAddress:
                continue
            mismatch = await _session_mismatch(conn, mode)
            if mismatch is None:
                if _log.isEnabledFor(logging.DEBUG):
                    _log.debug(
                        "connected to %s:%s as %r, database %r: backend %s, TLS %s, auth %s",
                        target.host,
                        target.port,
                        self.params.user,
                        self.params.database,
                        conn.get_server_pid(),
                        "on" if conn._protocol.transport.get_extra_info("ssl_object") else "off",  # type: ignore[union-attr]
                        conn.auth_method,
                    )
                return conn
            self._failed(where, TargetServerAttributeNotMatched(mismatch))
            with contextlib.suppress(Exception):
                await conn.close()  # politely, with Terminate, as libpq
            raise _NextHost  # libpq tries the next host, not this host's next address
        raise _NextHost

    async def _resolve(self, target: conninfo.Target) -> list[Any]:
        """Socket addresses to try: a Unix socket path, or (family, sockaddr) pairs."""
        if target.is_unix:
            return [target.socket_path]
        name = target.hostaddr or target.host
        flags = socket.AI_NUMERICHOST if target.hostaddr else 0
        try:
            infos = await self.loop.getaddrinfo(
                name, target.port, type=socket.SOCK_STREAM, flags=flags
            )
        except OSError as e:
            what = "parse network address" if target.hostaddr else "translate host name"
            self._failed(f'host "{name}"', OSError(f'could not {what} "{name}" to address: {e}'))
            raise _NextHost from None
        return [(family, sockaddr) for family, _, _, _, sockaddr in infos]

    # -- one address ------------------------------------------------------------------------

    async def _connect_address(
        self, target: conninfo.Target, address: Any, where: str
    ) -> Connection:
        """Tries each allowed encryption method on ``address``, within one connect_timeout."""
        methods = ["plain"] if target.is_unix else list(self.policy.methods)
        attempt = self._try_methods(target, address, where, methods)
        try:
            if self.params.connect_timeout is None:
                return await attempt
            return await asyncio.wait_for(attempt, self.params.connect_timeout)
        except asyncio.TimeoutError:
            self._failed(where, asyncio.TimeoutError("timeout expired"))
            raise _NextAddress from None
        except _NextAddress as e:
            self._failed(where, e.__cause__ or e)
            raise
        except _NextHost as e:
            if e.__cause__ is not None:
                self._failed(where, e.__cause__)
            raise

    async def _try_methods(
        self, target: conninfo.Target, address: Any, where: str, methods: list[str]
    ) -> Connection:
        while True:
            method = methods.pop(0)
            try:
                return await self._connect_method(target, address, method, methods)
            except _Retry as e:
                self._failed(where, e.__cause__ or e)

    async def _connect_method(
        self, target: conninfo.Target, address: Any, method: str, rest: list[str]
    ) -> Connection:
        """One connection to ``address`` secured with ``method``; ``rest`` are the methods
        left for this address (a refused SSLRequest may take the next one in place)."""
        try:
            sock = await self._open_socket(address)
        except OSError as e:
            raise _NextAddress from e
        try:
            peer_certificate: bytes | None = None
            if method == "tls":
                tls_state = await self._start_tls(sock, target, bool(rest))
                if tls_state is None:
                    # 'N' to SSLRequest: go on in plaintext on this socket (sslmode=prefer).
                    rest.pop(0)
                    transport, _ = await self.loop.create_connection(asyncio.Protocol, sock=sock)
                else:
                    transport, peer_certificate = tls_state
            else:
                transport, _ = await self.loop.create_connection(asyncio.Protocol, sock=sock)
        except BaseException:
            sock.close()
            raise
        return await self._startup(target, transport, peer_certificate, bool(rest))

    async def _open_socket(self, address: Any) -> socket.socket:
        if isinstance(address, str):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sockaddr: Any = address
        else:
            family, sockaddr = address
            sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            if not isinstance(address, str):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                _set_tcp_options(sock, self.settings)
            await self.loop.sock_connect(sock, sockaddr)
        except BaseException:
            sock.close()
            raise
        return sock

    async def _start_tls(
        self, sock: socket.socket, target: conninfo.Target, can_fall_back: bool
    ) -> tuple[asyncio.Transport, bytes | None] | None:
        """Negotiates TLS on ``sock``: the transport and the server certificate (DER), or
        None when the server refused SSLRequest and plaintext may follow."""
        policy = self.policy
        if not policy.direct:
            await self.loop.sock_sendall(sock, _pgoxide.ssl_request())
            answer = await self.loop.sock_recv(sock, 1)
            if answer == b"N":
                if can_fall_back:  # sslmode=prefer: plaintext comes next
                    return None
                raise ConnectionError("server does not support SSL, but SSL was required")
            if answer == b"E":
                # Not shown: the server is not authenticated yet (CVE-2024-10977).
                raise ConnectionError("server sent an error response during SSL exchange")
            if answer != b"S":
                shown = answer.decode("latin-1") if answer else "end of file"
                raise ConnectionError(f"received invalid response to SSL negotiation: {shown}")
            if _has_pending_data(sock):
                # Bytes after 'S' would be read as if TLS had protected them (CVE-2021-23222).
                raise ConnectionError("received unencrypted data after SSL response")
        assert policy.context is not None
        try:
            transport, _ = await self.loop.create_connection(
                asyncio.Protocol,
                sock=sock,
                ssl=policy.context,
                server_hostname=policy.server_hostname(target.host),
                ssl_handshake_timeout=None,
            )
        except (ssl_module.SSLError, ConnectionError) as e:
            if can_fall_back:
                raise _Retry from e
            raise
        ssl_object = transport.get_extra_info("ssl_object")
        try:
            _check_alpn(ssl_object.selected_alpn_protocol(), policy.direct)
            der = ssl_object.getpeercert(binary_form=True)
            if policy.verify_host:
                try:
                    _pgoxide.verify_host_name(der or b"", target.host)
                except ValueError as e:
                    raise _host_name_mismatch(str(e)) from None
        except BaseException as e:
            transport.abort()
            if can_fall_back and isinstance(e, ssl_module.SSLError):
                raise _Retry from e
            raise
        return transport, der

    async def _startup(
        self,
        target: conninfo.Target,
        transport: asyncio.Transport,
        certificate: bytes | None,
        can_retry: bool,
    ) -> Connection:
        password = target.password.encode() if target.password is not None else None
        # Every text value is decoded as UTF-8, whatever the database's encoding.
        startup = {**self.params.startup, "client_encoding": "UTF8"}
        use_tls = transport.get_extra_info("ssl_object") is not None
        try:
            session = _pgoxide.Session(
                self.params.user,
                self.params.database,
                list(startup.items()),
                password,
                self.params.max_message_size,
                use_tls,
                certificate,
                self.settings.get("channel_binding", "prefer"),
                self.settings.get("require_auth") or None,
                conninfo.protocol_versions(self.settings),
            )
            protocol = Protocol(session, self.loop)
            protocol.on_auth = lambda method: self._on_auth(method, use_tls, target)
            transport.set_protocol(protocol)
            protocol.connection_made(transport)
            await protocol.send(session.startup())
        except PostgresError as e:
            transport.abort()
            if e.sqlstate == _CANNOT_CONNECT_NOW:
                raise _NextHost from e
            server_said_no = not isinstance(e, ConnectionDoesNotExistError)
            if server_said_no and not session.authenticated and can_retry:
                # Perhaps a hostssl/hostnossl line: libpq retries with the next method.
                raise _Retry from e
            raise
        except BaseException:
            transport.abort()
            raise
        return self.connection_class(protocol, self.params, target, **self.options)

    def _on_auth(self, method: str, use_tls: bool, target: conninfo.Target) -> None:
        event = AuthEvent(method, use_tls, target.host, target.port)
        if method == "password" and not use_tls and not target.is_unix:
            warnings.warn(
                InsecureAuthWarning(
                    f"the password for {target.host}:{target.port} was sent in cleartext "
                    "without TLS",
                    hint="use sslmode=require (or stricter), or require_auth=scram-sha-256",
                ),
                stacklevel=2,
            )
            _log.warning(
                "the password for %s:%s was sent in cleartext without TLS", target.host, target.port
            )
            if self.on_insecure_auth is not None:
                self.on_insecure_auth(event)
            tracer = self.options.get("tracer")
            if tracer is not None:
                tracing.advise(tracer, "on_insecure_auth", event)
        elif method == "md5":
            warnings.warn(
                DeprecatedAuthWarning(
                    f"{target.host}:{target.port} asked for MD5 password authentication",
                    hint="store the password as SCRAM-SHA-256 and use scram-sha-256 in pg_hba.conf",
                ),
                stacklevel=2,
            )
            _log.warning("%s:%s asked for MD5 password authentication", target.host, target.port)
            if self.on_deprecated_auth is not None:
                self.on_deprecated_auth(event)
            tracer = self.options.get("tracer")
            if tracer is not None:
                tracing.advise(tracer, "on_deprecated_auth", event)


def _host_name_mismatch(message: str) -> ssl_module.SSLCertVerificationError:
    """The error Python's own host-name check raises, with libpq's message."""
    error = ssl_module.SSLCertVerificationError(ssl_module.SSL_ERROR_SSL, message)
    error.verify_code = 62  # X509_V_ERR_HOSTNAME_MISMATCH
    error.verify_message = message
    return error


def _text(error: BaseException) -> str:
    return str(error) or type(error).__name__


def _describe(target: conninfo.Target, address: Any) -> str:
    if isinstance(address, str):
        return f'connection to server on socket "{address}"'
    ip = address[1][0]
    shown = f'"{target.host}" ({ip})' if ip != target.host else f'"{ip}"'
    return f"connection to server at {shown}, port {target.port}"


def _has_pending_data(sock: socket.socket) -> bool:
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except (BlockingIOError, InterruptedError):
        return False


def _check_alpn(selected: str | None, direct: bool) -> None:
    if selected is None:
        if direct:
            raise ConnectionError(
                "direct SSL connection was established without ALPN protocol negotiation extension"
            )
    elif selected != tls.ALPN_PROTOCOL:
        raise ConnectionError("SSL connection was established with unexpected ALPN protocol")


# keepalives* and tcp_user_timeout: (socket level, option) per setting.
_TCP_OPTIONS: Sequence[tuple[str, str]] = (
    ("keepalives_idle", "TCP_KEEPIDLE"),
    ("keepalives_interval", "TCP_KEEPINTVL"),
    ("keepalives_count", "TCP_KEEPCNT"),
)


def _set_tcp_options(sock: socket.socket, settings: dict[str, str]) -> None:
    """libpq's keepalive and tcp_user_timeout settings (keepalives are on by default)."""
    if int(settings.get("keepalives") or 1) != 0:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for keyword, name in _TCP_OPTIONS:
            value = settings.get(keyword)
            if value and hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), max(int(value), 0))
    value = settings.get("tcp_user_timeout")
    if value and hasattr(socket, "TCP_USER_TIMEOUT"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, max(int(value), 0))


# -- target_session_attrs ---------------------------------------------------------------------


def session_verdict(mode: str, parameters: dict[str, str]) -> str | None:
    """Why a server with these reported parameters does not suit ``mode`` (libpq's
    wording), None if it does; raises LookupError when the parameters do not tell."""
    if mode in ("any",):
        return None
    hot_standby = parameters.get("in_hot_standby")
    if mode in ("read-write", "read-only"):
        read_only_default = parameters.get("default_transaction_read_only")
        if hot_standby is None or read_only_default is None:
            raise LookupError("SHOW transaction_read_only")
        read_only = hot_standby == "on" or read_only_default == "on"
        if mode == "read-write" and read_only:
            return "session is read-only"
        if mode == "read-only" and not read_only:
            return "session is not read-only"
        return None
    if hot_standby is None:
        raise LookupError("SELECT pg_catalog.pg_is_in_recovery()")
    if mode == "primary" and hot_standby == "on":
        return "server is in hot standby mode"
    if mode == "standby" and hot_standby != "on":
        return "server is not in hot standby mode"
    return None


async def _session_mismatch(
    conn: Connection, mode: str, parameters: dict[str, str] | None = None
) -> str | None:
    """libpq's CONNECTION_CHECK_TARGET: the GUCs the server reported (PostgreSQL 14+), else
    a query."""
    if parameters is None:
        parameters = dict(conn._session.server_parameters)
    try:
        return session_verdict(mode, parameters)
    except LookupError as needed:
        query = str(needed.args[0])
    try:
        value = await conn.fetchval(query)
    except (PostgresError, OSError) as e:
        return f'"{query}" failed: {e}'
    if query.startswith("SHOW"):
        on = "on" if str(value).startswith("on") else "off"
        parameters.update(in_hot_standby=on, default_transaction_read_only=on)
    else:
        parameters["in_hot_standby"] = "on" if value else "off"
    return session_verdict(mode, parameters)
