"""Connecting: every auth method over TCP and the Unix socket, TLS, connection options."""

from __future__ import annotations

import asyncio
import os

import pgoxide
import pytest
from pgoxide import exceptions


async def _whoami(conn: pgoxide.Connection) -> tuple[str, bool]:
    row = await conn.fetchrow(
        "SELECT current_user AS u,"
        " coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false) AS ssl"
    )
    assert row is not None
    return row["u"], row["ssl"]


@pytest.mark.parametrize("role", ["trust", "password", "md5", "scram"])
@pytest.mark.parametrize("unix", [False, True], ids=["tcp", "unix"])
async def test_each_auth_method(pg_cluster, pg_roles, role, unix):
    name = getattr(pg_roles, role)
    dsn = pg_cluster.dsn(user=name, unix=unix)
    conn = await pgoxide.connect(dsn, password=pg_roles[name], sslmode="disable")
    try:
        user, ssl = await _whoami(conn)
        assert user == name
        assert ssl is False
    finally:
        await conn.close()


@pytest.mark.parametrize("role", ["password", "md5", "scram"])
async def test_auth_method_over_tls(pg_cluster, pg_roles, role):
    name = getattr(pg_roles, role)
    conn = await pgoxide.connect(
        pg_cluster.dsn(user=name), password=pg_roles[name], sslmode="require"
    )
    try:
        assert await _whoami(conn) == (name, True)
    finally:
        await conn.close()


async def test_server_log_confirms_methods(pg_cluster, pg_roles):
    """The server, not just our side, agrees which method authenticated each role."""
    for role, method in (("md5", "md5"), ("scram", "scram-sha-256"), ("password", "password")):
        name = getattr(pg_roles, role)
        # Only what the server logged for this connection: earlier tests logged in as these
        # roles too. The server logs both lines before it tells the client it is ready.
        start = len(pg_cluster.log_text())
        conn = await pgoxide.connect(
            pg_cluster.dsn(user=name), password=pg_roles[name], sslmode="disable"
        )
        pid = conn.get_server_pid()
        await conn.close()
        own = [line for line in pg_cluster.log_text()[start:].splitlines() if f"[{pid}]" in line]
        assert any(f'identity="{name}" method={method} ' in line for line in own), own
        assert any(f"connection authorized: user={name} " in line for line in own), own


@pytest.mark.parametrize("role", ["password", "md5", "scram"])
@pytest.mark.parametrize("unix", [False, True], ids=["tcp", "unix"])
async def test_wrong_password(pg_cluster, pg_roles, role, unix):
    name = getattr(pg_roles, role)
    with pytest.raises(exceptions.InvalidPasswordError) as info:
        await pgoxide.connect(
            pg_cluster.dsn(user=name, unix=unix), password="wrong", sslmode="disable"
        )
    assert info.value.sqlstate == "28P01"
    assert name in info.value.message
    assert "wrong" not in str(info.value)


@pytest.mark.parametrize("role", ["password", "md5", "scram"])
async def test_missing_password(pg_cluster, pg_roles, role, tmp_path, monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))
    with pytest.raises(exceptions.InterfaceError, match="no password supplied"):
        await pgoxide.connect(pg_cluster.dsn(user=getattr(pg_roles, role)), sslmode="disable")


async def test_password_from_pgpass(pg_cluster, pg_roles, tmp_path):
    passfile = tmp_path / "pgpass"
    passfile.write_text(
        f"127.0.0.1:{pg_cluster.port}:*:{pg_roles.scram}:{pg_roles[pg_roles.scram]}\n"
    )
    os.chmod(passfile, 0o600)
    conn = await pgoxide.connect(pg_cluster.dsn(user=pg_roles.scram), passfile=str(passfile))
    try:
        assert (await _whoami(conn))[0] == pg_roles.scram
    finally:
        await conn.close()


async def test_password_callable(pg_cluster, pg_roles):
    calls = 0

    async def password() -> str:
        nonlocal calls
        calls += 1
        return pg_roles[pg_roles.md5]

    conn = await pgoxide.connect(
        pg_cluster.dsn(user=pg_roles.md5), password=password, sslmode="disable"
    )
    try:
        # md5 needs the password: the server accepted the one the callable gave.
        assert calls == 1
        row = await conn.fetchrow("SELECT current_user, current_database(), pg_backend_pid()")
        assert tuple(row) == (pg_roles.md5, "postgres", conn.get_server_pid())
    finally:
        await conn.close()


async def test_uri_form_and_server_settings(pg_cluster, pg_roles):
    uri = (
        f"postgresql://{pg_roles.scram}:{pg_roles[pg_roles.scram]}@127.0.0.1:{pg_cluster.port}"
        f"/{pg_roles.database}?application_name=from-uri&sslmode=disable"
    )
    conn = await pgoxide.connect(
        uri, server_settings={"search_path": "pg_catalog", "work_mem": "5MB"}
    )
    try:
        assert await conn.fetchval("SHOW application_name") == "from-uri"
        assert await conn.fetchval("SHOW work_mem") == "5MB"
        assert await conn.fetchval("SHOW search_path") == "pg_catalog"
        assert await conn.fetchval("SELECT current_database()") == pg_roles.database
        assert conn.get_settings().client_encoding == "UTF8"
    finally:
        await conn.close()


async def test_unknown_keyword_is_an_error(dsn):
    with pytest.raises(TypeError, match="no_such_option"):
        await pgoxide.connect(dsn, no_such_option=1)
    with pytest.raises(
        exceptions.ClientConfigurationError, match='invalid connection option "bogus"'
    ):
        await pgoxide.connect(dsn + " bogus=1")


