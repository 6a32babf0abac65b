"""TLS client contexts built from libpq's ssl* settings."""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping

from .exceptions import ClientConfigurationError

_TLS_VERSIONS = {
    "tlsv1": ssl.TLSVersion.TLSv1,
    "tlsv1.1": ssl.TLSVersion.TLSv1_1,
    "tlsv1.2": ssl.TLSVersion.TLSv1_2,
    "tlsv1.3": ssl.TLSVersion.TLSv1_3,
}

# libpq offers this ALPN protocol on every handshake; PostgreSQL 17+ servers reject TLS
# clients that offer ALPN without it.
ALPN_PROTOCOL = "postgresql"


def _default_path(home: str | None, name: str) -> str | None:
    home = home or os.path.expanduser("~")
    return os.path.join(home, ".postgresql", name) if home and home != "~" else None


def client_context(
    settings: Mapping[str, str], *, home: str | None = None
) -> tuple[ssl.SSLContext | None, bool]:
    """The context for ``settings['sslmode']`` and whether TLS is mandatory.

    Returns ``(None, False)`` for ``disable`` and ``allow`` (plaintext first). As in libpq,
    ``prefer`` and ``require`` verify the server's chain when a root certificate file is
    present, and ``verify-full`` also checks the host name.
    """
    mode = settings.get("sslmode", "prefer")
    if mode in ("disable", "allow"):
        return None, False
    rootcert = settings.get("sslrootcert") or _default_path(home, "root.crt")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if rootcert == "system":
        ctx.load_default_certs()
        ctx.verify_mode = ssl.CERT_REQUIRED
    elif rootcert and os.path.exists(rootcert):
        ctx.load_verify_locations(cafile=rootcert)
        ctx.verify_mode = ssl.CERT_REQUIRED
    elif mode in ("verify-ca", "verify-full"):
        raise ClientConfigurationError(
            f'root certificate file "{rootcert}" does not exist\n'
            "Either provide the file, use the system's trusted roots with sslrootcert=system, "
            "or change sslmode to disable server certificate verification."
        )
    else:
        ctx.verify_mode = ssl.CERT_NONE
    ctx.check_hostname = mode == "verify-full"
    cert = settings.get("sslcert") or _default_path(home, "postgresql.crt")
    key = settings.get("sslkey") or _default_path(home, "postgresql.key")
    if cert and os.path.exists(cert):
        ctx.load_cert_chain(cert, key, password=settings.get("sslpassword") or None)
    low = settings.get("ssl_min_protocol_version", "TLSv1.2").lower()
    ctx.minimum_version = _TLS_VERSIONS[low]
    high = settings.get("ssl_max_protocol_version")
    if high:
        ctx.maximum_version = _TLS_VERSIONS[high.lower()]
    ctx.set_alpn_protocols([ALPN_PROTOCOL])
    return ctx, mode in ("require", "verify-ca", "verify-full")
