"""Writes server certificates and what the Rust core must conclude from them.

For ``rust/pgoxide-proto/tests/certificate_vectors.rs``: one DER file per certificate in
``rust/pgoxide-proto/tests/certs/`` and ``vectors.txt`` with one expectation per line:

    hash <file> <sha224|sha256|sha384|sha512> <hex digest of the DER>   channel-binding data
    hash <file> error <substring of the error>
    host <file> <host> ok                                               verify-full check
    host <file> <host> error <the whole error message>

The expected hash algorithms are RFC 5929 §4.1 as PostgreSQL applies it (MD5 and SHA-1 become
SHA-256, RSASSA-PSS uses the hash in its parameters, Ed25519 has none); the digests come from
``hashlib``, and the host-name expectations from libpq's rules (fe-secure-openssl.c).

    python tools/gen_cert_vectors.py
"""

from __future__ import annotations

import hashlib
import pathlib
import sys

from cryptography import x509
from cryptography.hazmat.primitives import serialization

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.certs import CertKey, make_ca, make_server_cert  # noqa: E402

OUT = ROOT / "rust/pgoxide-proto/tests/certs"

# Signature -> the hash tls-server-end-point must use.
HASHES = {
    "rsa-sha256": "sha256",
    "ecdsa-sha384": "sha384",
    "rsa-sha512": "sha512",
    "rsa-pss": "sha256",
    "rsa-pss-sha384": "sha384",
    "rsa-sha1": "sha256",
}


def der(pair: CertKey) -> bytes:
    return x509.load_pem_x509_certificate(pair.cert).public_bytes(serialization.Encoding.DER)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    rsa_ca = make_ca()

    for sig, algorithm in HASHES.items():
        ca = make_ca(sig="ecdsa-sha384") if sig == "ecdsa-sha384" else rsa_ca
        data = der(make_server_cert(ca, sig=sig))
        (OUT / f"{sig}.der").write_bytes(data)
        lines.append(f"hash {sig}.der {algorithm} {hashlib.new(algorithm, data).hexdigest()}")
    ed_ca = make_ca(sig="ed25519")
    (OUT / "ed25519.der").write_bytes(der(make_server_cert(ed_ca, sig="ed25519")))
    lines.append("hash ed25519.der error signed with Ed25519")

    # DNS and IP SANs: the CN is ignored for DNS hosts, wildcards cover one label.
    sans = der(
        make_server_cert(
            rsa_ca,
            dns_names=("db.example.com", "*.wild.example.com"),
            ips=("127.0.0.1", "::1"),
            cn="cn.example.com",
        )
    )
    (OUT / "sans.der").write_bytes(sans)
    for host in ("db.example.com", "DB.Example.COM", "x.wild.example.com", "127.0.0.1", "::1"):
        lines.append(f"host sans.der {host} ok")
    mismatch = (
        'server certificate for "db.example.com" (and 3 other names) does not match host name "{}"'
    )
    for host in ("a.b.wild.example.com", "wild.example.com", "cn.example.com", "10.0.0.1"):
        lines.append(f"host sans.der {host} error {mismatch.format(host)}")

    # No SAN at all: the CN decides, for DNS names and IP addresses alike.
    cn_only = der(make_server_cert(rsa_ca, dns_names=(), ips=(), cn="cn.example.com"))
    (OUT / "cn-only.der").write_bytes(cn_only)
    lines.append("host cn-only.der cn.example.com ok")
    for host in ("other.example.com", "127.0.0.1"):
        lines.append(
            f'host cn-only.der {host} error server certificate for "cn.example.com" '
            f'does not match host name "{host}"'
        )

    # IP SANs only: a DNS host has no SAN of its kind, so the CN counts for it.
    ip_only = der(make_server_cert(rsa_ca, dns_names=(), ips=("127.0.0.1",), cn="cn.example.com"))
    (OUT / "ip-only.der").write_bytes(ip_only)
    lines.append("host ip-only.der cn.example.com ok")
    lines.append("host ip-only.der 127.0.0.1 ok")
    lines.append(
        'host ip-only.der 127.0.0.2 error server certificate for "127.0.0.1" '
        'does not match host name "127.0.0.2"'
    )

    (OUT / "vectors.txt").write_text("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} vectors to {OUT}")


if __name__ == "__main__":
    main()
