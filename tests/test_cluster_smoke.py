"""The cluster module and the session fixtures, checked with the system's psql."""

from __future__ import annotations

import gc
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pgoxide.cluster import DEFAULT_HBA, Cluster, ClusterError

if TYPE_CHECKING:
    from conftest import PgCerts, PgRoles

pytestmark = pytest.mark.integration

METHODS = ("trust", "password", "md5", "scram")
LOG_METHOD = {"password": "password", "md5": "md5", "scram": "scram-sha-256"}


def psql_exe(cluster: Cluster) -> str:
    """The cluster's psql, else the system's."""
    exe = os.path.join(cluster.bindir, "psql")
    if not os.access(exe, os.X_OK):
        exe = shutil.which("psql") or pytest.skip("no psql")
    return exe


def psql_major(cluster: Cluster) -> int:
    """The major version of :func:`psql_exe` (and so of its libpq)."""
    out = subprocess.run([psql_exe(cluster), "--version"], capture_output=True, text=True)
    return int(out.stdout.split()[-1].split(".")[0])


def psql(
    cluster: Cluster, conninfo: str, sql: str, *, password: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the system psql with a clean environment (no PG* variables, no ~/.pgpass)."""
    exe = psql_exe(cluster)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PGPASSFILE=os.devnull, PGCONNECT_TIMEOUT="10", LC_ALL="C")
    if password is not None:
        env["PGPASSWORD"] = password
    return subprocess.run(
        [exe, "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", sql],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def query(cluster: Cluster, conninfo: str, sql: str, *, password: str | None = None) -> str:
    proc = psql(cluster, conninfo, sql, password=password)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def accepts_tcp(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


# -- the session cluster -----------------------------------------------------------------


@pytest.mark.parametrize("unix", [False, True], ids=["tcp", "unix"])
@pytest.mark.parametrize("method", METHODS)
def test_role_authenticates(
    pg_cluster: Cluster, pg_roles: PgRoles, method: str, unix: bool
) -> None:
    role = getattr(pg_roles, method)
    offset = len(pg_cluster.log_text())
    conninfo = pg_cluster.dsn(user=role, unix=unix, sslmode="disable")
    assert query(pg_cluster, conninfo, "SELECT current_user", password=pg_roles[role]) == role
    if method in LOG_METHOD and pg_cluster.version >= (14, 0):
        # Proves the method pg_hba.conf chose, not just that a password was accepted.
        log = pg_cluster.log_text()[offset:]
        assert f'identity="{role}" method={LOG_METHOD[method]}' in log


@pytest.mark.parametrize("unix", [False, True], ids=["tcp", "unix"])
@pytest.mark.parametrize("method", ["password", "md5", "scram"])
def test_wrong_or_missing_password_fails(
    pg_cluster: Cluster, pg_roles: PgRoles, method: str, unix: bool
) -> None:
    role = getattr(pg_roles, method)
    conninfo = pg_cluster.dsn(user=role, unix=unix, sslmode="disable")
    wrong = psql(pg_cluster, conninfo, "SELECT 1", password="wrong")
    assert wrong.returncode != 0
    assert f'password authentication failed for user "{role}"' in wrong.stderr
    missing = psql(pg_cluster, conninfo, "SELECT 1")
    assert missing.returncode != 0
    assert "no password supplied" in missing.stderr


def test_stored_password_formats(pg_cluster: Cluster, pg_roles: PgRoles) -> None:
    stored = dict(
        line.split("|")
        for line in pg_cluster.psql(
            "SELECT rolname, rolpassword FROM pg_authid WHERE rolname LIKE 'pgx\\_%'"
        ).split()
    )
    assert stored[pg_roles.md5].startswith("md5")
    assert len(stored[pg_roles.md5]) == 35
    assert stored[pg_roles.scram].startswith("SCRAM-SHA-256$")


def test_tls(pg_cluster: Cluster) -> None:
    sql = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    assert query(pg_cluster, pg_cluster.dsn(sslmode="require"), sql) == "t"
    assert query(pg_cluster, pg_cluster.dsn(sslmode="disable"), sql) == "f"
    assert query(pg_cluster, pg_cluster.dsn(sslmode="require"), "SHOW ssl") == "on"


@pytest.mark.parametrize("by", ["ip", "name"])
def test_server_certificate_verifies(
    pg_cluster: Cluster, pg_roles: PgRoles, pg_certs: PgCerts, by: str
) -> None:
    # The server certificate names both the IP and the host name.
    if by == "ip" and (major := psql_major(pg_cluster)) < 15:
        pytest.skip(
            "needs libpq 15+: IP addresses in a certificate's subjectAltName, for psql "
            f"(this psql is {major})"
        )
    extra = {} if by == "ip" else {"host": "localhost", "hostaddr": "127.0.0.1"}
    conninfo = pg_cluster.dsn(
        user=pg_roles.trust, sslmode="verify-full", sslrootcert=str(pg_certs.ca_cert), **extra
    )
    sql = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    assert query(pg_cluster, conninfo, sql) == "t"


def test_cert_auth(pg_cluster: Cluster, pg_roles: PgRoles, pg_certs: PgCerts) -> None:
    common = {"user": pg_roles.cert, "sslrootcert": str(pg_certs.ca_cert)}
    # By name: libpq before 15 cannot verify an IP (test_server_certificate_verifies).
    with_cert = pg_cluster.dsn(
        host="localhost",
        hostaddr="127.0.0.1",
        sslmode="verify-full",
        sslcert=str(pg_certs.client_cert),
        sslkey=str(pg_certs.client_key),
        **common,
    )
    assert query(pg_cluster, with_cert, "SELECT current_user") == pg_roles.cert
    if pg_cluster.version >= (14, 0):
        assert f'identity="CN={pg_roles.cert}" method=cert' in pg_cluster.log_text()
    # sslcert=/dev/null: no client certificate even if ~/.postgresql has one.
    without = psql(
        pg_cluster,
        pg_cluster.dsn(sslmode="require", sslcert=os.devnull, **common),
        "SELECT 1",
        password=pg_roles[pg_roles.cert],
    )
    assert without.returncode != 0
    assert "certificate" in without.stderr
    plain = psql(
        pg_cluster,
        pg_cluster.dsn(sslmode="disable", **common),
        "SELECT 1",
        password=pg_roles[pg_roles.cert],
    )
    assert plain.returncode != 0
    assert "no pg_hba.conf entry" in plain.stderr


def test_settings_and_database(
    pg_cluster: Cluster, pg_roles: PgRoles, dsn: str, unix_dsn: str
) -> None:
    out = pg_cluster.psql(
        "SHOW wal_level; SHOW max_wal_senders; SHOW max_replication_slots; SHOW fsync; "
        "SHOW port; SHOW listen_addresses"
    ).split()
    assert out == ["logical", "10", "10", "off", str(pg_cluster.port), "127.0.0.1"]
    assert pg_cluster.port != 5432
    assert pg_cluster.version[0] == int(pg_cluster.psql("SHOW server_version_num")) // 10000
    who = (
        "SELECT current_user, current_database(), rolsuper FROM pg_roles "
        "WHERE rolname = current_user"
    )
    expected = f"{pg_roles.trust}|{pg_roles.database}|t"
    assert query(pg_cluster, dsn, who) == expected
    assert query(pg_cluster, unix_dsn, who) == expected
    assert f"host={pg_cluster.socket_dir}" in unix_dsn


@pytest.mark.parametrize("replication", ["database", "true"])
def test_replication_connection(pg_cluster: Cluster, pg_roles: PgRoles, replication: str) -> None:
    conninfo = pg_cluster.dsn(user=pg_roles.trust, replication=replication)
    out = query(pg_cluster, conninfo, "IDENTIFY_SYSTEM")
    assert out.split("|")[0].isdigit()  # systemid


def test_server_not_root(pg_cluster: Cluster) -> None:
    pid_file = Path(pg_cluster.data_dir, "postmaster.pid")
    pid = int(pid_file.read_text().split()[0])
    uids = [
        line.split()[1:]
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith(("Uid:", "Groups:"))
    ]
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        assert pid_file.stat().st_uid == nobody.pw_uid
        assert uids[0] == [str(nobody.pw_uid)] * 4
        assert "0" not in uids[1]  # root's supplementary groups were dropped
    else:
        assert pid_file.stat().st_uid == os.geteuid()
    assert "0" not in uids[0]


def test_ssl_key_owned_by_server(pg_cluster: Cluster) -> None:
    st = os.stat(os.path.join(pg_cluster.data_dir, "server.key"))
    assert st.st_mode & 0o777 == 0o600
    assert st.st_uid == os.stat(pg_cluster.data_dir).st_uid


# -- private clusters --------------------------------------------------------------------


@pytest.mark.slow
def test_lifecycle() -> None:
    with Cluster(
        settings={"pgoxide.quoting": "it's a \\ test", "application_name": "x"},
        bootstrap_sql="CREATE TABLE t (x int); INSERT INTO t VALUES (1);",
    ) as cluster:
        base = os.path.dirname(cluster.data_dir)
        port = cluster.port
        assert cluster.psql("SHOW pgoxide.quoting") == "it's a \\ test\n"
        assert cluster.psql("SELECT x FROM t").strip() == "1"

        path = cluster.write_file("sub/extra.txt", b"hi", mode=0o640)
        st = os.stat(path)
        assert (st.st_mode & 0o777, st.st_uid) == (0o640, os.stat(cluster.data_dir).st_uid)
        with pytest.raises(ValueError, match="relative"):
            cluster.write_file("../escape", b"")

        # set_hba takes effect before it returns.
        cluster.set_hba(["local all all reject", "host all all 127.0.0.1/32 reject"])
        with pytest.raises(ClusterError, match="rejects connection"):
            cluster.psql("SELECT 1")
        cluster.set_hba(DEFAULT_HBA)
        assert cluster.psql("SELECT 1").strip() == "1"

        cluster.restart()
        assert cluster.port == port
        assert cluster.psql("SELECT x FROM t").strip() == "1"

        cluster.stop("immediate")  # like a crash
        assert not accepts_tcp(port)
        cluster.stop()  # not running: a no-op
        cluster.start()
        assert cluster.port == port
        assert cluster.psql("SELECT x FROM t").strip() == "1"
        assert "database system was interrupted" in cluster.log_text()
        assert accepts_tcp(port)
    assert not os.path.exists(base)
    assert not os.path.exists(cluster.socket_dir)
    assert not accepts_tcp(port)
    cluster.cleanup()  # idempotent


@pytest.mark.slow
def test_start_failure_reports_log_and_cleans_up() -> None:
    cluster = Cluster(settings={"shared_buffers": "lots"})
    base = os.path.dirname(cluster.data_dir)
    with pytest.raises(ClusterError, match="shared_buffers") as info, cluster:
        pass
    assert "server log" in str(info.value)
    assert not os.path.exists(base)


@pytest.mark.slow
def test_bootstrap_failure_raises() -> None:
    with (
        pytest.raises(ClusterError, match="no_such_table"),
        Cluster(bootstrap_sql="SELECT * FROM no_such_table"),
    ):
        pass


@pytest.mark.slow
def test_unreferenced_cluster_is_removed() -> None:
    cluster = Cluster().start()
    base, port = os.path.dirname(cluster.data_dir), cluster.port
    assert accepts_tcp(port)
    del cluster
    gc.collect()
    assert not os.path.exists(base)
    assert not accepts_tcp(port)


@pytest.mark.slow
def test_interpreter_exit_removes_cluster() -> None:
    script = (
        "import json, os\n"
        "from pgoxide.cluster import Cluster\n"
        "c = Cluster().start()\n"
        "print(json.dumps([os.path.dirname(c.data_dir), c.port]), flush=True)\n"
        "KEEP = c  # referenced until the interpreter exits\n"
    )
    python_dir = str(Path(__file__).resolve().parent.parent / "python")
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([python_dir, *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    base, port = json.loads(proc.stdout)
    assert not os.path.exists(base)
    assert not accepts_tcp(port)
