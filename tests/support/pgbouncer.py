"""A throwaway PgBouncer in front of a test cluster, for pooler tests."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager


def find_pgbouncer() -> str | None:
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.path.exists(p)), None
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def pgbouncer(
    binary: str, server_port: int, database: str, user: str, pool_size: int = 2
) -> Iterator[int]:
    """Runs PgBouncer in transaction mode (trust auth) on a free port; yields the port."""
    directory = tempfile.mkdtemp(prefix="pgoxide-pgbouncer-")
    port = _free_port()
    config = os.path.join(directory, "pgbouncer.ini")
    with open(config, "w") as f:
        f.write(
            f"""[databases]
{database} = host=127.0.0.1 port={server_port} dbname={database} user={user}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 100
logfile = {directory}/pgbouncer.log
pidfile = {directory}/pgbouncer.pid
"""
        )
    kwargs: dict[str, object] = {}
    if os.geteuid() == 0:
        # PgBouncer refuses to run as root.
        nobody = pwd.getpwnam("nobody")
        os.chown(directory, nobody.pw_uid, nobody.pw_gid)
        os.chown(config, nobody.pw_uid, nobody.pw_gid)
        kwargs.update(user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[])
    process = subprocess.Popen([binary, config], **kwargs)  # type: ignore[call-overload]
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    with open(os.path.join(directory, "pgbouncer.log")) as f:
                        log = f.read()
                    raise RuntimeError(f"pgbouncer did not start:\n{log}") from None
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(30)
        shutil.rmtree(directory, ignore_errors=True)
