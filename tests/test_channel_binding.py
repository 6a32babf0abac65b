"""SCRAM-SHA-256-PLUS with tls-server-end-point against a real server, for server
certificates of every signature algorithm: the server accepts the binding only if pgoxide
hashed the certificate as it does. Plus channel_binding's refusals, in libpq's words."""

from __future__ import annotations

from collections.abc import Iterator

import pgoxide
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pgoxide import exceptions
from pgoxide.cluster import Cluster
from support.certs import CertKey, make_ca, make_server_cert

# Every test here talks to ``cb_cluster``, a server of its own.
pytestmark = pytest.mark.integration

SCRAM, MD5, TRUST = "cb_scram", "cb_md5", "cb_trust"
PASSWORD = "binding-pw"


@pytest.fixture(scope="module")
def cb_cluster() -> Iterator[Cluster]:
    """A TLS server whose certificate the tests replace (and reload) as they need."""
    first = make_server_cert(make_ca())
    hba = [
        "local all all trust",
        f"host all {SCRAM} 127.0.0.1/32 scram-sha-256",
        f"host all {MD5} 127.0.0.1/32 md5",
        f"host all {TRUST} 127.0.0.1/32 trust",
    ]
    bootstrap = f"""
        SET password_encryption = 'scram-sha-256';
        CREATE ROLE {SCRAM} LOGIN PASSWORD '{PASSWORD}';
        SET password_encryption = 'md5';
        CREATE ROLE {MD5} LOGIN PASSWORD '{PASSWORD}';
        CREATE ROLE {TRUST} LOGIN;
    """
    with Cluster(
        settings={"ssl": "on", "ssl_cert_file": "server.crt", "ssl_key_file": "server.key"},
        hba=hba,
        files={"server.crt": first.cert, "server.key": first.key},
        bootstrap_sql=bootstrap,
    ) as cluster:
        yield cluster


def _install(cluster: Cluster, sig: str) -> CertKey:
    """Gives the server a fresh certificate signed with ``sig``."""
    ca_sig = {"ecdsa-sha384": "ecdsa-sha384", "ed25519": "ed25519"}.get(sig, "rsa-sha256")
    pair = make_server_cert(make_ca(sig=ca_sig), sig=sig)
    cluster.write_file("server.crt", pair.cert)
    cluster.write_file("server.key", pair.key)
    cluster.reload()
    return pair


async def _served_certificate(cluster: Cluster) -> bytes:
    conn = await pgoxide.connect(cluster.dsn(user=TRUST, sslmode="require"))
    try:
        return conn._protocol.transport.get_extra_info("ssl_object").getpeercert(True)
    finally:
        await conn.close()


def _der(pair: CertKey) -> bytes:
    return x509.load_pem_x509_certificate(pair.cert).public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize(
    "sig", ["rsa-sha256", "ecdsa-sha384", "rsa-sha512", "rsa-pss", "rsa-pss-sha384", "rsa-sha1"]
)
async def test_channel_binding_for_each_signature_algorithm(cb_cluster, sig):
    pair = _install(cb_cluster, sig)
    if await _served_certificate(cb_cluster) != _der(pair):
        assert sig == "rsa-sha1", f"the server did not take the {sig} certificate"
        pytest.skip(
            "needs a server whose OpenSSL accepts a SHA-1-signed certificate (this one refused it)"
        )
    conn = await pgoxide.connect(
        cb_cluster.dsn(user=SCRAM, sslmode="require", channel_binding="require"),
        password=PASSWORD,
    )
    try:
        assert await conn.fetchval("SELECT current_user") == SCRAM
    finally:
        await conn.close()


async def test_ed25519_certificates_cannot_bind(cb_cluster):
    pair = _install(cb_cluster, "ed25519")
    assert await _served_certificate(cb_cluster) == _der(pair)
    dsn = cb_cluster.dsn(user=SCRAM, sslmode="require")
    # libpq fails too once it picks -PLUS, and prefer picks it: no silent downgrade.
    for mode in ("prefer", "require"):
        with pytest.raises(exceptions.InterfaceError, match="signed with Ed25519"):
            await pgoxide.connect(dsn, password=PASSWORD, channel_binding=mode)
    conn = await pgoxide.connect(dsn, password=PASSWORD, channel_binding="disable")
    await conn.close()


@pytest.mark.parametrize(
    ("user", "sslmode", "message"),
    [
        (
            MD5,
            "require",
            "channel binding required but not supported by server's authentication request",
        ),
        (
            TRUST,
            "require",
            "channel binding required, but server authenticated client without channel binding",
        ),
        (SCRAM, "disable", "channel binding required, but SSL not in use"),
    ],
)
async def test_channel_binding_require_refusals(cb_cluster, user, sslmode, message):
    _install(cb_cluster, "rsa-sha256")
    with pytest.raises(exceptions.AuthenticationPolicyError) as info:
        await pgoxide.connect(
            cb_cluster.dsn(user=user, sslmode=sslmode, channel_binding="require"),
            password=PASSWORD,
        )
    assert str(info.value) == message


async def test_prefer_binds_when_it_can_and_authenticates_otherwise(cb_cluster):
    _install(cb_cluster, "ecdsa-sha384")
    methods: list[str] = []
    for sslmode in ("require", "disable"):
        conn = await pgoxide.connect(cb_cluster.dsn(user=SCRAM, sslmode=sslmode), password=PASSWORD)
        methods.append(conn.auth_method)
        await conn.close()
    assert methods == ["scram-sha-256-plus", "scram-sha-256"]
