"""TLS as libpq does it: every sslmode against servers with TLS on and off and against
hostssl/hostnossl lines, root certificates (present, missing, system), host names, SNI,
protocol versions, client certificates, CRLs, direct TLS (PostgreSQL 17) and the guards
against a tampered SSLRequest answer."""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pgoxide
import pytest
from cryptography.hazmat.primitives import serialization
from pgoxide import establish, exceptions
from pgoxide.cluster import Cluster
from support.certs import make_ca, make_crl, make_server_cert, write_cert_key
from support.pgbinaries import BinariesUnavailable, server_bindir

SERVER_SAYS_NO_SSL = "server does not support SSL, but SSL was required"


@pytest.fixture(autouse=True)
def empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME without ~/.postgresql, so no default root or client certificate applies."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture(scope="module")
def plain_cluster() -> Iterator[Cluster]:
    """A server with TLS off."""
    with Cluster(settings={"ssl": "off"}) as cluster:
        yield cluster


async def _ssl_in_use(conn: pgoxide.Connection) -> bool:
    return bool(await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))


async def _outcome(dsn: str, **kwargs: object) -> str:
    """'tls', 'plain', or the class name of the error connecting raised."""
    try:
        conn = await pgoxide.connect(dsn, **kwargs)
    except Exception as e:
        return type(e).__name__
    try:
        return "tls" if await _ssl_in_use(conn) else "plain"
    finally:
        await conn.close()


# role kind -> expected outcome per sslmode, with the CA as sslrootcert (libpq's table, plus
# the retry with the other method after a pg_hba refusal for allow and prefer).
_ON_TLS_SERVER = {
    "any": {
        "disable": "plain",
        "allow": "plain",
        "prefer": "tls",
        "require": "tls",
        "verify-ca": "tls",
        "verify-full": "tls",
    },
    "ssl_only": {
        "disable": "InvalidAuthorizationSpecificationError",
        "allow": "tls",
        "prefer": "tls",
        "require": "tls",
        "verify-ca": "tls",
        "verify-full": "tls",
    },
    "no_ssl": {
        "disable": "plain",
        "allow": "plain",
        "prefer": "plain",
        "require": "InvalidAuthorizationSpecificationError",
        "verify-ca": "InvalidAuthorizationSpecificationError",
        "verify-full": "InvalidAuthorizationSpecificationError",
    },
}


@pytest.mark.parametrize("sslmode", list(_ON_TLS_SERVER["any"]))
@pytest.mark.parametrize("kind", list(_ON_TLS_SERVER))
async def test_sslmode_against_a_tls_server(pg_cluster, pg_roles, pg_certs, kind, sslmode):
    user = {"any": pg_roles.trust, "ssl_only": pg_roles.ssl_only, "no_ssl": pg_roles.no_ssl}
    dsn = pg_cluster.dsn(user=user[kind], sslmode=sslmode, sslrootcert=str(pg_certs.ca_cert))
    assert await _outcome(dsn) == _ON_TLS_SERVER[kind][sslmode]


@pytest.mark.parametrize(
    ("sslmode", "expected"),
    [
        ("disable", "plain"),
        ("allow", "plain"),
        ("prefer", "plain"),
        ("require", "ConnectionError"),
        ("verify-ca", "ConnectionError"),
        ("verify-full", "ConnectionError"),
    ],
)
async def test_sslmode_against_a_server_without_tls(plain_cluster, pg_certs, sslmode, expected):
    dsn = plain_cluster.dsn(sslmode=sslmode, sslrootcert=str(pg_certs.ca_cert))
    assert await _outcome(dsn) == expected
    if expected == "ConnectionError":
        with pytest.raises(ConnectionError, match=SERVER_SAYS_NO_SSL):
            await pgoxide.connect(dsn)


def _install_root(home: Path, pem: bytes) -> None:
    directory = home / ".postgresql"
    directory.mkdir(exist_ok=True)
    (directory / "root.crt").write_bytes(pem)


async def test_a_present_root_certificate_makes_require_verify(pg_cluster, pg_roles, empty_home):
    dsn = pg_cluster.dsn(user=pg_roles.trust)
    # ~/.postgresql/root.crt of another CA: require now verifies, and fails.
    _install_root(empty_home, make_ca(cn="some other CA").cert)
    with pytest.raises(ssl.SSLCertVerificationError):
        await pgoxide.connect(dsn, sslmode="require")
    # prefer falls back to plaintext after the failed handshake, as libpq does.
    assert await _outcome(dsn, sslmode="prefer") == "plain"


