"""Connection parameters, resolved the way libpq resolves them.

``parse_conninfo`` reads a ``key=value`` connection string or a ``postgresql://`` URI.
``resolve`` combines keyword arguments, a DSN, a service file, ``PG*`` environment
variables and libpq's defaults, then matches hosts to ports, looks passwords up in
``.pgpass`` and returns a :class:`ConnectParams`. Nothing here touches the network.
"""

from __future__ import annotations

import getpass
import ipaddress
import math
import os
import re
import stat
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

from . import _pgoxide
from .exceptions import ClientConfigurationError, InterfaceWarning

__all__ = [
    "KNOWN_KEYWORDS",
    "ConnectParams",
    "Target",
    "parse_conninfo",
    "protocol_versions",
    "resolve",
]

# (keyword, environment variable, compiled-in default), in libpq's PQconninfoOptions
# order. Defaults that libpq fills in later (sslcertmode, gssencmode) are listed here too:
# the result is the same and it keeps one table.
_OPTIONS: tuple[tuple[str, str | None, str | None], ...] = (
    ("service", "PGSERVICE", None),
    ("servicefile", "PGSERVICEFILE", None),
    ("user", "PGUSER", None),
    ("password", "PGPASSWORD", None),
    ("passfile", "PGPASSFILE", None),
    ("channel_binding", "PGCHANNELBINDING", "prefer"),
    ("connect_timeout", "PGCONNECT_TIMEOUT", None),
    ("dbname", "PGDATABASE", None),
    ("host", "PGHOST", None),
    ("hostaddr", "PGHOSTADDR", None),
    ("port", "PGPORT", "5432"),
    ("client_encoding", "PGCLIENTENCODING", None),
    ("options", "PGOPTIONS", ""),
    ("application_name", "PGAPPNAME", None),
    ("fallback_application_name", None, None),
    ("keepalives", None, None),
    ("keepalives_idle", None, None),
    ("keepalives_interval", None, None),
    ("keepalives_count", None, None),
    ("tcp_user_timeout", None, None),
    ("sslmode", "PGSSLMODE", "prefer"),
    ("sslnegotiation", "PGSSLNEGOTIATION", "postgres"),
    ("sslcompression", "PGSSLCOMPRESSION", "0"),
    ("sslcert", "PGSSLCERT", None),
    ("sslkey", "PGSSLKEY", None),
    ("sslcertmode", "PGSSLCERTMODE", "allow"),
    ("sslpassword", None, None),
    ("sslrootcert", "PGSSLROOTCERT", None),
    ("sslcrl", "PGSSLCRL", None),
    ("sslcrldir", "PGSSLCRLDIR", None),
    ("sslsni", "PGSSLSNI", "1"),
    ("sslkeylogfile", None, None),
    ("requirepeer", "PGREQUIREPEER", None),
    ("require_auth", "PGREQUIREAUTH", None),
    ("ssl_min_protocol_version", "PGSSLMINPROTOCOLVERSION", "TLSv1.2"),
    ("ssl_max_protocol_version", "PGSSLMAXPROTOCOLVERSION", None),
    ("min_protocol_version", "PGMINPROTOCOLVERSION", None),
    ("max_protocol_version", "PGMAXPROTOCOLVERSION", None),
    # No GSSAPI in pgoxide, so libpq's non-GSS default.
    ("gssencmode", "PGGSSENCMODE", "disable"),
    ("krbsrvname", "PGKRBSRVNAME", "postgres"),
    ("gsslib", "PGGSSLIB", None),
    ("gssdelegation", "PGGSSDELEGATION", "0"),
    ("replication", None, None),
    ("target_session_attrs", "PGTARGETSESSIONATTRS", "any"),
    ("load_balance_hosts", "PGLOADBALANCEHOSTS", "disable"),
    ("scram_client_key", None, None),
    ("scram_server_key", None, None),
    # pgoxide's own: the largest backend message the protocol core accepts.
    ("max_message_size", None, None),
)

KNOWN_KEYWORDS: frozenset[str] = frozenset([keyword for keyword, _, _ in _OPTIONS] + ["requiressl"])
"""Every keyword a connection string, URI query, service file or ``resolve()`` accepts.

``requiressl`` is accepted but rewritten to ``sslmode`` as libpq does."""

# A service file may set any option but these (libpq: requiressl is no real option there).
_SERVICE_KEYWORDS = KNOWN_KEYWORDS - {"service", "requiressl"}

# Keywords that end up in ConnectParams fields of their own rather than in `settings`.
_NOT_SETTINGS = frozenset(
    {
        "host",
        "hostaddr",
        "port",
        "user",
        "password",
        "passfile",
        "dbname",
        "service",
        "servicefile",
        "connect_timeout",
        "client_encoding",
        "options",
        "application_name",
        "fallback_application_name",
        "replication",
        "max_message_size",
        "requiressl",
    }
)
_SECRET_SETTINGS = ("sslpassword", "scram_client_key", "scram_server_key")
_SECRET_KEYWORDS = frozenset({"password", *_SECRET_SETTINGS})

