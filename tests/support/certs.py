"""Test certificates generated with ``cryptography``: a CA, a server and client certificates.

``sig`` picks the key type and signature algorithm: ``rsa-sha256`` (default),
``rsa-sha512``, ``rsa-sha1``, ``rsa-pss`` (RSA key, PSS/SHA-256 signature),
``rsa-pss-sha384`` (PSS/SHA-384), ``ecdsa-sha384`` (P-384) and ``ed25519``.  A CA's ``sig``
is used for its self-signature; a leaf's ``sig`` (default: the CA's) is both the signature
the CA puts on it and its own key type, so the signer's key must suit it (an RSA CA can sign
with any ``rsa-*``).  The server certificate's signature hash is what SCRAM channel binding
(tls-server-end-point) depends on.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "SIGNATURES",
    "CertKey",
    "CertPaths",
    "make_ca",
    "make_client_cert",
    "make_crl",
    "make_server_cert",
    "write_cert_key",
]

SIGNATURES = (
    "rsa-sha256",
    "ecdsa-sha384",
    "rsa-sha512",
    "rsa-pss",
    "rsa-pss-sha384",
    "rsa-sha1",
    "ed25519",
)

_PrivateKey = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey]


@dataclass(frozen=True)
class CertKey:
    """A PEM certificate and its PEM (PKCS#8, unencrypted) private key."""

    cert: bytes
    key: bytes
    sig: str = "rsa-sha256"


@dataclass(frozen=True)
class CertPaths:
    """Where :func:`write_cert_key` put a certificate and its key."""

    cert: Path
    key: Path


def make_ca(*, sig: str = "rsa-sha256", cn: str = "pgoxide test CA") -> CertKey:
    """A self-signed CA certificate."""
    key = _new_key(sig)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (
        _builder(name, name, key.public_key(), days=3650)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return _signed(builder, key, sig, key)


def make_server_cert(
    ca: CertKey,
    *,
    sig: str | None = None,
    dns_names: tuple[str, ...] = ("localhost",),
    ips: tuple[str, ...] = ("127.0.0.1",),
    cn: str = "localhost",
) -> CertKey:
    """A server certificate signed by ``ca``, valid for ``dns_names`` and ``ips``."""
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    return _leaf(ca, sig, cn, ExtendedKeyUsageOID.SERVER_AUTH, sans)


def make_client_cert(ca: CertKey, user: str, *, sig: str | None = None) -> CertKey:
    """A client certificate with CN=``user`` (what pg_hba's ``cert`` method matches)."""
    return _leaf(ca, sig, user, ExtendedKeyUsageOID.CLIENT_AUTH, [])


def make_crl(ca: CertKey, revoked: tuple[CertKey, ...] = ()) -> bytes:
    """A PEM certificate revocation list signed by ``ca`` (an RSA CA) revoking ``revoked``."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert)
    ca_key = serialization.load_pem_private_key(ca.key, password=None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - datetime.timedelta(hours=1))
        .next_update(now + datetime.timedelta(days=30))
    )
    for pair in revoked:
        serial = x509.load_pem_x509_certificate(pair.cert).serial_number
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(now - datetime.timedelta(minutes=30))
            .build()
        )
    crl = builder.sign(ca_key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.PEM)


def write_cert_key(pair: CertKey, directory: str | os.PathLike[str], stem: str) -> CertPaths:
    """Write ``<stem>.crt`` and ``<stem>.key`` (mode 0600, as libpq and the server demand)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cert = directory / f"{stem}.crt"
    key = directory / f"{stem}.key"
    cert.write_bytes(pair.cert)
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(fd, 0o600)  # an existing file keeps its mode otherwise
        f.write(pair.key)
    return CertPaths(cert=cert, key=key)


def _leaf(
    ca: CertKey,
    sig: str | None,
    cn: str,
    usage: x509.ObjectIdentifier,
    sans: list[x509.GeneralName],
) -> CertKey:
    sig = sig or ca.sig
    ca_cert = x509.load_pem_x509_certificate(ca.cert)
    ca_key = serialization.load_pem_private_key(ca.key, password=None)
    key = _new_key(sig)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (
        _builder(name, ca_cert.subject, key.public_key(), days=365)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            _key_usage(ca=False, rsa_key=isinstance(key, rsa.RSAPrivateKey)), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return _signed(builder, ca_key, sig, key)


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: object, *, days: int
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        # An hour of slack for clock differences between this process and the server.
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
    )


def _key_usage(*, ca: bool, rsa_key: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=rsa_key,  # meaningful for RSA key exchange only
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _new_key(sig: str) -> _PrivateKey:
    if sig not in SIGNATURES:
        raise ValueError(f"sig must be one of {SIGNATURES}, not {sig!r}")
    if sig.startswith("rsa-"):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if sig == "ecdsa-sha384":
        return ec.generate_private_key(ec.SECP384R1())
    return ed25519.Ed25519PrivateKey.generate()


def _signed(
    builder: x509.CertificateBuilder, signer: _PrivateKey, sig: str, key: _PrivateKey
) -> CertKey:
    if sig not in SIGNATURES:
        raise ValueError(f"sig must be one of {SIGNATURES}, not {sig!r}")
    wanted = {"ecdsa-sha384": ec.EllipticCurvePrivateKey, "ed25519": ed25519.Ed25519PrivateKey}
    if not isinstance(signer, wanted.get(sig, rsa.RSAPrivateKey)):
        raise ValueError(f"a {type(signer).__name__} cannot make a {sig} signature")
    algorithm: hashes.HashAlgorithm | None
    rsa_padding: padding.PSS | None = None
    if sig == "ed25519":
        algorithm = None
    elif sig in ("rsa-pss", "rsa-pss-sha384"):
        algorithm = hashes.SHA256() if sig == "rsa-pss" else hashes.SHA384()
        rsa_padding = padding.PSS(
            mgf=padding.MGF1(algorithm), salt_length=padding.PSS.DIGEST_LENGTH
        )
    else:
        # rsa-sha1 is signed with SHA-256 here and re-signed below.
        algorithm = {
            "rsa-sha256": hashes.SHA256(),
            "rsa-sha512": hashes.SHA512(),
            "rsa-sha1": hashes.SHA256(),
            "ecdsa-sha384": hashes.SHA384(),
        }[sig]
    cert = builder.sign(signer, algorithm, rsa_padding=rsa_padding)
    if sig == "rsa-sha1":
        assert isinstance(signer, rsa.RSAPrivateKey)
        cert = _resigned_sha1(cert, signer)
    return CertKey(
        cert=cert.public_bytes(serialization.Encoding.PEM),
        key=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        sig=sig,
    )


# AlgorithmIdentifier DER of sha256WithRSAEncryption and sha1WithRSAEncryption (NULL params).
_SHA256_RSA = bytes.fromhex("300d06092a864886f70d01010b0500")
_SHA1_RSA = bytes.fromhex("300d06092a864886f70d0101050500")


def _resigned_sha1(cert: x509.Certificate, signer: rsa.RSAPrivateKey) -> x509.Certificate:
    """``cert`` re-signed with SHA-1, which recent cryptography builders refuse."""
    tbs = cert.tbs_certificate_bytes
    # The first match is TBSCertificate.signature (a random serial cannot hold 15 such bytes).
    assert _SHA256_RSA in tbs
    tbs = tbs.replace(_SHA256_RSA, _SHA1_RSA, 1)
    signature = signer.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    return x509.load_der_x509_certificate(
        _der(0x30, tbs + _SHA1_RSA + _der(0x03, b"\0" + signature))
    )


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    length = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content
