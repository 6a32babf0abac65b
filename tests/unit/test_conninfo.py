"""Connection strings, URIs, precedence, .pgpass and service files, checked against libpq."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pgoxide.conninfo as conninfo
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pgoxide.conninfo import (
    KNOWN_KEYWORDS,
    ConnectParams,
    Target,
    parse_conninfo,
    resolve,
)
from pgoxide.exceptions import ClientConfigurationError

pytestmark = pytest.mark.unit

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file permissions")


@pytest.fixture
def socket_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A default socket directory that exists, so defaults don't depend on this machine."""
    directory = tmp_path / "socket"
    directory.mkdir()
    monkeypatch.setattr(conninfo, "_DEFAULT_SOCKET_DIRS", (str(directory),))
    return str(directory)


@pytest.fixture
def run(tmp_path: Path, socket_dir: str) -> Any:
    """resolve() with an environment and home of the test's own."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)

    def run(dsn: str | None = None, env: dict[str, str] | None = None, **kwargs: Any):
        environ = {"USER": "alice", "PGSYSCONFDIR": str(tmp_path / "no-sysconf")}
        environ.update(env or {})
        return resolve(dsn, environ=environ, home=str(home), **kwargs)

    return run


def raises(message: str) -> Any:
    """pytest.raises for an exact ClientConfigurationError message."""
    return pytest.raises(ClientConfigurationError, match=f"^{re.escape(message)}$")


# --- keyword/value grammar ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        (" \t\n ", {}),
        ("host=localhost", {"host": "localhost"}),
        ("host = localhost  port\t=\n5432", {"host": "localhost", "port": "5432"}),
        ("password='with space'", {"password": "with space"}),
        (r"password='it\'s \\ ok'", {"password": "it's \\ ok"}),
        (r"password=a\ b\'c\\d", {"password": "a b'c\\d"}),
        ("password=b'c", {"password": "b'c"}),
        ("password=''", {"password": ""}),
        ("password='' user=x", {"password": "", "user": "x"}),
        ("host='a'port=5", {"host": "a", "port": "5"}),  # libpq needs no blank after a quote
        ("host=a host=b", {"host": "b"}),
        ("requiressl=1", {"sslmode": "require"}),
        ("requiressl=1x", {"sslmode": "require"}),
        ("requiressl=0", {"sslmode": "prefer"}),
        ("sslmode=disable requiressl=1", {"sslmode": "require"}),
        ("requiressl=1 sslmode=disable", {"sslmode": "disable"}),
        ("options='-c geqo=off'", {"options": "-c geqo=off"}),
        (
            "host=\u00e9t\u00e9 dbname=\u65e5\u672c",
            {"host": "\u00e9t\u00e9", "dbname": "\u65e5\u672c"},
        ),
        ("max_message_size=1024 servicefile=/x", {"max_message_size": "1024", "servicefile": "/x"}),
        # Only C isspace() separates: a no-break space is part of the value.
        ("host=a\u00a0b", {"host": "a\u00a0b"}),
    ],
)
def test_keyword_value(text: str, expected: dict[str, str]) -> None:
    assert parse_conninfo(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("host", 'missing "=" after "host" in connection info string'),
        ("host localhost", 'missing "=" after "host" in connection info string'),
        ("mydb", 'missing "=" after "mydb" in connection info string'),
        ("postgre://", 'missing "=" after "postgre://" in connection info string'),
        ("host='abc", "unterminated quoted string in connection info string"),
        ("host='abc\\'", "unterminated quoted string in connection info string"),
        ("foo=bar", 'invalid connection option "foo"'),
        ("=bar", 'invalid connection option ""'),
        ("ssl=true", 'invalid connection option "ssl"'),
        ("Host=x", 'invalid connection option "Host"'),
        ("host=a\0b", "connection info string contains a NUL character"),
    ],
)
def test_keyword_value_errors(text: str, message: str) -> None:
    with raises(message):
        parse_conninfo(text)


def test_parse_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="invalid connection option"):
        parse_conninfo("nope=1")
    with pytest.raises(TypeError):
        parse_conninfo(b"host=x")  # type: ignore[arg-type]


# --- URI grammar (cases from libpq's src/interfaces/libpq/t/001_uri.pl and more) ---------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            "postgresql://uri-user:secret@host:12345/db",
            {
                "user": "uri-user",
                "password": "secret",
                "host": "host",
                "port": "12345",
                "dbname": "db",
            },
        ),
        ("postgresql://uri-user@host/db", {"user": "uri-user", "host": "host", "dbname": "db"}),
        (
            "postgresql://uri-user@host:12345/",
            {"user": "uri-user", "host": "host", "port": "12345"},
        ),
        ("postgresql://uri-user@", {"user": "uri-user"}),
        ("postgresql://host:12345", {"host": "host", "port": "12345"}),
        ("postgresql://host/", {"host": "host"}),
        ("postgresql://", {}),
        ("postgres://", {}),
        ("postgres:///", {}),
        ("postgres:///db", {"dbname": "db"}),
        ("postgres://uri-user@/db", {"user": "uri-user", "dbname": "db"}),
        ("postgresql://?hostaddr=127.0.0.1", {"hostaddr": "127.0.0.1"}),
        (
            "postgresql://example.com?hostaddr=63.1.2.4",
            {"host": "example.com", "hostaddr": "63.1.2.4"},
        ),
        ("postgresql://%68ost/", {"host": "host"}),
        (
            "postgresql://host/db?u%73er=someotheruser&port=12345",
            {"host": "host", "dbname": "db", "user": "someotheruser", "port": "12345"},
        ),
        (
            "postgresql://host?  user = uri-user & port  = 12345 ",
            {"host": "host", "user": "uri-user", "port": "12345"},
        ),
        ("postgresql://host?", {"host": "host"}),
        ("postgresql://[::1]:12345/db", {"host": "::1", "port": "12345", "dbname": "db"}),
        ("postgresql://[2001:db8::1234]/", {"host": "2001:db8::1234"}),
        ("postgresql://[200z:db8::1234]/", {"host": "200z:db8::1234"}),
        ("postgres://?host=/path/to/socket/dir", {"host": "/path/to/socket/dir"}),
        ("postgres://@host", {"host": "host"}),
        ("postgres://host:/", {"host": "host"}),
        ("postgres://:12345/", {"port": "12345"}),
        (
            "postgres://otheruser@:12345?host=/no/such/socket/path",
            {"user": "otheruser", "port": "12345", "host": "/no/such/socket/path"},
        ),
        (
            "postgres://%2Fvar%2Flib%2Fpostgresql/dbname",
            {"host": "/var/lib/postgresql", "dbname": "dbname"},
        ),
        ("postgres://%40abstract/db", {"host": "@abstract", "dbname": "db"}),
        # Multiple hosts: ports are a parallel list, empty where a host has none.
        ("postgresql://h1:1,h2,h3:3/db", {"host": "h1,h2,h3", "port": "1,,3", "dbname": "db"}),
        ("postgresql://h1,h2", {"host": "h1,h2", "port": ","}),
        ("postgresql://[::1]:1,[fe80::2],h:3", {"host": "::1,fe80::2,h", "port": "1,,3"}),
        ("postgresql://,", {"host": ",", "port": ","}),
        # Userinfo: ':' splits user from password; '@', '/', ':' in them must be encoded.
        (
            "postgresql://u%3Ax:p%40ss%2Fw:rd@h",
            {"user": "u:x", "password": "p@ss/w:rd", "host": "h"},
        ),
        ("postgresql://:pw@h", {"password": "pw", "host": "h"}),
        ("postgresql://u:@h", {"user": "u", "host": "h"}),
        ("postgresql://h/db/with/slashes", {"host": "h", "dbname": "db/with/slashes"}),
        ("postgresql://h/a%20b+c", {"host": "h", "dbname": "a b+c"}),  # '+' is not a space
        ("postgresql://h/%C3%A9t%C3%A9", {"host": "h", "dbname": "\u00e9t\u00e9"}),
        ("postgresql://h/\u00e9t\u00e9", {"host": "h", "dbname": "\u00e9t\u00e9"}),
        ("postgresql://h?host=other&port=1", {"host": "other", "port": "1"}),  # query wins
        ("postgresql://h?ssl=true", {"host": "h", "sslmode": "require"}),
        ("postgresql://h?requiressl=1", {"host": "h", "sslmode": "require"}),
        (
            "postgresql://h?options=-c%20x%3Dy&application_name=",
            {"host": "h", "options": "-c x=y", "application_name": ""},
        ),
        ("postgresql://h?port=1&", {"host": "h", "port": "1"}),
        ("postgresql://h?max_message_size=4096", {"host": "h", "max_message_size": "4096"}),
    ],
)
def test_uri(uri: str, expected: dict[str, str]) -> None:
    assert parse_conninfo(uri) == expected


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("postgresql://host/db?u%7aer=x", 'invalid URI query parameter: "uzer"'),
        ("postgresql://host?uzer=", 'invalid URI query parameter: "uzer"'),
        ("postgresql://host?ssl=false", 'invalid URI query parameter: "ssl"'),
        ("postgresql://host?foo=1", 'invalid URI query parameter: "foo"'),
        (
            "postgresql://host?  user user  =  uri  & port = 12345 12 ",
            'unexpected spaces found in "  user user  ", use percent-encoded spaces (%20) instead',
        ),
        (
            "postgresql://host?  user  =  uri-user  & port = 12345 12 ",
            'unexpected spaces found in " 12345 12 ", use percent-encoded spaces (%20) instead',
        ),
        (
            "postgres://[::1",
            'end of string reached when looking for matching "]" in IPv6 host address in URI: '
            '"postgres://[::1"',
        ),
        ("postgres://[]", 'IPv6 host address may not be empty in URI: "postgres://[]"'),
        (
            "postgres://[::1]z",
            'unexpected character "z" at position 17 in URI (expected ":" or "/"): '
            '"postgres://[::1]z"',
        ),
        ("postgresql://host?zzz", 'missing key/value separator "=" in URI query parameter: "zzz"'),
        (
            "postgresql://host?value1&value2",
            'missing key/value separator "=" in URI query parameter: "value1"',
        ),
        (
            "postgresql://h?port=1&&dbname=2",
            'missing key/value separator "=" in URI query parameter: ""',
        ),
        (
            "postgresql://host?key=key=value",
            'extra key/value separator "=" in URI query parameter: "key"',
        ),
        ("postgres://host?dbname=%XXfoo", 'invalid percent-encoded token: "%XXfoo"'),
        ("postgresql://a%00b", 'forbidden value %00 in percent-encoded value: "a%00b"'),
        ("postgresql://%zz", 'invalid percent-encoded token: "%zz"'),
        ("postgresql://%1", 'invalid percent-encoded token: "%1"'),
        ("postgresql://%", 'invalid percent-encoded token: "%"'),
        ("postgresql://h/%FF", 'percent-encoded value is not valid UTF-8: "%FF"'),
        (
            "postgresql://h/a b",
            'unexpected spaces found in "a b", use percent-encoded spaces (%20) instead',
        ),
    ],
)
def test_uri_errors(uri: str, message: str) -> None:
    with raises(message):
        parse_conninfo(uri)


def test_uri_errors_do_not_show_the_password() -> None:
    for uri in ("postgresql://u:hunter2%zz@h", "postgresql://h?password=hunter2%00"):
        with pytest.raises(ClientConfigurationError) as info:
            parse_conninfo(uri)
        assert "hunter2" not in str(info.value)


# --- hypothesis properties ---------------------------------------------------------------------

# Anything a C string can hold that a str can encode.
_VALUE = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\0"))
_ROUNDTRIP_KEYWORDS = sorted(KNOWN_KEYWORDS - {"requiressl"})  # requiressl is rewritten


def _quote_kv(value: str, quoted: bool) -> str:
    if quoted or not value:
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    # Unquoted: a backslash escapes the blanks that would end the value, and a leading quote.
    escaped = "".join("\\" + c if c in " \t\n\v\f\r\\" else c for c in value)
    return "\\" + escaped if escaped.startswith("'") else escaped


@given(
    st.dictionaries(st.sampled_from(_ROUNDTRIP_KEYWORDS), st.tuples(_VALUE, st.booleans())),
    st.sampled_from([" ", "  ", "\t", "\n "]),
)
def test_keyword_value_round_trip(options: dict[str, tuple[str, bool]], sep: str) -> None:
    text = sep.join(f"{key}={_quote_kv(value, quoted)}" for key, (value, quoted) in options.items())
    assert parse_conninfo(text) == {key: value for key, (value, _) in options.items()}


@given(st.dictionaries(st.sampled_from(_ROUNDTRIP_KEYWORDS), _VALUE))
def test_uri_query_round_trip(options: dict[str, str]) -> None:
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in options.items())
    assert parse_conninfo(f"postgresql://?{query}") == options


@given(
    user=_VALUE,
    password=_VALUE,
    dbname=_VALUE,
    hosts=st.lists(st.tuples(_VALUE, st.none() | st.integers(1, 65535)), min_size=1, max_size=4),
)
def test_uri_authority_round_trip(
    user: str, password: str, dbname: str, hosts: list[tuple[str, int | None]]
) -> None:
    hostspec = ",".join(
        quote(host, safe="") + ("" if port is None else f":{port}") for host, port in hosts
    )
    uri = f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{hostspec}"
    uri += f"/{quote(dbname, safe='')}"
    expected = {"user": user, "password": password, "dbname": dbname}
    expected = {key: value for key, value in expected.items() if value}  # empty = not set
    host_list = ",".join(host for host, _ in hosts)
    port_list = ",".join("" if port is None else str(port) for _, port in hosts)
    if host_list:
        expected["host"] = host_list
    if port_list:
        expected["port"] = port_list
    assert parse_conninfo(uri) == expected


_FUZZ_ALPHABET = st.sampled_from(list("=' \t\\%@:/?&,[]#+\0hostpruserdb0129aFé\u00a0"))
_FUZZ_CHARS = st.characters(exclude_categories=())  # surrogates included


@given(
    st.one_of(
        st.text(_FUZZ_CHARS),
        st.text(_FUZZ_ALPHABET),
        st.builds("postgresql://".__add__, st.text(_FUZZ_ALPHABET)),
        st.builds("postgres://".__add__, st.text(_FUZZ_CHARS)),
    )
)
def test_parse_never_fails_otherwise(text: str) -> None:
    try:
        result = parse_conninfo(text)
    except ClientConfigurationError:
        return
    assert set(result) <= KNOWN_KEYWORDS - {"requiressl"}
    assert all(isinstance(value, str) for value in result.values())


# --- resolve: precedence -----------------------------------------------------------------------


def write_service_file(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_defaults(run: Any, socket_dir: str) -> None:
    params = run()
    assert params.targets == (Target(host=socket_dir, hostaddr=None, port=5432),)
    assert params.targets[0].is_unix
    assert params.targets[0].socket_path == f"{socket_dir}/.s.PGSQL.5432"
    assert params.user == "alice"
    assert params.database == "alice"
    assert params.startup == {}
    assert params.connect_timeout is None
    assert params.max_message_size == 1 << 30
    assert params.settings == {
        "channel_binding": "prefer",
        "sslmode": "prefer",
        "sslnegotiation": "postgres",
        "sslcompression": "0",
        "sslcertmode": "allow",
        "sslsni": "1",
        "ssl_min_protocol_version": "TLSv1.2",
        "gssencmode": "disable",
        "krbsrvname": "postgres",
        "gssdelegation": "0",
        "target_session_attrs": "any",
        "load_balance_hosts": "disable",
    }


def test_default_host_without_socket_dir(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conninfo, "_DEFAULT_SOCKET_DIRS", ("/nonexistent/a", "/nonexistent/b"))
    target = run().targets[0]
    assert (target.host, target.is_unix) == ("localhost", False)


def test_first_existing_socket_dir(
    run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    second = tmp_path / "second"
    second.mkdir()
    monkeypatch.setattr(conninfo, "_DEFAULT_SOCKET_DIRS", ("/nonexistent", str(second)))
    assert run().targets[0].host == str(second)


def test_default_user_from_password_database(
    tmp_path: Path, socket_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pwd = pytest.importorskip("pwd")
    params = resolve(environ={"PGSYSCONFDIR": str(tmp_path)}, home=str(tmp_path))
    assert params.user == pwd.getpwuid(os.geteuid()).pw_name


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        ({"kwargs": "k", "dsn": "d", "service": "s", "env": "e"}, "k"),
        ({"dsn": "d", "service": "s", "env": "e"}, "d"),
        ({"service": "s", "env": "e"}, "s"),
        ({"env": "e"}, "e"),
        ({}, None),
    ],
)
def test_precedence(
    run: Any, tmp_path: Path, sources: dict[str, str], expected: str | None
) -> None:
    """kwargs > dsn > service file > environment > default, for a few keywords at once."""
    env: dict[str, str] = {}
    kwargs: dict[str, Any] = {}
    dsn_parts = []
    if "service" in sources:
        v = sources["service"]
        write_service_file(
            tmp_path / "home" / ".pg_service.conf",
            f"[svc]\nhost=host-{v}\nport=1{len(v)}\ndbname=db-{v}\nuser=user-{v}\n"
            f"application_name=app-{v}\ntarget_session_attrs=standby\n",
        )
        env["PGSERVICE"] = "svc"
    if "env" in sources:
        v = sources["env"]
        env.update(
            PGHOST=f"host-{v}",
            PGPORT="2000",
            PGDATABASE=f"db-{v}",
            PGUSER=f"user-{v}",
            PGAPPNAME=f"app-{v}",
            PGTARGETSESSIONATTRS="primary",
        )
    if "dsn" in sources:
        v = sources["dsn"]
        dsn_parts = [
            f"host=host-{v}",
            "port=3000",
            f"dbname=db-{v}",
            f"user=user-{v}",
            f"application_name=app-{v}",
            "target_session_attrs=read-only",
        ]
    if "kwargs" in sources:
        v = sources["kwargs"]
        kwargs = dict(
            host=f"host-{v}",
            port=4000,
            database=f"db-{v}",
            user=f"user-{v}",
            application_name=f"app-{v}",
            target_session_attrs="read-write",
        )
    params = run(" ".join(dsn_parts) or None, env, **kwargs)
    ports = {"k": 4000, "d": 3000, "s": 11, "e": 2000, None: 5432}
    attrs = {"k": "read-write", "d": "read-only", "s": "standby", "e": "primary", None: "any"}
    if expected is None:
        assert params.targets[0].is_unix
        assert params.user == params.database == "alice"
        assert params.startup == {}
    else:
        assert params.targets[0].host == f"host-{expected}"
        assert params.user == f"user-{expected}"
        assert params.database == f"db-{expected}"
        assert params.startup == {"application_name": f"app-{expected}"}
    assert params.targets[0].port == ports[expected]
    assert params.settings["target_session_attrs"] == attrs[expected]


def test_empty_and_none_kwargs_are_not_given(run: Any) -> None:
    params = run("user=fromdsn", {"PGDATABASE": "envdb"}, user="", database=None, port=None)
    assert (params.user, params.database, params.targets[0].port) == ("fromdsn", "envdb", 5432)


def test_uri_empty_dbname_leaves_pgdatabase(run: Any) -> None:
    assert run("postgresql://h/", {"PGDATABASE": "envdb"}).database == "envdb"


def test_empty_user_and_dbname_take_defaults(run: Any) -> None:
    params = run("user='' dbname=''", {"PGUSER": "ignored-because-dsn-set-it"})
    assert (params.user, params.database) == ("alice", "alice")


# --- resolve: hosts and ports -------------------------------------------------------------------


def test_host_list_with_per_host_ports(run: Any, socket_dir: str) -> None:
    params = run("postgresql://h1:5433,h2,[::1]:5435,%2Ftmp%2Fs:6000/db", {"PGPORT": "7000"})
    assert [(t.host, t.port) for t in params.targets] == [
        ("h1", 5433),
        ("h2", 5432),  # an empty item is libpq's compiled default, not PGPORT
        ("::1", 5435),
        ("/tmp/s", 6000),
    ]
    assert [t.is_unix for t in params.targets] == [False, False, False, True]


def test_one_port_applies_to_all_hosts(run: Any) -> None:
    params = run(host=["a", "b", "c"], port=6543)
    assert [(t.host, t.port) for t in params.targets] == [("a", 6543), ("b", 6543), ("c", 6543)]


def test_pgport_applies_when_no_port(run: Any) -> None:
    assert [t.port for t in run("host=a,b", {"PGPORT": "6000"}).targets] == [6000, 6000]


def test_empty_host_items_take_the_default(run: Any, socket_dir: str) -> None:
    params = run(host="a,,b", port=[1, "2", None])
    assert [(t.host, t.port) for t in params.targets] == [("a", 1), (socket_dir, 2), ("b", 5432)]


def test_hostaddr(run: Any) -> None:
    params = run("host=db.example,other hostaddr=192.0.2.1,2001:db8::1 port=1,2")
    assert params.targets == (
        Target(host="db.example", hostaddr="192.0.2.1", port=1),
        Target(host="other", hostaddr="2001:db8::1", port=2),
    )
    only_addr = run("hostaddr=192.0.2.1,").targets
    assert [(t.host, t.hostaddr) for t in only_addr[:1]] == [("192.0.2.1", "192.0.2.1")]
    assert not only_addr[0].is_unix
    # An empty hostaddr item with no host falls back to the default host.
    assert only_addr[1].hostaddr is None
    # A hostaddr slot is TCP even when host names a directory.
    assert not run("host=/tmp hostaddr=127.0.0.1").targets[0].is_unix


def test_abstract_socket(run: Any) -> None:
    target = run(host="@pg").targets[0]
    assert target.is_unix
    assert target.socket_path == "@pg/.s.PGSQL.5432"


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("host=a,b,c port=1,2", "could not match 2 port numbers to 3 hosts"),
        ("host=a port=1,2", "could not match 2 port numbers to 1 hosts"),
        ("port=1,2", "could not match 2 port numbers to 1 hosts"),
        (
            "host=a,b hostaddr=1.2.3.4,1.2.3.5,1.2.3.6",
            "could not match 2 host names to 3 hostaddr values",
        ),
        ("host=a hostaddr=1.2.3.4,1.2.3.5", "could not match 1 host names to 2 hostaddr values"),
        (
            "hostaddr=db.example",
            'could not parse network address "db.example": not a numeric address',
        ),
        ("port=x", 'invalid port number: "x"'),
        ("port=0", 'invalid port number: "0"'),
        ("port=65536", 'invalid port number: "65536"'),
        ("port=1_000", 'invalid port number: "1_000"'),
        ("host=a,b port=1,x", 'invalid port number: "x"'),
    ],
)
def test_host_port_errors(run: Any, dsn: str, message: str) -> None:
    with raises(message):
        run(dsn)


def test_port_like_strtol(run: Any) -> None:
    assert run(port=" 6000 ").targets[0].port == 6000
    assert run(port="+6001").targets[0].port == 6001


# --- resolve: value validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("sslmode=maybe", 'invalid sslmode value: "maybe"'),
        ("sslmode=''", 'invalid sslmode value: ""'),
        ("sslmode=REQUIRE", 'invalid sslmode value: "REQUIRE"'),
        ("channel_binding=always", 'invalid channel_binding value: "always"'),
        ("target_session_attrs=master", 'invalid target_session_attrs value: "master"'),
        ("load_balance_hosts=yes", 'invalid load_balance_hosts value: "yes"'),
        ("sslnegotiation=tls", 'invalid sslnegotiation value: "tls"'),
        ("sslcertmode=always", 'invalid sslcertmode value: "always"'),
        ("gssencmode=maybe", 'invalid gssencmode value: "maybe"'),
        (
            "gssencmode=require",
            'gssencmode value "require" invalid when GSSAPI support is not compiled in',
        ),
        (
            "sslnegotiation=direct",
            'weak sslmode "prefer" may not be used with sslnegotiation=direct '
            '(use "require", "verify-ca", or "verify-full")',
        ),
        (
            "sslnegotiation=direct sslmode=allow",
            'weak sslmode "allow" may not be used with sslnegotiation=direct '
            '(use "require", "verify-ca", or "verify-full")',
        ),
        (
            "sslrootcert=system sslmode=verify-ca",
            'weak sslmode "verify-ca" may not be used with sslrootcert=system (use "verify-full")',
        ),
        ("ssl_min_protocol_version=TLSv1.4", 'invalid "ssl_min_protocol_version" value: "TLSv1.4"'),
        ("ssl_max_protocol_version=SSLv3", 'invalid "ssl_max_protocol_version" value: "SSLv3"'),
        (
            "ssl_min_protocol_version=TLSv1.3 ssl_max_protocol_version=TLSv1.2",
            "invalid SSL protocol version range",
        ),
        (
            "ssl_min_protocol_version=tlsv1.1 ssl_max_protocol_version=TLSv1",
            "invalid SSL protocol version range",
        ),
        ("min_protocol_version=3.1", 'invalid min_protocol_version value: "3.1"'),
        (
            "min_protocol_version=latest max_protocol_version=3.0",
            "min_protocol_version is greater than max_protocol_version",
        ),
        ("replication=maybe", 'invalid replication value: "maybe"'),
        (
            "connect_timeout=1.5",
            'invalid integer value "1.5" for connection option "connect_timeout"',
        ),
        (
            "keepalives_idle=soon",
            'invalid integer value "soon" for connection option "keepalives_idle"',
        ),
        ("max_message_size=0", 'invalid max_message_size value: "0"'),
        ("max_message_size=-5", 'invalid max_message_size value: "-5"'),
        ("max_message_size=big", 'invalid max_message_size value: "big"'),
        ("max_message_size=4294967296", 'invalid max_message_size value: "4294967296"'),
    ],
)
def test_validation_errors(run: Any, dsn: str, message: str) -> None:
    with raises(message):
        run(dsn)


@pytest.mark.parametrize(
    ("dsn", "key", "value"),
    [
        (
            "ssl_min_protocol_version=tlsv1.3 ssl_max_protocol_version=TLSV1.3",
            "ssl_max_protocol_version",
            "TLSV1.3",
        ),
        (
            "ssl_min_protocol_version=TLSv1 ssl_max_protocol_version=TLSv1",
            "ssl_min_protocol_version",
            "TLSv1",
        ),
        (
            "ssl_min_protocol_version='' ssl_max_protocol_version=TLSv1",
            "ssl_min_protocol_version",
            "",
        ),
        ("sslnegotiation=direct sslmode=verify-ca", "sslnegotiation", "direct"),
        ("min_protocol_version=3.0 max_protocol_version=latest", "max_protocol_version", "latest"),
        ("require_auth=!password,!md5", "require_auth", "!password,!md5"),
        ("keepalives=0 keepalives_count=' 3 '", "keepalives_count", " 3 "),
        ("gssencmode=prefer", "gssencmode", "prefer"),
        ("sslcertmode=require sslkeylogfile=/tmp/k", "sslkeylogfile", "/tmp/k"),
    ],
)
def test_valid_settings(run: Any, dsn: str, key: str, value: str) -> None:
    assert run(dsn).settings[key] == value


@pytest.mark.parametrize(
    ("dsn", "env", "versions"),
    [
        ("", {}, (3, 0, 3, 0)),  # libpq 18's default: 3.0 only
        ("max_protocol_version=3.2", {}, (3, 0, 3, 2)),
        ("max_protocol_version=latest", {}, (3, 0, 3, 2)),
        ("", {"PGMAXPROTOCOLVERSION": "3.2"}, (3, 0, 3, 2)),
        ("max_protocol_version=3.0", {"PGMAXPROTOCOLVERSION": "3.2"}, (3, 0, 3, 0)),
        # A minimum above 3.0 without a maximum asks for the latest.
        ("min_protocol_version=3.2", {}, (3, 2, 3, 2)),
        ("", {"PGMINPROTOCOLVERSION": "latest"}, (3, 2, 3, 2)),
    ],
)
def test_protocol_versions(
    run: Any, dsn: str, env: dict[str, str], versions: tuple[int, ...]
) -> None:
    assert conninfo.protocol_versions(run(dsn, env=env).settings) == versions


def test_sslrootcert_system_defaults_to_verify_full(run: Any) -> None:
    assert run(sslrootcert="system").settings["sslmode"] == "verify-full"
    assert run(env={"PGSSLROOTCERT": "system"}).settings["sslmode"] == "verify-full"
    with raises(
        'weak sslmode "require" may not be used with sslrootcert=system (use "verify-full")'
    ):
        run("sslrootcert=system", {"PGSSLMODE": "require"})


def test_pgrequiressl(run: Any) -> None:
    assert run(env={"PGREQUIRESSL": "1"}).settings["sslmode"] == "require"
    assert run(env={"PGREQUIRESSL": "0"}).settings["sslmode"] == "prefer"
    assert run(env={"PGREQUIRESSL": "1", "PGSSLMODE": "disable"}).settings["sslmode"] == "disable"
    assert run(requiressl=True).settings["sslmode"] == "require"
    assert run(requiressl="0", sslmode="verify-ca").settings["sslmode"] == "verify-ca"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", "true"),
        ("ON", "true"),
        ("yes", "true"),
        ("1", "true"),
        ("database", "database"),
        ("Database", "database"),
        ("false", "false"),
        ("off", "false"),
        ("No", "false"),
        ("0", "false"),
    ],
)
def test_replication(run: Any, value: str, expected: str) -> None:
    assert run(replication=value).startup == {"replication": expected}


def test_settings_exclude_other_fields(run: Any) -> None:
    params = run(
        "host=h port=1 user=u password=p passfile=/x dbname=d connect_timeout=5 "
        "client_encoding=UTF8 options=-cx=y application_name=a fallback_application_name=f "
        "replication=database max_message_size=100 sslpassword=key"
    )
    assert set(params.settings) == {
        "channel_binding",
        "sslmode",
        "sslnegotiation",
        "sslcompression",
        "sslcertmode",
        "sslpassword",
        "sslsni",
        "ssl_min_protocol_version",
        "gssencmode",
        "krbsrvname",
        "gssdelegation",
        "target_session_attrs",
        "load_balance_hosts",
    }
    assert params.max_message_size == 100
    assert params.connect_timeout == 5.0


# --- resolve: startup packet, timeouts, keyword arguments --------------------------------------


def test_startup_order_and_contents(run: Any) -> None:
    params = run(
        "application_name=app client_encoding=LATIN1 options='-c geqo=off' replication=true",
        {"PGDATESTYLE": "ISO, DMY", "PGTZ": "UTC", "PGGEQO": "default"},
        server_settings={"search_path": "s", "application_name": "override"},
    )
    assert list(params.startup.items()) == [
        ("replication", "true"),
        ("options", "-c geqo=off"),
        ("application_name", "override"),
        ("client_encoding", "LATIN1"),
        ("datestyle", "ISO, DMY"),
        ("timezone", "UTC"),
        ("search_path", "s"),
    ]


def test_env_gucs_skip_default_case_insensitively(run: Any) -> None:
    startup = run(env={"PGGEQO": "on", "PGTZ": "DEFAULT", "PGDATESTYLE": "Default"}).startup
    assert startup == {"geqo": "on"}


def test_fallback_application_name(run: Any) -> None:
    assert run(fallback_application_name="fb").startup == {"application_name": "fb"}
    assert run("application_name=app fallback_application_name=fb").startup == {
        "application_name": "app"
    }
    assert run(fallback_application_name="fb", env={"PGAPPNAME": "env"}).startup == {
        "application_name": "env"
    }
    # libpq: a set-but-empty application_name suppresses the fallback as well.
    assert run(fallback_application_name="fb", env={"PGAPPNAME": ""}).startup == {}


@pytest.mark.parametrize(
    ("kwargs", "env", "expected"),
    [
        ({"connect_timeout": 2.5}, {}, 2.5),
        ({"connect_timeout": 3}, {"PGCONNECT_TIMEOUT": "9"}, 3.0),
        ({"connect_timeout": "10"}, {}, 10.0),
        ({"connect_timeout": 0}, {"PGCONNECT_TIMEOUT": "9"}, None),
        ({"connect_timeout": -1.0}, {}, None),
        ({"connect_timeout": float("inf")}, {}, None),
        ({}, {"PGCONNECT_TIMEOUT": "9"}, 9.0),
        ({}, {"PGCONNECT_TIMEOUT": "0"}, None),
        ({}, {"PGCONNECT_TIMEOUT": "-3"}, None),
    ],
)
def test_connect_timeout(
    run: Any, kwargs: dict[str, Any], env: dict[str, str], expected: float | None
) -> None:
    assert run(env=env, **kwargs).connect_timeout == expected


def test_max_message_size(run: Any) -> None:
    assert run(max_message_size=4096).max_message_size == 4096
    assert run("postgresql://h?max_message_size=8192").max_message_size == 8192


def test_keyword_arguments(run: Any, tmp_path: Path) -> None:
    params = run(
        host=["a", "b"],
        port=(5433, "5434"),
        database="db",
        sslsni=False,
        keepalives_idle=30,
        sslrootcert=tmp_path / "root.crt",
    )
    assert [(t.host, t.port) for t in params.targets] == [("a", 5433), ("b", 5434)]
    assert params.database == "db"
    assert params.settings["sslsni"] == "0"
    assert params.settings["keepalives_idle"] == "30"
    assert params.settings["sslrootcert"] == str(tmp_path / "root.crt")


def test_keyword_argument_errors(run: Any) -> None:
    with pytest.raises(TypeError, match=r"^connect\(\) got an unexpected keyword argument 'hots'$"):
        run(hots="x")
    with pytest.raises(TypeError, match="both 'database' and 'dbname'"):
        run(database="a", dbname="b")
    with pytest.raises(TypeError, match="'host'"):
        run(host=object())
    with pytest.raises(TypeError, match="'port'"):
        run(port=True)
    with pytest.raises(TypeError, match="server_settings"):
        run(server_settings=[("a", "b")])
    with pytest.raises(TypeError, match="server_settings"):
        run(server_settings={"a": 1})
    with pytest.raises(TypeError, match="dsn"):
        run(b"host=x")
    with raises('server_settings may not set "user"; pass it as a connection parameter'):
        run(server_settings={"user": "x"})
    with raises('connection option "password" contains a NUL character'):
        run(password="a\0b")
    with raises('invalid connect_timeout value: "nan"'):
        run(connect_timeout=float("nan"))


def test_dsn_errors_propagate(run: Any) -> None:
    with raises('invalid connection option "foo"'):
        run("foo=bar")
    with raises('missing "=" after "mydb" in connection info string'):
        run("mydb")


# --- repr never shows secrets ------------------------------------------------------------------


def test_repr_masks_passwords(run: Any) -> None:
    params = run(
        "postgresql://u:hunter2@h1,h2/db?sslpassword=keypass&scram_client_key=c2VjcmV0",
    )
    assert isinstance(params, ConnectParams)
    assert params.targets[0].password == "hunter2"
    text = repr(params) + str(params) + repr(params.targets) + str(params.targets[1])
    for secret in ("hunter2", "keypass", "c2VjcmV0"):
        assert secret not in text
    assert "password='***'" in repr(params.targets[0])
    assert "'sslpassword': '***'" in repr(params)
    assert "password=None" in repr(Target(host="h", hostaddr=None, port=1))


def test_results_are_frozen(run: Any) -> None:
    params = run()
    with pytest.raises(AttributeError):
        params.user = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        params.targets[0].port = 1  # type: ignore[misc]


# --- .pgpass -------------------------------------------------------------------------------------


def write_pgpass(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())
    path.chmod(mode)
    return path


@pytest.fixture
def pgpass(tmp_path: Path) -> Path:
    return tmp_path / "home" / ".pgpass"


def test_pgpass_exact_match(run: Any, pgpass: Path) -> None:
    write_pgpass(
        pgpass, "other:5432:db:alice:wrong\nh:5432:db:alice:right\nh:5432:db:alice:later\n"
    )
    target = run(host="h", dbname="db").targets[0]
    assert (target.password, target.passfile) == ("right", str(pgpass))


def test_pgpass_wildcards_and_comments(run: Any, pgpass: Path) -> None:
    write_pgpass(pgpass, "# h:*:*:*:commented\n\n*:*:*:*:any\r\n")
    assert run(host="h", port=1234).targets[0].password == "any"
    write_pgpass(pgpass, "h:*:db:*:ok\n")
    assert run(host="h", dbname="db", user="bob").targets[0].password == "ok"
    assert run(host="h", dbname="other").targets[0].password is None
    # Only a field that is exactly '*' is a wildcard.
    write_pgpass(pgpass, "h*:*:*:*:no\nhx:5*:*:*:no\n")
    assert run(host="hx", port=5000).targets[0].password is None


def test_pgpass_escapes(run: Any, pgpass: Path) -> None:
    write_pgpass(pgpass, "h\\:1:5432:d\\\\b:alice:pa\\:ss\\\\word:ignored\n")
    target = run(host="h:1", dbname="d\\b").targets[0]
    assert target.password == "pa:ss\\word"
    write_pgpass(pgpass, "a\\*:*:*:*:x\n*:*:*:*:y\n")
    assert run(host="a*").targets[0].password == "x"
    assert run(host="ab").targets[0].password == "y"


def test_pgpass_per_target(run: Any, pgpass: Path) -> None:
    write_pgpass(pgpass, "a:1:*:*:pa\nb:5432:*:*:pb\n192.0.2.7:5432:*:*:pc\n")
    targets = run("host=a,b,c, hostaddr=,,,192.0.2.7 port=1,,,").targets
    assert [(t.host, t.password) for t in targets] == [
        ("a", "pa"),
        ("b", "pb"),
        ("c", None),
        ("192.0.2.7", "pc"),  # no host name: the lookup uses hostaddr
    ]
    assert [t.passfile for t in targets] == [str(pgpass), str(pgpass), None, str(pgpass)]


def test_pgpass_default_socket_dir_is_localhost(run: Any, pgpass: Path, socket_dir: str) -> None:
    write_pgpass(pgpass, "localhost:5432:*:*:local\n/elsewhere:5432:*:*:there\n")
    assert run().targets[0].password == "local"
    assert run(host="/elsewhere").targets[0].password == "there"
    assert run(host="/unlisted").targets[0].password is None


def test_pgpass_only_without_password(run: Any, pgpass: Path) -> None:
    write_pgpass(pgpass, "*:*:*:*:fromfile\n")
    assert run(password="given").targets[0].password == "given"
    assert run(password="given").targets[0].passfile is None
    assert run(env={"PGPASSWORD": "env"}).targets[0].password == "env"
    # An empty password counts as none.
    assert run(env={"PGPASSWORD": ""}).targets[0].password == "fromfile"


def test_pgpass_empty_password_is_none(run: Any, pgpass: Path) -> None:
    write_pgpass(pgpass, "*:*:*:*:\n*:*:*:*:second\n")  # the first match wins, even empty
    target = run().targets[0]
    assert (target.password, target.passfile) == (None, None)


def test_pgpass_file_choice(run: Any, pgpass: Path, tmp_path: Path) -> None:
    write_pgpass(pgpass, "*:*:*:*:home\n")
    env_file = write_pgpass(tmp_path / "env.pgpass", "*:*:*:*:env\n")
    kw_file = write_pgpass(tmp_path / "kw.pgpass", "*:*:*:*:kw\n")
    assert run().targets[0].password == "home"
    assert run(env={"PGPASSFILE": str(env_file)}).targets[0].password == "env"
    target = run(env={"PGPASSFILE": str(env_file)}, passfile=kw_file).targets[0]
    assert (target.password, target.passfile) == ("kw", str(kw_file))
    assert run(f"passfile={tmp_path}/missing").targets[0].password is None


@posix_only
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o610, 0o601])
def test_pgpass_insecure_permissions(run: Any, pgpass: Path, mode: int) -> None:
    write_pgpass(pgpass, "*:*:*:*:secret\n", mode)
    with pytest.warns(UserWarning, match="has group or world access") as record:
        target = run().targets[0]
    assert target.password is None
    assert str(pgpass) in str(record[0].message)


@posix_only
def test_pgpass_not_a_plain_file(run: Any, pgpass: Path) -> None:
    pgpass.mkdir(parents=True)
    with pytest.warns(UserWarning, match="is not a plain file"):
        assert run().targets[0].password is None


def test_pgpass_missing_is_silent(run: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert run().targets[0].password is None


# --- service files ------------------------------------------------------------------------------


@pytest.fixture
def user_services(tmp_path: Path) -> Path:
    return tmp_path / "home" / ".pg_service.conf"


def test_service_from_user_file(run: Any, user_services: Path) -> None:
    write_service_file(
        user_services,
        "# comment\n\n[other]\nhost=wrong\n  [svc]  \n host=svchost \nport=6000\n"
        "password=pw\nsslmode=require\n[next]\nhost=wrong\n",
    )
    params = run("service=svc")
    assert (params.targets[0].host, params.targets[0].port) == ("svchost", 6000)
    assert params.targets[0].password == "pw"
    assert params.settings["sslmode"] == "require"
    assert run(env={"PGSERVICE": "svc"}).targets[0].host == "svchost"
    assert run(service="svc").targets[0].host == "svchost"


def test_service_never_overrides_explicit_values(run: Any, user_services: Path) -> None:
    write_service_file(user_services, "[svc]\nhost=svchost\ndbname=svcdb\nuser=svcuser\n")
    params = run("service=svc host=dsnhost", {"PGUSER": "envuser"}, database="kwdb")
    assert params.targets[0].host == "dsnhost"
    assert params.database == "kwdb"
    assert params.user == "svcuser"  # the service beats the environment


def test_service_value_is_not_trimmed(run: Any, user_services: Path) -> None:
    write_service_file(user_services, "[svc]\napplication_name= spaced out\n")
    assert run(service="svc").startup == {"application_name": " spaced out"}


def test_service_group_needs_exact_name(run: Any, user_services: Path) -> None:
    write_service_file(user_services, "[svc2]\nhost=a\n[sv]\nhost=b\n[svc]x\nhost=c\n")
    assert run(service="svc").targets[0].host == "c"  # like libpq, text after ']' is ignored


def test_servicefile_choice(run: Any, user_services: Path, tmp_path: Path) -> None:
    write_service_file(user_services, "[svc]\nhost=home\n")
    env_file = write_service_file(tmp_path / "env.conf", "[svc]\nhost=env\n")
    kw_file = write_service_file(tmp_path / "kw.conf", "[svc]\nhost=kw\n")
    assert run(service="svc").targets[0].host == "home"
    assert run(env={"PGSERVICEFILE": env_file}, service="svc").targets[0].host == "env"
    params = run(f"service=svc servicefile={kw_file}", {"PGSERVICEFILE": env_file})
    assert params.targets[0].host == "kw"


def test_system_service_file(run: Any, user_services: Path, tmp_path: Path) -> None:
    sysconf = tmp_path / "sysconf"
    write_service_file(sysconf / "pg_service.conf", "[sys]\nhost=system\n[svc]\nport=9\n")
    env = {"PGSYSCONFDIR": str(sysconf)}
    assert run(service="sys", env=env).targets[0].host == "system"
    # Found in the user file: the system file is not consulted, not even for other keys.
    write_service_file(user_services, "[svc]\nhost=user\n")
    assert run(service="svc", env=env).targets[0].port == 5432
    # Not in the user file: fall through to the system file.
    write_service_file(user_services, "[other]\nhost=user\n")
    assert run(service="svc", env=env).targets[0].port == 9


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[svc]\nhost=a\nservice=other\n",
            'nested service specifications not supported in service file "{path}", line 3',
        ),
        ("[svc]\nbogus=1\n", 'syntax error in service file "{path}", line 2'),
        ("[svc]\nhost = a\n", 'syntax error in service file "{path}", line 2'),
        ("[svc]\n\nhost\n", 'syntax error in service file "{path}", line 3'),
        ("[svc]\nrequiressl=1\n", 'syntax error in service file "{path}", line 2'),
        ("[svc]\nhost=" + "x" * 1017 + "\n", 'line 2 too long in service file "{path}"'),
        ("x" * 1023, 'line 1 too long in service file "{path}"'),
    ],
)
def test_service_file_errors(run: Any, user_services: Path, text: str, message: str) -> None:
    path = write_service_file(user_services, text)
    with raises(message.format(path=path)):
        run(service="svc")


def test_service_file_line_limits(run: Any, user_services: Path) -> None:
    write_service_file(user_services, "[svc]\nhost=" + "x" * 1016 + "\n#" + "y" * 1021)
    assert run(service="svc").targets[0].host == "x" * 1016
    # Lines past the end of the group are never read.
    write_service_file(user_services, "[svc]\nhost=a\n[z]\n" + "bogus" * 500 + "\n")
    assert run(service="svc").targets[0].host == "a"
    # Errors outside the wanted group are not errors.
    write_service_file(user_services, "[other]\nbogus\n[svc]\nhost=b\n")
    assert run(service="svc").targets[0].host == "b"


def test_service_not_found(run: Any, user_services: Path, tmp_path: Path) -> None:
    with raises('definition of service "x" not found'):
        run(service="x")
    write_service_file(user_services, "[y]\nhost=a\n")
    with raises('definition of service "x" not found'):
        run(service="x")
    missing = str(tmp_path / "missing.conf")
    with raises(f'service file "{missing}" not found'):
        run(service="x", env={"PGSERVICEFILE": missing})
    with raises(f'service file "{missing}" not found'):
        run(f"service=x servicefile={missing}")


def test_no_service_reads_no_file(run: Any, user_services: Path) -> None:
    write_service_file(user_services, "garbage without a group\n[svc]\nbogus\n")
    assert run().targets[0].port == 5432


def test_known_keywords() -> None:
    assert {
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "passfile",
        "service",
        "servicefile",
        "require_auth",
        "channel_binding",
        "connect_timeout",
        "client_encoding",
        "options",
        "application_name",
        "fallback_application_name",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "sslmode",
        "requiressl",
        "sslnegotiation",
        "sslcompression",
        "sslcert",
        "sslkey",
        "sslcertmode",
        "sslpassword",
        "sslrootcert",
        "sslcrl",
        "sslcrldir",
        "sslsni",
        "sslkeylogfile",
        "requirepeer",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "min_protocol_version",
        "max_protocol_version",
        "gssencmode",
        "krbsrvname",
        "gsslib",
        "gssdelegation",
        "replication",
        "target_session_attrs",
        "load_balance_hosts",
        "max_message_size",
    } <= KNOWN_KEYWORDS
    assert "database" not in KNOWN_KEYWORDS