# Environment variables libpq turns into startup-packet GUCs (fe-connect.c EnvironmentOptions).
_ENV_GUCS = (("PGDATESTYLE", "datestyle"), ("PGTZ", "timezone"), ("PGGEQO", "geqo"))

# libpq is compiled with one socket directory; distributions disagree on which, so take
# the first that exists. Module-level so tests can point it elsewhere.
_DEFAULT_SOCKET_DIRS: tuple[str, ...] = ("/run/postgresql", "/var/run/postgresql", "/tmp")
# libpq's compiled SYSCONFDIR as Debian/Ubuntu and PGDG packages build it.
_DEFAULT_SYSCONFDIR = "/etc/postgresql-common"
_DEFAULT_PORT = 5432
_DEFAULT_MAX_MESSAGE_SIZE = 1 << 30
_MAX_INT32 = (1 << 31) - 1

_URI_PREFIXES = ("postgresql://", "postgres://")
_C_SPACE = " \t\n\v\f\r"  # C isspace() in the C locale; str.isspace() is far wider
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
# strtol() as libpq's pqParseIntParam uses it: optional sign, ASCII digits, blanks around.
_C_INT = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+[ \t\n\v\f\r]*", re.ASCII)

_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_TLS_VERSIONS = ("tlsv1", "tlsv1.1", "tlsv1.2", "tlsv1.3")
_PROTOCOL_VERSIONS = {"3.0": (3, 0), "3.2": (3, 2), "latest": (3, 2)}
_REPLICATION = {
    **dict.fromkeys(("true", "on", "yes", "1"), "true"),
    **dict.fromkeys(("false", "off", "no", "0"), "false"),
    "database": "database",
}
_INTEGER_SETTINGS = (
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
)

_KWARG_NAMES = KNOWN_KEYWORDS | {"database", "server_settings"}
_LIST_KWARGS = frozenset({"host", "hostaddr", "port"})


# --------------------------------------------------------------------------------------
# Result types


@dataclass(frozen=True, repr=False)
class Target:
    """One host slot to try, after host/hostaddr/port matching."""

    host: str
    """DNS name, IP literal, or absolute Unix socket directory (``hostaddr`` if no host)."""
    hostaddr: str | None
    """Numeric address to connect to instead of resolving ``host``."""
    port: int
    password: str | None = None
    """The explicit password, else the one ``.pgpass`` gives for this slot, else None."""
    passfile: str | None = None
    """Path of the password file when ``password`` came from it."""

    @property
    def is_unix(self) -> bool:
        """True when this slot is a Unix-domain socket (``@`` marks an abstract one)."""
        return self.hostaddr is None and self.host.startswith(("/", "@"))

    @property
    def socket_path(self) -> str:
        """The socket file of a Unix target, ``{host}/.s.PGSQL.{port}``."""
        return f"{self.host}/.s.PGSQL.{self.port}"

    def __repr__(self) -> str:
        password = None if self.password is None else "***"
        return (
            f"Target(host={self.host!r}, hostaddr={self.hostaddr!r}, port={self.port!r}, "
            f"password={password!r}, passfile={self.passfile!r})"
        )


@dataclass(frozen=True, repr=False)
class ConnectParams:
    """Everything needed to open a connection, resolved with libpq's precedence."""

    targets: tuple[Target, ...]
    """Host slots in order (libpq's ``load_balance_hosts`` shuffling is the caller's job)."""
    user: str
    database: str
    startup: dict[str, str]
    """Startup-packet parameters besides user and database, in libpq's order."""
    connect_timeout: float | None
    """Seconds per host and address; None means wait forever."""
    settings: dict[str, str]
    """Every other resolved keyword (sslmode, channel_binding, ...) with defaults applied."""
    max_message_size: int = _DEFAULT_MAX_MESSAGE_SIZE

    def __repr__(self) -> str:
        settings = {
            key: ("***" if key in _SECRET_SETTINGS else value)
            for key, value in self.settings.items()
        }
        return (
            f"ConnectParams(targets={self.targets!r}, user={self.user!r}, "
            f"database={self.database!r}, startup={self.startup!r}, "
            f"connect_timeout={self.connect_timeout!r}, settings={settings!r}, "
            f"max_message_size={self.max_message_size!r})"
        )


# --------------------------------------------------------------------------------------
# Connection strings