async def test_client_encoding_must_be_utf8(dsn):
    with pytest.raises(exceptions.ClientConfigurationError, match="UTF8"):
        await pgoxide.connect(dsn, client_encoding="LATIN1")


async def test_utf8_with_a_latin1_database(dsn, pg_cluster, pg_roles):
    async with await pgoxide.connect(dsn) as admin:
        await admin.execute("DROP DATABASE IF EXISTS pgx_latin1")
        await admin.execute(
            "CREATE DATABASE pgx_latin1 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'"
            " TEMPLATE template0"
        )
    latin1 = pg_cluster.dsn(user=pg_roles.trust, database="pgx_latin1")
    async with await pgoxide.connect(latin1) as conn:
        assert conn.get_settings().client_encoding == "UTF8"
        assert await conn.fetchval("SHOW server_encoding") == "LATIN1"
        assert await conn.fetchval("SELECT $1::text || 'ü'", "é") == "éü"


async def test_introspection(dsn, pg_cluster):
    conn = await pgoxide.connect(dsn)
    try:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        assert conn.get_server_pid() == pid
        version = conn.get_server_version()
        assert (version.major, version.minor) == pg_cluster.version
        assert version.releaselevel == "final"
        settings = conn.get_settings()
        assert settings.server_version.startswith(str(version.major))
        assert settings.integer_datetimes == "on"
        with pytest.raises(AttributeError):
            _ = settings.no_such_setting
    finally:
        await conn.close()


def test_parse_server_version():
    parse = pgoxide.connection.parse_server_version
    assert parse("15.18 (Debian 15.18-0+deb12u1)") == (15, 18, 0, "final", 0)
    assert parse("18beta1") == (18, 0, 0, "beta", 1)
    assert parse("9.6.24") == (9, 6, 24, "final", 0)
    assert parse("17devel") == (17, 0, 0, "devel", 0)


async def test_close_is_idempotent_and_async_with(dsn):
    closed = asyncio.Event()
    async with await pgoxide.connect(dsn) as conn:
        conn.add_termination_listener(lambda c: closed.set())
        assert not conn.is_closed()
    assert conn.is_closed()
    await conn.close()
    await asyncio.wait_for(closed.wait(), 30)
    with pytest.raises(exceptions.ConnectionDoesNotExistError):
        await conn.fetchval("SELECT 1")


async def test_verify_full_needs_a_root_certificate(pg_cluster, pg_roles):
    with pytest.raises(exceptions.ClientConfigurationError, match="root certificate file"):
        await pgoxide.connect(
            pg_cluster.dsn(user=pg_roles.trust),
            sslmode="verify-full",
            sslrootcert="/nonexistent/root.crt",
        )


async def test_tls_verify_full(pg_cluster, pg_roles, pg_certs):
    conn = await pgoxide.connect(
        pg_cluster.dsn(user=pg_roles.trust, host="localhost"),
        sslmode="verify-full",
        sslrootcert=str(pg_certs.ca_cert),
    )
    try:
        assert (await _whoami(conn))[1] is True
    finally:
        await conn.close()


async def test_ssl_context_argument(pg_cluster, pg_roles, pg_certs):
    import ssl

    ctx = ssl.create_default_context(cafile=str(pg_certs.ca_cert))
    conn = await pgoxide.connect(pg_cluster.dsn(user=pg_roles.trust, host="localhost"), ssl=ctx)
    try:
        assert (await _whoami(conn))[1] is True
    finally:
        await conn.close()


async def test_connect_refused_lists_hosts(pg_cluster, pg_roles):
    # A closed port first, then the real server: failover to the next host.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    conn = await pgoxide.connect(
        host=["127.0.0.1", "127.0.0.1"],
        port=[dead_port, pg_cluster.port],
        user=pg_roles.trust,
        dbname="postgres",
        sslmode="disable",
    )
    try:
        reached = await conn.fetchrow("SELECT inet_server_port(), current_user")
        assert tuple(reached) == (pg_cluster.port, pg_roles.trust)
    finally:
        await conn.close()
    with pytest.raises(exceptions.ConnectionFailedError, match=str(dead_port)):
        await pgoxide.connect(
            host=["127.0.0.1", "127.0.0.1"], port=[dead_port, dead_port], user="x"
        )


async def test_auth_failure_is_not_retried_on_next_host(pg_cluster, pg_roles):
    with pytest.raises(exceptions.InvalidPasswordError):
        await pgoxide.connect(
            host=["127.0.0.1", "127.0.0.1"],
            port=pg_cluster.port,
            user=pg_roles.scram,
            password="wrong",
            dbname="postgres",
        )


async def _silent_server() -> asyncio.AbstractServer:
    """Accepts TCP connections and never answers: a host that hangs during startup."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    return await asyncio.start_server(hold, "127.0.0.1", 0)


async def test_connect_timeout_moves_to_the_next_host(pg_cluster, pg_roles):
    silent = await _silent_server()
    silent_port = silent.sockets[0].getsockname()[1]
    try:
        conn = await pgoxide.connect(
            host=["127.0.0.1", "127.0.0.1"],
            port=[silent_port, pg_cluster.port],
            user=pg_roles.trust,
            dbname="postgres",
            sslmode="disable",
            connect_timeout=1,
        )
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
    finally:
        silent.close()


async def test_overall_timeout(pg_roles):
    silent = await _silent_server()
    try:
        with pytest.raises(asyncio.TimeoutError):
            await pgoxide.connect(
                host="127.0.0.1",
                port=silent.sockets[0].getsockname()[1],
                user=pg_roles.trust,
                sslmode="disable",
                timeout=0.5,
            )
    finally:
        silent.close()