async def test_the_right_root_certificate_in_home(pg_cluster, pg_roles, pg_certs, empty_home):
    _install_root(empty_home, pg_certs.ca.cert)
    assert await _outcome(pg_cluster.dsn(user=pg_roles.trust), sslmode="require") == "tls"


async def test_verify_modes_need_a_root_certificate(pg_cluster, pg_roles):
    for mode in ("verify-ca", "verify-full"):
        with pytest.raises(exceptions.ClientConfigurationError, match="root certificate file"):
            await pgoxide.connect(pg_cluster.dsn(user=pg_roles.trust), sslmode=mode)


async def test_sslrootcert_system(pg_cluster, pg_roles, pg_certs, monkeypatch, tmp_path):
    dsn = pg_cluster.dsn(user=pg_roles.trust, host="localhost", sslrootcert="system")
    # OpenSSL's default store honours SSL_CERT_FILE: point it at the test CA, then at another.
    monkeypatch.setenv("SSL_CERT_FILE", str(pg_certs.ca_cert))
    assert await _outcome(dsn) == "tls"  # sslmode defaults to verify-full
    other = tmp_path / "other-ca.pem"
    other.write_bytes(make_ca(cn="not ours").cert)
    monkeypatch.setenv("SSL_CERT_FILE", str(other))
    with pytest.raises(ssl.SSLCertVerificationError):
        await pgoxide.connect(dsn)
    with pytest.raises(exceptions.ClientConfigurationError, match='weak sslmode "require"'):
        await pgoxide.connect(dsn, sslmode="require")


@pytest.mark.parametrize("sslsni", ["1", "0"])
async def test_verify_full_checks_the_host_name(pg_cluster, pg_roles, pg_certs, sslsni):
    common = dict(
        user=pg_roles.trust, sslmode="verify-full", sslrootcert=str(pg_certs.ca_cert), sslsni=sslsni
    )
    for host in ("localhost", "127.0.0.1"):
        assert await _outcome(pg_cluster.dsn(host=host, **common)) == "tls"
    # hostaddr connects; host is what the certificate must name.
    wrong = pg_cluster.dsn(host="db.example.com", hostaddr="127.0.0.1", **common)
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        await pgoxide.connect(wrong)
    assert str(info.value) == (
        'server certificate for "localhost" (and 1 other name) does not match host name '
        '"db.example.com"'
    )
    # verify-ca does not look at names.
    assert await _outcome(wrong, sslmode="verify-ca") == "tls"


async def _sni_recorder(pg_certs) -> tuple[asyncio.AbstractServer, list[str | None]]:
    """A TLS endpoint that answers SSLRequest with 'S' and records the SNI of the handshake
    (PostgreSQL does not show what it received)."""
    seen: list[str | None] = []
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pg_certs.server_cert, pg_certs.server_key)
    ctx.set_alpn_protocols(["postgresql"])
    ctx.sni_callback = lambda _obj, name, _ctx: seen.append(name)
    loop = asyncio.get_running_loop()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readexactly(8)
            writer.write(b"S")
            await writer.drain()
            await loop.start_tls(
                writer.transport, writer.transport.get_protocol(), ctx, server_side=True
            )
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        writer.transport.abort()

    return await asyncio.start_server(handle, "127.0.0.1", 0), seen


@pytest.mark.parametrize(
    ("host", "sslsni", "expected"),
    [("localhost", "1", "localhost"), ("localhost", "0", None), ("127.0.0.1", "1", None)],
)
async def test_sni(pg_certs, host, sslsni, expected):
    server, seen = await _sni_recorder(pg_certs)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(exceptions.ConnectionDoesNotExistError):
            await pgoxide.connect(
                host=host,
                hostaddr="127.0.0.1",
                port=port,
                user="u",
                sslmode="require",
                sslsni=sslsni,
            )
    finally:
        server.close()
    assert seen == [expected]