def parse_conninfo(conninfo: str) -> dict[str, str]:
    """Parse a libpq connection string or ``postgresql://`` URI into keyword -> value.

    Values are the raw strings the string holds; nothing is defaulted. ``requiressl`` and
    the URI query ``ssl=true`` become ``sslmode`` as in libpq.

    Raises:
        ClientConfigurationError: the string is malformed or names an unknown keyword.
    """
    if not isinstance(conninfo, str):
        raise TypeError(f"conninfo must be a str, not {type(conninfo).__name__}")
    # A C string ends at NUL; silently truncating a DSN would be worse than refusing it.
    if "\0" in conninfo:
        raise ClientConfigurationError("connection info string contains a NUL character")
    if conninfo.startswith(_URI_PREFIXES):
        return _parse_uri(conninfo)
    return _parse_keyword_value(conninfo)


def _store(options: dict[str, str], keyword: str, value: str, *, uri: bool = False) -> None:
    """libpq's conninfo_storeval: the requiressl rewrite, then the known-keyword check."""
    if keyword == "requiressl":
        keyword, value = "sslmode", ("require" if value.startswith("1") else "prefer")
    if keyword not in KNOWN_KEYWORDS:
        if uri:
            raise ClientConfigurationError(f'invalid URI query parameter: "{keyword}"')
        raise ClientConfigurationError(f'invalid connection option "{keyword}"')
    options[keyword] = value


def _parse_keyword_value(text: str) -> dict[str, str]:
    """fe-connect.c conninfo_parse."""
    options: dict[str, str] = {}
    n = len(text)
    i = 0
    while i < n:
        if text[i] in _C_SPACE:
            i += 1
            continue
        start = i
        while i < n and text[i] != "=" and text[i] not in _C_SPACE:
            i += 1
        name = text[start:i]
        while i < n and text[i] in _C_SPACE:
            i += 1
        if i >= n or text[i] != "=":
            raise ClientConfigurationError(f'missing "=" after "{name}" in connection info string')
        i += 1
        while i < n and text[i] in _C_SPACE:
            i += 1

        chars: list[str] = []
        if i < n and text[i] == "'":
            i += 1
            while True:
                if i >= n:
                    raise ClientConfigurationError(
                        "unterminated quoted string in connection info string"
                    )
                c = text[i]
                if c == "\\":
                    i += 1
                    if i < n:
                        chars.append(text[i])
                        i += 1
                elif c == "'":
                    i += 1
                    break
                else:
                    chars.append(c)
                    i += 1
        else:
            while i < n:
                c = text[i]
                if c in _C_SPACE:
                    i += 1
                    break
                if c == "\\":
                    i += 1
                    if i < n:
                        chars.append(text[i])
                        i += 1
                else:
                    chars.append(c)
                    i += 1
        _store(options, name, "".join(chars))
    return options


def _uri_decode(component: str, *, secret: bool = False) -> str:
    """fe-connect.c conninfo_uri_decode (PG17+: outer spaces trimmed, inner ones refused).

    ``secret`` keeps a password out of the error message.
    """
    shown = "***" if secret else component
    n = len(component)
    i = 0
    while i < n and component[i] == " ":
        i += 1
    out = bytearray()
    while i < n:
        c = component[i]
        if c == "%":
            digits = component[i + 1 : i + 3]
            if len(digits) < 2 or not _HEX_DIGITS.issuperset(digits):
                raise ClientConfigurationError(f'invalid percent-encoded token: "{shown}"')
            byte = int(digits, 16)
            if byte == 0:
                raise ClientConfigurationError(
                    f'forbidden value %00 in percent-encoded value: "{shown}"'
                )
            out.append(byte)
            i += 3
        elif c == " ":
            break
        else:
            try:
                out += c.encode("utf-8")
            except UnicodeEncodeError:
                raise ClientConfigurationError(
                    f'invalid character in URI component: "{shown}"'
                ) from None
            i += 1
    j = i
    while j < n and component[j] == " ":
        j += 1
    if j < n:
        raise ClientConfigurationError(
            f'unexpected spaces found in "{shown}", use percent-encoded spaces (%20) instead'
        )
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        # libpq would keep the raw bytes; a str can't, and the session speaks UTF-8 anyway.
        raise ClientConfigurationError(
            f'percent-encoded value is not valid UTF-8: "{shown}"'
        ) from None


