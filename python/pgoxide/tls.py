"""TLS for a connection, decided from libpq's ssl* settings (or an ``ssl.SSLContext``)."""

from __future__ import annotations

import ipaddress
import os
import ssl
import stat
from collections.abc import Mapping
from dataclasses import dataclass

from .exceptions import ClientConfigurationError

__all__ = ["ALPN_PROTOCOL", "TLSPolicy", "policy"]

_TLS_VERSIONS = {
    "tlsv1": ssl.TLSVersion.TLSv1,
    "tlsv1.1": ssl.TLSVersion.TLSv1_1,
    "tlsv1.2": ssl.TLSVersion.TLSv1_2,
    "tlsv1.3": ssl.TLSVersion.TLSv1_3,
}

# libpq offers this ALPN protocol on every handshake; PostgreSQL 17+ servers reject TLS
# clients that offer ALPN without it, and require it for direct TLS.
ALPN_PROTOCOL = "postgresql"

# The encryption methods tried on each address, in order, per sslmode (libpq's
# init_allowed_encryption_methods without GSSAPI).
_METHODS: Mapping[str, tuple[str, ...]] = {
    "disable": ("plain",),
    "allow": ("plain", "tls"),
    "prefer": ("tls", "plain"),
    "require": ("tls",),
    "verify-ca": ("tls",),
    "verify-full": ("tls",),
}


@dataclass(frozen=True)
class TLSPolicy:
    """How connections to TCP hosts are secured."""

    methods: tuple[str, ...]
    """``"tls"`` and ``"plain"`` in the order to try them on each address."""
    context: ssl.SSLContext | None
    """The context for ``"tls"`` (None when only plaintext is allowed)."""
    direct: bool = False
    """``sslnegotiation=direct``: the TLS handshake starts at once, without SSLRequest."""
    verify_host: bool = False
    """``verify-full``: pgoxide checks the host name against the certificate, as libpq does."""
    send_sni: bool = True
    """``sslsni``: send the host name in the handshake (never for IP addresses)."""
    caller_context: bool = False
    """The context came from the caller, who decides its host-name checking."""

    def server_hostname(self, host: str) -> str:
        """The ``server_hostname`` for the handshake with ``host``; ``""`` sends no SNI
        (asyncio's transports then set none)."""
        if self.caller_context:
            return host
        if not self.send_sni or _is_ip(host):
            return ""
        return host


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def policy(
    settings: Mapping[str, str],
    context: ssl.SSLContext | None = None,
    *,
    home: str | None = None,
) -> TLSPolicy:
    """The TLS policy for ``settings`` (resolved libpq keywords), or for the caller's
    ``context``, which makes TLS mandatory as in asyncpg. Raises ClientConfigurationError for
    settings libpq would refuse (a missing root certificate under verify-*, an unreadable or
    unprotected client key, ...)."""
    direct = settings.get("sslnegotiation", "postgres") == "direct"
    if context is not None:
        if direct:
            # Direct TLS needs the ALPN protocol; negotiated TLS leaves the context alone.
            _offer_alpn(context)
        return TLSPolicy(("tls",), context, direct=direct, caller_context=True)
    mode = settings.get("sslmode", "prefer")
    methods = _METHODS[mode]
    if "tls" not in methods:
        return TLSPolicy(methods, None)
    return TLSPolicy(
        methods,
        _context(settings, mode, home),
        direct=direct,
        verify_host=mode == "verify-full",
        send_sni=settings.get("sslsni", "1") != "0",
    )


def _default_path(home: str | None, name: str) -> str | None:
    home = home or os.path.expanduser("~")
    return os.path.join(home, ".postgresql", name) if home and home != "~" else None