@pytest.mark.parametrize(
    ("settings", "version"),
    [
        ({"ssl_max_protocol_version": "TLSv1.2"}, "TLSv1.2"),
        ({"ssl_min_protocol_version": "TLSv1.3"}, "TLSv1.3"),
    ],
)
async def test_protocol_versions(pg_cluster, pg_roles, settings, version):
    conn = await pgoxide.connect(pg_cluster.dsn(user=pg_roles.trust, sslmode="require", **settings))
    try:
        assert (
            await conn.fetchval("SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            == version
        )
    finally:
        await conn.close()


def _encrypted_client_key(pg_certs, directory: Path, passphrase: bytes) -> Path:
    key = serialization.load_pem_private_key(pg_certs.client.key, password=None)
    path = directory / "client-encrypted.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
    )
    path.chmod(0o600)
    return path


async def test_client_certificate_authentication(pg_cluster, pg_roles, pg_certs, tmp_path):
    key = _encrypted_client_key(pg_certs, tmp_path, b"key-secret")
    dsn = pg_cluster.dsn(
        user=pg_roles.cert,
        sslmode="verify-full",
        host="localhost",
        sslrootcert=str(pg_certs.ca_cert),
        sslcert=str(pg_certs.client_cert),
        sslkey=str(key),
    )
    conn = await pgoxide.connect(dsn, sslpassword="key-secret")
    try:
        assert await conn.fetchval("SELECT current_user") == pg_roles.cert
        assert await _ssl_in_use(conn)
    finally:
        await conn.close()
    with pytest.raises(exceptions.ClientConfigurationError, match="could not load SSL certificate"):
        await pgoxide.connect(dsn, sslpassword="wrong")
    # No certificate at all: the cert line refuses the connection.
    with pytest.raises(exceptions.InvalidAuthorizationSpecificationError):
        await pgoxide.connect(dsn, sslcertmode="disable")


async def test_client_key_permissions_are_checked(pg_cluster, pg_roles, pg_certs, tmp_path):
    paths = write_cert_key(pg_certs.client, tmp_path, "client")
    paths.key.chmod(0o644)
    with pytest.raises(exceptions.ClientConfigurationError, match="has group or world access"):
        await pgoxide.connect(
            pg_cluster.dsn(user=pg_roles.cert, sslmode="require"),
            sslcert=str(paths.cert),
            sslkey=str(paths.key),
        )


async def test_certificate_revocation_list(pg_cluster, pg_roles, pg_certs, tmp_path):
    dsn = pg_cluster.dsn(
        user=pg_roles.trust, sslmode="verify-ca", sslrootcert=str(pg_certs.ca_cert)
    )
    revoked = tmp_path / "revoked.crl"
    revoked.write_bytes(make_crl(pg_certs.ca, (pg_certs.server,)))
    with pytest.raises(ssl.SSLCertVerificationError, match="revoked"):
        await pgoxide.connect(dsn, sslcrl=str(revoked))
    clean = tmp_path / "clean.crl"
    clean.write_bytes(make_crl(pg_certs.ca))
    assert await _outcome(dsn, sslcrl=str(clean)) == "tls"


@pytest.fixture
def crl_directory(pg_certs, tmp_path: Path) -> Path:
    """A directory holding a CRL that revokes the server certificate, named by its issuer
    hash as OpenSSL looks it up."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to name CRL files by their issuer hash")
    crl = tmp_path / "revoked.crl"
    crl.write_bytes(make_crl(pg_certs.ca, (pg_certs.server,)))
    issuer_hash = subprocess.run(
        [openssl, "crl", "-hash", "-noout", "-in", str(crl)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    directory = tmp_path / "crls"
    directory.mkdir()
    (directory / f"{issuer_hash}.r0").write_bytes(crl.read_bytes())
    return directory


async def test_certificate_revocation_list_directory(pg_cluster, pg_roles, pg_certs, crl_directory):
    directory = crl_directory
    dsn = pg_cluster.dsn(
        user=pg_roles.trust, sslmode="verify-ca", sslrootcert=str(pg_certs.ca_cert)
    )
    with pytest.raises(ssl.SSLCertVerificationError, match="revoked"):
        await pgoxide.connect(dsn, sslcrldir=str(directory))


async def test_an_ssl_context_makes_tls_mandatory(plain_cluster, pg_certs):
    ctx = ssl.create_default_context(cafile=str(pg_certs.ca_cert))
    with pytest.raises(ConnectionError, match=SERVER_SAYS_NO_SSL):
        await pgoxide.connect(plain_cluster.dsn(), ssl=ctx)


async def _answering(answer: bytes) -> tuple[asyncio.AbstractServer, int]:
    """A peer that answers SSLRequest with ``answer`` and then waits."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(8)
        writer.write(answer)
        await writer.drain()
        await reader.read()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_bytes_after_the_ssl_answer_are_refused():
    # A man in the middle appending plaintext after 'S' (CVE-2021-23222).
    server, port = await _answering(b"SR\x00\x00\x00\x08\x00\x00\x00\x00")
    try:
        with pytest.raises(ConnectionError, match="received unencrypted data after SSL response"):
            await pgoxide.connect(host="127.0.0.1", port=port, user="u", sslmode="require")
    finally:
        server.close()