def _parse_uri(uri: str) -> dict[str, str]:
    """fe-connect.c conninfo_uri_parse_options."""
    options: dict[str, str] = {}
    n = len(uri)
    start = len(next(prefix for prefix in _URI_PREFIXES if uri.startswith(prefix)))

    # Userinfo runs to the first '@' unless a '/' comes first.
    p = start
    while p < n and uri[p] not in "@/":
        p += 1
    if p < n and uri[p] == "@":
        q = start
        while uri[q] not in ":@":
            q += 1
        if q > start:
            options["user"] = _uri_decode(uri[start:q])
        if uri[q] == ":":
            at = uri.index("@", q)
            if at > q + 1:
                options["password"] = _uri_decode(uri[q + 1 : at], secret=True)
            q = at
        p = q + 1
    else:
        p = start

    # host[:port][,host[:port]...]; ports are collected in a parallel comma list.
    hosts: list[str] = []
    ports: list[str] = []
    while True:
        if p < n and uri[p] == "[":
            p += 1
            host_start = p
            while p < n and uri[p] != "]":
                p += 1
            if p >= n:
                raise ClientConfigurationError(
                    'end of string reached when looking for matching "]" in IPv6 host '
                    f'address in URI: "{uri}"'
                )
            if p == host_start:
                raise ClientConfigurationError(
                    f'IPv6 host address may not be empty in URI: "{uri}"'
                )
            host = uri[host_start:p]
            p += 1
            if p < n and uri[p] not in ":/?,":
                raise ClientConfigurationError(
                    f'unexpected character "{uri[p]}" at position {p + 1} in URI '
                    f'(expected ":" or "/"): "{uri}"'
                )
        else:
            host_start = p
            while p < n and uri[p] not in ":/?,":
                p += 1
            host = uri[host_start:p]
        hosts.append(host)
        terminator = uri[p] if p < n else ""
        if terminator == ":":
            p += 1
            port_start = p
            while p < n and uri[p] not in "/?,":
                p += 1
            ports.append(uri[port_start:p])
            terminator = uri[p] if p < n else ""
        if terminator != ",":
            break
        p += 1
        hosts.append(",")
        ports.append(",")

    host_list = "".join(hosts)
    port_list = "".join(ports)
    if host_list:
        options["host"] = _uri_decode(host_list)
    if port_list:
        options["port"] = _uri_decode(port_list)

    if terminator == "/":
        p += 1
        db_start = p
        while p < n and uri[p] != "?":
            p += 1
        dbname = uri[db_start:p]
        terminator = uri[p] if p < n else ""
        # An empty dbname is left unset so PGDATABASE still applies.
        if dbname:
            options["dbname"] = _uri_decode(dbname)

    if terminator:
        _parse_uri_query(uri[p + 1 :], options)
    return options


def _parse_uri_query(query: str, options: dict[str, str]) -> None:
    """fe-connect.c conninfo_uri_parse_params."""
    n = len(query)
    i = 0
    while i < n:
        start = i
        equals = -1
        while True:
            if i < n and query[i] == "=":
                if equals >= 0:
                    raise ClientConfigurationError(
                        'extra key/value separator "=" in URI query parameter: '
                        f'"{query[start:equals]}"'
                    )
                equals = i
                i += 1
            elif i >= n or query[i] == "&":
                end = i
                if i < n:
                    i += 1
                if equals < 0:
                    raise ClientConfigurationError(
                        'missing key/value separator "=" in URI query parameter: '
                        f'"{query[start:end]}"'
                    )
                break
            else:
                i += 1
        keyword = _uri_decode(query[start:equals])
        value = _uri_decode(query[equals + 1 : end], secret=keyword in _SECRET_KEYWORDS)
        if keyword == "ssl" and value == "true":  # JDBC compatibility, as libpq
            keyword, value = "sslmode", "require"
        _store(options, keyword, value, uri=True)


# --------------------------------------------------------------------------------------
# Resolution