def _context(settings: Mapping[str, str], mode: str, home: str | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # pgoxide checks the host name itself (libpq's rules, and independent of SNI).
    ctx.check_hostname = False
    rootcert = settings.get("sslrootcert") or _default_path(home, "root.crt")
    if rootcert == "system":
        ctx.load_default_certs()
        ctx.verify_mode = ssl.CERT_REQUIRED
    elif rootcert and os.path.exists(rootcert):
        # As in libpq, a root certificate that is present is used under every sslmode.
        _load(ctx.load_verify_locations, "root certificate", rootcert, cafile=rootcert)
        ctx.verify_mode = ssl.CERT_REQUIRED
        _load_crl(ctx, settings, home)
    elif mode in ("verify-ca", "verify-full"):
        raise ClientConfigurationError(
            f'root certificate file "{rootcert}" does not exist\n'
            "Either provide the file, use the system's trusted roots with sslrootcert=system, "
            "or change sslmode to disable server certificate verification."
        )
    else:
        ctx.verify_mode = ssl.CERT_NONE
    certmode = settings.get("sslcertmode", "allow")
    if certmode == "require":
        raise ClientConfigurationError(
            'sslcertmode value "require" is not supported: Python\'s ssl module cannot tell '
            "whether the server asked for a client certificate"
        )
    if certmode != "disable":
        _load_client_certificate(ctx, settings, home)
    low = settings.get("ssl_min_protocol_version") or "TLSv1.2"
    ctx.minimum_version = _TLS_VERSIONS[low.lower()]
    high = settings.get("ssl_max_protocol_version")
    if high:
        ctx.maximum_version = _TLS_VERSIONS[high.lower()]
    _offer_alpn(ctx)
    return ctx


def _offer_alpn(ctx: ssl.SSLContext) -> None:
    ctx.set_alpn_protocols([ALPN_PROTOCOL])


def _load(load: object, what: str, path: str, **kwargs: str) -> None:
    try:
        load(**kwargs)  # type: ignore[operator]
    except (OSError, ssl.SSLError) as e:
        raise ClientConfigurationError(f'could not read {what} file "{path}": {e}') from e


def _load_crl(ctx: ssl.SSLContext, settings: Mapping[str, str], home: str | None) -> None:
    """sslcrl / sslcrldir, else ~/.postgresql/root.crl if present; the whole chain is checked."""
    crl = settings.get("sslcrl")
    crldir = settings.get("sslcrldir")
    if not crl and not crldir:
        default = _default_path(home, "root.crl")
        crl = default if default and os.path.exists(default) else None
    loaded = False
    if crl:
        _load(ctx.load_verify_locations, "SSL certificate revocation list", crl, cafile=crl)
        loaded = True
    if crldir:
        _load(
            ctx.load_verify_locations,
            "SSL certificate revocation list directory",
            crldir,
            capath=crldir,
        )
        loaded = True
    if loaded:
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN


def _load_client_certificate(
    ctx: ssl.SSLContext, settings: Mapping[str, str], home: str | None
) -> None:
    cert = settings.get("sslcert") or _default_path(home, "postgresql.crt")
    if not cert or not os.path.exists(cert):
        return
    key = settings.get("sslkey") or _default_path(home, "postgresql.key") or cert
    _check_key_file(key)
    secret = (settings.get("sslpassword") or "").encode()
    try:
        # A callable, so an encrypted key without sslpassword fails instead of prompting.
        ctx.load_cert_chain(cert, key, password=lambda: secret)
    except (OSError, ssl.SSLError) as e:
        raise ClientConfigurationError(
            f'could not load SSL certificate "{cert}" with key "{key}": {e}'
        ) from e


def _check_key_file(path: str) -> None:
    """libpq's rule: a regular file, 0600 or less if owned by us, 0640 or less if by root."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise ClientConfigurationError(
            f'could not open private key file "{path}": {e.strerror}'
        ) from e
    if not stat.S_ISREG(st.st_mode):
        raise ClientConfigurationError(f'private key file "{path}" is not a regular file')
    if os.name == "nt":
        return
    if st.st_uid == os.geteuid():
        forbidden = stat.S_IRWXG | stat.S_IRWXO
    elif st.st_uid == 0:
        forbidden = stat.S_IWGRP | stat.S_IXGRP | stat.S_IRWXO
    else:
        forbidden = 0
    if st.st_mode & forbidden:
        raise ClientConfigurationError(
            f'private key file "{path}" has group or world access; file must have '
            "permissions u=rw (0600) or less if owned by the current user, or permissions "
            "u=rw,g=r (0640) or less if owned by root"
        )