async def test_an_error_answer_to_sslrequest_is_not_shown():
    # The server is not authenticated yet: its words are not trusted (CVE-2024-10977).
    server, port = await _answering(b"EFATAL: please send your password to attacker.example\n")
    try:
        with pytest.raises(ConnectionError) as info:
            await pgoxide.connect(host="127.0.0.1", port=port, user="u", sslmode="prefer")
    finally:
        server.close()
    assert str(info.value) == "server sent an error response during SSL exchange"


def test_alpn_rules():
    establish._check_alpn("postgresql", direct=True)
    establish._check_alpn(None, direct=False)
    with pytest.raises(ConnectionError, match="without ALPN"):
        establish._check_alpn(None, direct=True)
    with pytest.raises(ConnectionError, match="unexpected ALPN protocol"):
        establish._check_alpn("h2", direct=False)


# -- direct TLS (PostgreSQL 17+) ------------------------------------------------------------


@pytest.fixture(scope="module")
def pg17_cluster(pg_certs) -> Iterator[Cluster]:
    try:
        bindir = server_bindir(17)
    except BinariesUnavailable as e:
        pytest.skip(str(e))
    server = make_server_cert(pg_certs.ca)
    with Cluster(
        bindir=bindir,
        settings={"ssl": "on", "ssl_cert_file": "server.crt", "ssl_key_file": "server.key"},
        files={"server.crt": server.cert, "server.key": server.key},
    ) as cluster:
        yield cluster


@pytest.fixture
async def pg17_conn_factory(pg17_cluster) -> AsyncIterator[object]:
    opened: list[pgoxide.Connection] = []

    async def open_(**kwargs: object) -> pgoxide.Connection:
        conn = await pgoxide.connect(pg17_cluster.dsn(), **kwargs)
        opened.append(conn)
        return conn

    yield open_
    for conn in opened:
        await conn.close()


async def test_direct_tls(pg17_cluster, pg17_conn_factory, pg_certs):
    assert pg17_cluster.version >= (17, 0)
    conn = await pg17_conn_factory(sslmode="require", sslnegotiation="direct")
    assert await _ssl_in_use(conn)
    ssl_object = conn._protocol.transport.get_extra_info("ssl_object")
    assert ssl_object.selected_alpn_protocol() == "postgresql"
    # asyncpg's spelling, and verify-full through a direct handshake.
    conn = await pg17_conn_factory(
        direct_tls=True, sslmode="verify-full", host="localhost", sslrootcert=str(pg_certs.ca_cert)
    )
    assert await _ssl_in_use(conn)


async def test_direct_tls_needs_a_strong_sslmode(pg17_cluster):
    with pytest.raises(exceptions.ClientConfigurationError, match="weak sslmode"):
        await pgoxide.connect(pg17_cluster.dsn(sslmode="prefer", sslnegotiation="direct"))


async def test_direct_tls_to_a_server_that_predates_it(plain_cluster):
    # No TLS on the other end: the handshake fails and, under require, nothing else is tried.
    # The server reads the ClientHello as a startup packet of absurd length and hangs up
    # without a word: asyncio reports a connection lost mid-handshake as ConnectionResetError.
    with pytest.raises(ConnectionResetError):
        await pgoxide.connect(plain_cluster.dsn(sslmode="require", sslnegotiation="direct"))


def test_key_file_rules(tmp_path):
    from pgoxide.tls import _check_key_file

    key = tmp_path / "k"
    key.write_bytes(b"x")
    key.chmod(0o600)
    _check_key_file(str(key))
    key.chmod(0o640)
    with pytest.raises(exceptions.ClientConfigurationError):
        _check_key_file(str(key))
    with pytest.raises(exceptions.ClientConfigurationError, match="not a regular file"):
        _check_key_file(str(tmp_path))
    with pytest.raises(exceptions.ClientConfigurationError, match="could not open"):
        _check_key_file(os.path.join(str(tmp_path), "missing"))