def resolve(
    dsn: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    home: str | None = None,
    **kwargs: object,
) -> ConnectParams:
    """Resolve connection parameters with libpq's precedence.

    Keyword arguments > ``dsn`` > service file > ``PG*`` environment > defaults. Accepts
    every name in :data:`KNOWN_KEYWORDS`, ``database`` (asyncpg's name for ``dbname``) and
    ``server_settings`` (extra startup parameters). None or an empty string means "not
    given", as in ``PQconnectdbParams``. ``environ`` and ``home`` default to the process
    environment and the user's home directory.

    Raises:
        TypeError: an unknown keyword argument or a value of the wrong type.
        ClientConfigurationError: an invalid value, DSN or service file.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    explicit, server_settings, timeout = _explicit_options(kwargs)

    options: dict[str, str] = {}
    if dsn is not None:
        if not isinstance(dsn, str):
            raise TypeError(f"dsn must be a str, not {type(dsn).__name__}")
        if dsn:
            options.update(parse_conninfo(dsn))
    options.update(explicit)

    if home is None:
        home = _home_directory(env)
    _apply_service(options, env, home)
    _apply_environment(options, env)
    return _finish(options, env, home, server_settings, timeout)


def _explicit_options(
    kwargs: Mapping[str, object],
) -> tuple[dict[str, str], dict[str, str], float | None]:
    """Keyword arguments as libpq option strings, plus server_settings and a numeric timeout."""
    options: dict[str, str] = {}
    server_settings: dict[str, str] = {}
    timeout: float | None = None
    requiressl: str | None = None
    for name, value in kwargs.items():
        if name not in _KWARG_NAMES:
            raise TypeError(f"connect() got an unexpected keyword argument {name!r}")
        if value is None:
            continue
        if name == "server_settings":
            server_settings = _server_settings(value)
            continue
        if (
            name == "connect_timeout"
            and isinstance(value, (int, float))
            and not isinstance(value, bool)
        ):
            if math.isnan(value):
                raise ClientConfigurationError(f'invalid connect_timeout value: "{value}"')
            timeout = float(value)
        text = _option_text(name, value)
        if not text:
            continue
        keyword = "dbname" if name == "database" else name
        if keyword == "dbname" and "dbname" in options:
            raise TypeError("connect() got both 'database' and 'dbname'")
        if keyword == "requiressl":
            requiressl = text
            continue
        options[keyword] = text
    if requiressl is not None and "sslmode" not in options:
        options["sslmode"] = "require" if requiressl.startswith("1") else "prefer"
    return options, server_settings, timeout


def _option_text(name: str, value: object) -> str:
    if name in _LIST_KWARGS and isinstance(value, (list, tuple)):
        text = ",".join(_list_item(name, item) for item in value)
    elif isinstance(value, bool):
        if name in _LIST_KWARGS:
            raise TypeError(f"connection option {name!r} must not be a bool")
        text = "1" if value else "0"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, (int, float)):
        text = str(value)
    elif isinstance(value, os.PathLike):
        text = os.fsdecode(os.fspath(value))
    else:
        raise TypeError(f"connection option {name!r} must be a str, not {type(value).__name__}")
    if "\0" in text:
        raise ClientConfigurationError(f'connection option "{name}" contains a NUL character')
    return text


def _list_item(name: str, item: object) -> str:
    if item is None:
        return ""
    if isinstance(item, bool):
        raise TypeError(f"items of connection option {name!r} must not be bools")
    if isinstance(item, (str, int)):
        return str(item)
    if isinstance(item, os.PathLike):
        return os.fsdecode(os.fspath(item))
    raise TypeError(
        f"items of connection option {name!r} must be str or int, not {type(item).__name__}"
    )


def _server_settings(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise TypeError(f"server_settings must be a dict, not {type(value).__name__}")
    settings: dict[str, str] = {}
    for key, setting in value.items():
        if not isinstance(key, str) or not isinstance(setting, str):
            raise TypeError("server_settings keys and values must be str")
        if not key or "\0" in key or "\0" in setting:
            raise ClientConfigurationError(f"invalid server_settings entry {key!r}")
        # These two are the startup packet's own fields; a second copy would be ambiguous.
        if key in ("user", "database"):
            raise ClientConfigurationError(
                f'server_settings may not set "{key}"; pass it as a connection parameter'
            )
        settings[key] = setting
    return settings


def _home_directory(env: Mapping[str, str]) -> str | None:
    """libpq's pqGetHomeDirectory: $HOME, else the password database (Windows: %APPDATA%)."""
    if os.name == "nt":
        appdata = env.get("APPDATA")
        return os.path.join(appdata, "postgresql") if appdata else None
    home = env.get("HOME")
    if home:
        return home
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_dir
    except (ImportError, KeyError, OSError):
        return None


def _apply_service(options: dict[str, str], env: Mapping[str, str], home: str | None) -> None:
    """fe-connect.c parseServiceInfo: fill unset options from the named service."""
    service = options.get("service")
    if service is None:
        service = env.get("PGSERVICE")
    if service is None:
        return

    user_file = options.get("servicefile")
    if user_file is None:
        user_file = env.get("PGSERVICEFILE")
    if user_file is not None:
        # A file named explicitly must exist; _read_service_file says so if it doesn't.
        if _read_service_file(user_file, service, options):
            return
    elif home:
        path = os.path.join(home, ".pg_service.conf")
        if os.path.exists(path) and _read_service_file(path, service, options):
            return

    sysconfdir = env.get("PGSYSCONFDIR")
    if sysconfdir is None:
        sysconfdir = _DEFAULT_SYSCONFDIR
    path = f"{sysconfdir}/pg_service.conf"
    if os.path.exists(path) and _read_service_file(path, service, options):
        return
    raise ClientConfigurationError(f'definition of service "{service}" not found')


def _read_service_file(path: str, service: str, options: dict[str, str]) -> bool:
    """fe-connect.c parseServiceFile; returns whether the service's group was found."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        raise ClientConfigurationError(f'service file "{path}" not found') from None

    wanted = service.encode("utf-8", "surrogatepass")
    c_space = _C_SPACE.encode()
    lines = data.split(b"\n")
    group_found = False
    for number, raw in enumerate(lines, 1):
        newline = number < len(lines)
        if not newline and not raw:
            break
        # libpq reads with fgets() into 1024 bytes: a line that fills the buffer is an error.
        if len(raw) + newline >= 1023:
            raise ClientConfigurationError(f'line {number} too long in service file "{path}"')
        line = raw.strip(c_space)
        if not line or line.startswith(b"#"):
            continue
        if line.startswith(b"["):
            if group_found:
                break  # end of the wanted group
            group_found = line[1 : 1 + len(wanted)] == wanted and (
                line[1 + len(wanted) : 2 + len(wanted)] == b"]"
            )
            continue
        if not group_found:
            continue
        key, equals, value = line.partition(b"=")
        if not equals:
            raise ClientConfigurationError(f'syntax error in service file "{path}", line {number}')
        if key == b"service":
            raise ClientConfigurationError(
                f'nested service specifications not supported in service file "{path}", '
                f"line {number}"
            )
        try:
            keyword = key.decode("ascii")
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            raise ClientConfigurationError(
                f'syntax error in service file "{path}", line {number}'
            ) from None
        if keyword not in _SERVICE_KEYWORDS:
            raise ClientConfigurationError(f'syntax error in service file "{path}", line {number}')
        # Never override an explicitly given option.
        options.setdefault(keyword, text)
    return group_found


def _apply_environment(options: dict[str, str], env: Mapping[str, str]) -> None:
    """fe-connect.c conninfo_add_defaults, after the service: environment, then defaults."""
    sslmode_defaulted = False
    for keyword, envvar, default in _OPTIONS:
        if keyword in options:
            continue
        if envvar is not None:
            value = env.get(envvar)
            if value is not None:
                options[keyword] = value
                continue
        if keyword == "sslmode":
            # Deprecated PGREQUIRESSL: a value starting with "1" means require.
            if env.get("PGREQUIRESSL", "").startswith("1"):
                options[keyword] = "require"
                continue
            sslmode_defaulted = True
        if default is not None:
            options[keyword] = default
    if sslmode_defaulted and options.get("sslrootcert") == "system":
        options["sslmode"] = "verify-full"


def _default_user(env: Mapping[str, str]) -> str:
    """getpass.getuser() over ``env``, then the password database."""
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        user = env.get(name)
        if user:
            return user
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError, OSError):
        pass
    try:
        return getpass.getuser()
    except Exception as exc:
        raise ClientConfigurationError(f"could not look up local user name: {exc}") from None


def _default_host() -> str:
    for directory in _DEFAULT_SOCKET_DIRS:
        if os.path.isdir(directory):
            return directory
    return "localhost"


def _c_int(text: str) -> int | None:
    """pqParseIntParam: a C int with optional surrounding blanks, else None."""
    if not _C_INT.fullmatch(text):
        return None
    value = int(text.strip(_C_SPACE))
    return value if -_MAX_INT32 - 1 <= value <= _MAX_INT32 else None


def _count_items(text: str) -> int:
    return text.count(",") + 1


def _finish(
    options: dict[str, str],
    env: Mapping[str, str],
    home: str | None,
    server_settings: dict[str, str],
    timeout: float | None,
) -> ConnectParams:
    """fe-connect.c pqConnectOptions2 plus build_startup_packet's choices."""
    hosts, hostaddrs, port_texts = _host_slots(options)
    ports = [_port_number(text) for text in port_texts]

    user = options.get("user") or _default_user(env)
    database = options.get("dbname") or user

    # Every value is checked before .pgpass is read, so a bad DSN costs no file access.
    _validate(options)
    settings = {key: value for key, value in options.items() if key not in _NOT_SETTINGS}
    startup = _startup(options, env, server_settings)
    connect_timeout = _connect_timeout(options, timeout)
    max_message_size = _max_message_size(options.get("max_message_size"))

    password = options.get("password") or None  # libpq: an empty password is no password
    passfile = None
    pgpass_lines: list[bytes] | None = None
    if password is None:
        passfile = options.get("passfile") or None
        if passfile is None and home:
            passfile = os.path.join(home, "pgpass.conf" if os.name == "nt" else ".pgpass")
        if passfile is not None:
            pgpass_lines = _read_pgpass(passfile)

    targets = []
    for host, hostaddr, port_text, port in zip(hosts, hostaddrs, port_texts, ports):
        slot_password = password
        slot_passfile = None
        if pgpass_lines is not None:
            # libpq matches the port as written, and the host name if given, else hostaddr.
            slot_password = _pgpass_lookup(
                pgpass_lines, host or hostaddr, port_text or str(_DEFAULT_PORT), database, user
            )
            if slot_password is not None:
                slot_passfile = passfile
        targets.append(
            Target(
                host=host or hostaddr,
                hostaddr=hostaddr or None,
                port=port,
                password=slot_password,
                passfile=slot_passfile,
            )
        )

    return ConnectParams(
        targets=tuple(targets),
        user=user,
        database=database,
        startup=startup,
        connect_timeout=connect_timeout,
        settings=settings,
        max_message_size=max_message_size,
    )


def _host_slots(options: Mapping[str, str]) -> tuple[list[str], list[str], list[str]]:
    """Split host, hostaddr and port into per-slot lists (libpq's multi-host rules)."""
    host = options.get("host") or ""
    hostaddr = options.get("hostaddr") or ""
    port = options.get("port") or ""

    if hostaddr:
        count = _count_items(hostaddr)
    elif host:
        count = _count_items(host)
    else:
        count = 1

    hostaddrs = hostaddr.split(",") if hostaddr else [""] * count
    if host:
        hosts = host.split(",")
        if len(hosts) != count:
            raise ClientConfigurationError(
                f"could not match {len(hosts)} host names to {count} hostaddr values"
            )
    else:
        hosts = [""] * count

    default_host = None
    for i, (name, address) in enumerate(zip(hosts, hostaddrs)):
        if address:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ClientConfigurationError(
                    f'could not parse network address "{address}": not a numeric address'
                ) from None
        elif not name:
            if default_host is None:
                default_host = _default_host()
            hosts[i] = default_host

    if port:
        ports = port.split(",")
        if len(ports) == 1:
            ports *= count
        elif len(ports) != count:
            raise ClientConfigurationError(
                f"could not match {len(ports)} port numbers to {count} hosts"
            )
    else:
        ports = [""] * count
    return hosts, hostaddrs, ports


def _port_number(text: str) -> int:
    if not text:
        return _DEFAULT_PORT
    number = _c_int(text)
    if number is None or not 1 <= number <= 65535:
        raise ClientConfigurationError(f'invalid port number: "{text}"')
    return number


def protocol_versions(settings: Mapping[str, str]) -> tuple[int, int, int, int]:
    """``(min major, min minor, max major, max minor)`` of the protocol versions to ask for
    and to accept, from validated settings. As libpq 18 (fe-connect.c pqConnectOptions2): the
    minimum is 3.0 unless set; the maximum, unless set, is 3.0 too (old servers and poolers
    may not know NegotiateProtocolVersion), or the latest if the minimum is above 3.0."""
    low = _PROTOCOL_VERSIONS[settings.get("min_protocol_version") or "3.0"]
    high_text = settings.get("max_protocol_version")
    if high_text:
        high = _PROTOCOL_VERSIONS[high_text]
    else:
        high = _PROTOCOL_VERSIONS["latest"] if low > (3, 0) else (3, 0)
    return (*low, *high)


def _invalid(keyword: str, value: str) -> ClientConfigurationError:
    return ClientConfigurationError(f'invalid {keyword} value: "{value}"')


def _validate(options: Mapping[str, str]) -> None:
    """The value checks of pqConnectOptions2, in its order."""

    def check(keyword: str, allowed: tuple[str, ...]) -> None:
        value = options.get(keyword)
        if value is not None and value not in allowed:
            raise _invalid(keyword, value)

    check("channel_binding", ("disable", "prefer", "require"))
    check("sslmode", _SSLMODES)
    sslmode = options["sslmode"]
    check("sslnegotiation", ("postgres", "direct"))
    if options.get("sslnegotiation") == "direct" and sslmode not in _SSLMODES[3:]:
        raise ClientConfigurationError(
            f'weak sslmode "{sslmode}" may not be used with sslnegotiation=direct '
            '(use "require", "verify-ca", or "verify-full")'
        )
    if options.get("sslrootcert") == "system" and sslmode != "verify-full":
        raise ClientConfigurationError(
            f'weak sslmode "{sslmode}" may not be used with sslrootcert=system (use "verify-full")'
        )

    tls_min = options.get("ssl_min_protocol_version") or ""
    tls_max = options.get("ssl_max_protocol_version") or ""
    for keyword, tls_version in (
        ("ssl_min_protocol_version", tls_min),
        ("ssl_max_protocol_version", tls_max),
    ):
        if tls_version and tls_version.lower() not in _TLS_VERSIONS:
            raise ClientConfigurationError(f'invalid "{keyword}" value: "{tls_version}"')
    # sslVerifyProtocolRange: a TLSv1 minimum allows any maximum; otherwise the lower-cased
    # names sort in version order and a TLSv1 maximum is always below the minimum.
    low, high = tls_min.lower(), tls_max.lower()
    if low and high and low != "tlsv1" and (high == "tlsv1" or low > high):
        raise ClientConfigurationError("invalid SSL protocol version range")

    check("sslcertmode", ("disable", "allow", "require"))
    check("gssencmode", ("disable", "prefer", "require"))
    if options.get("gssencmode") == "require":
        raise ClientConfigurationError(
            'gssencmode value "require" invalid when GSSAPI support is not compiled in'
        )
    check(
        "target_session_attrs",
        ("any", "read-write", "read-only", "primary", "standby", "prefer-standby"),
    )
    check("load_balance_hosts", ("disable", "random"))

    versions = {}
    for keyword in ("min_protocol_version", "max_protocol_version"):
        value = options.get(keyword)
        if value:
            if value not in _PROTOCOL_VERSIONS:
                raise _invalid(keyword, value)
            versions[keyword] = _PROTOCOL_VERSIONS[value]
    if len(versions) == 2 and versions["min_protocol_version"] > versions["max_protocol_version"]:
        raise ClientConfigurationError("min_protocol_version is greater than max_protocol_version")

    require_auth = options.get("require_auth")
    if require_auth:
        try:
            _pgoxide.check_require_auth(require_auth)
        except ValueError as e:
            raise ClientConfigurationError(str(e)) from None

    for keyword in _INTEGER_SETTINGS:
        value = options.get(keyword)
        if value and _c_int(value) is None:
            raise ClientConfigurationError(
                f'invalid integer value "{value}" for connection option "{keyword}"'
            )


def _startup(
    options: Mapping[str, str], env: Mapping[str, str], server_settings: Mapping[str, str]
) -> dict[str, str]:
    """fe-protocol3.c build_startup_packet, minus user and database, plus server_settings."""
    startup: dict[str, str] = {}
    replication = options.get("replication")
    if replication:
        normalised = _REPLICATION.get(replication.lower())
        if normalised is None:
            raise _invalid("replication", replication)
        startup["replication"] = normalised
    if options.get("options"):
        startup["options"] = options["options"]
    # As libpq: an application_name that is set but empty suppresses the fallback too.
    appname = options.get("application_name")
    if appname is None:
        appname = options.get("fallback_application_name")
    if appname:
        startup["application_name"] = appname
    if options.get("client_encoding"):
        startup["client_encoding"] = options["client_encoding"]
    for envvar, guc in _ENV_GUCS:
        value = env.get(envvar)
        if value is not None and value.lower() != "default":
            startup[guc] = value
    startup.update(server_settings)
    return startup


def _connect_timeout(options: Mapping[str, str], timeout: float | None) -> float | None:
    if timeout is None:
        text = options.get("connect_timeout")
        if not text:
            return None
        seconds = _c_int(text)
        if seconds is None:
            raise ClientConfigurationError(
                f'invalid integer value "{text}" for connection option "connect_timeout"'
            )
        timeout = float(seconds)
    if timeout <= 0 or math.isinf(timeout):
        return None
    return timeout


def _max_message_size(text: str | None) -> int:
    if not text:
        return _DEFAULT_MAX_MESSAGE_SIZE
    size = _c_int(text)
    if size is None or size <= 0:
        raise _invalid("max_message_size", text)
    return size


# --------------------------------------------------------------------------------------
# .pgpass


def _read_pgpass(path: str) -> list[bytes] | None:
    """The lines of a usable password file, or None (libpq ignores unusable ones)."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    if os.name == "posix":
        if not stat.S_ISREG(info.st_mode):
            warnings.warn(
                f'password file "{path}" is not a plain file', InterfaceWarning, stacklevel=4
            )
            return None
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.warn(
                f'password file "{path}" has group or world access; '
                "permissions should be u=rw (0600) or less",
                InterfaceWarning,
                stacklevel=4,
            )
            return None
    try:
        with open(path, "rb") as f:
            return f.read().split(b"\n")
    except OSError:
        return None


def _pgpass_field(line: bytes, pos: int, token: bytes) -> int | None:
    """fe-connect.c pwdfMatchesString: the offset after a matching field, else None."""
    if line[pos : pos + 2] == b"*:":
        return pos + 2
    n = len(line)
    t = 0
    while pos < n:
        escaped = False
        if line[pos] == 0x5C:  # backslash
            pos += 1
            escaped = True
            if pos >= n:
                return None
        if line[pos] == 0x3A and t == len(token) and not escaped:  # unescaped ':'
            return pos + 1
        if t == len(token) or line[pos] != token[t]:
            return None
        pos += 1
        t += 1
    return None


def _pgpass_fields(line: bytes, tokens: list[bytes]) -> int | None:
    """The offset after the line's first fields if they match ``tokens``, else None."""
    pos = 0
    for token in tokens:
        after = _pgpass_field(line, pos, token)
        if after is None:
            return None
        pos = after
    return pos


def _pgpass_lookup(
    lines: list[bytes], host: str, port: str, database: str, user: str
) -> str | None:
    """fe-connect.c passwordFromFile over already-read lines; the first match wins."""
    if not host or host in _DEFAULT_SOCKET_DIRS:
        host = "localhost"
    tokens = [value.encode("utf-8", "surrogatepass") for value in (host, port, database, user)]
    for raw in lines:
        if raw.startswith(b"#"):
            continue
        line = raw.rstrip(b"\r\n")
        if not line:
            continue
        pos = _pgpass_fields(line, tokens)
        if pos is None:
            continue
        # The password runs to the first unescaped ':'; backslash escapes one character.
        password = bytearray()
        rest = line[pos:]
        i = 0
        while i < len(rest) and rest[i] != 0x3A:
            if rest[i] == 0x5C and i + 1 < len(rest):
                i += 1
            password.append(rest[i])
            i += 1
        try:
            text = password.decode("utf-8")
        except UnicodeDecodeError:
            raise ClientConfigurationError("password file entry is not valid UTF-8") from None
        return text or None
    return None
