"""pgoxide.cluster without a server: bindir lookup and quoting."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from pgoxide import cluster as cluster_mod
from pgoxide.cluster import BINDIR_ENV, ClusterError, find_bindir

pytestmark = pytest.mark.unit


def fake_bindir(path: Path, programs: tuple[str, ...] = ("initdb", "pg_ctl", "postgres")) -> str:
    path.mkdir(parents=True)
    for name in programs:
        exe = path / name
        exe.write_text("#!/bin/sh\nexit 0\n")
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No env var, no pg_config on PATH, an empty Debian glob."""
    monkeypatch.delenv(BINDIR_ENV, raising=False)
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(cluster_mod, "_DEBIAN_BINDIRS", str(tmp_path / "debian" / "*" / "bin"))
    return tmp_path


def fake_pg_config(isolated: Path, bindir: str) -> None:
    script = isolated / "empty-path" / "pg_config"
    script.write_text(f"#!/bin/sh\necho '{bindir}'\n")
    script.chmod(0o755)


def test_explicit_beats_env(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = fake_bindir(isolated / "explicit")
    monkeypatch.setenv(BINDIR_ENV, fake_bindir(isolated / "env"))
    assert find_bindir(explicit) == explicit


def test_env_beats_pg_config_and_debian(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = fake_bindir(isolated / "env")
    monkeypatch.setenv(BINDIR_ENV, env)
    fake_pg_config(isolated, fake_bindir(isolated / "pgconfig"))
    fake_bindir(isolated / "debian" / "16" / "bin")
    assert find_bindir() == env


def test_pg_config_beats_debian(isolated: Path) -> None:
    from_pg_config = fake_bindir(isolated / "pgconfig")
    fake_pg_config(isolated, from_pg_config)
    fake_bindir(isolated / "debian" / "16" / "bin")
    assert find_bindir() == from_pg_config


def test_pg_config_without_server_falls_through(isolated: Path) -> None:
    # libpq-dev's pg_config names a bindir with no initdb/postgres in it.
    fake_pg_config(isolated, fake_bindir(isolated / "client-only", ("psql",)))
    debian = fake_bindir(isolated / "debian" / "15" / "bin")
    assert find_bindir() == debian


def test_highest_debian_version_wins(isolated: Path) -> None:
    for version in ("9.6", "10", "15", "16"):
        fake_bindir(isolated / "debian" / version / "bin")
    fake_bindir(isolated / "debian" / "17" / "bin", ("initdb",))  # incomplete: skipped
    assert find_bindir() == str(isolated / "debian" / "16" / "bin")


def test_bad_explicit_or_env_is_an_error(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_bindir(isolated / "debian" / "16" / "bin")
    with pytest.raises(ClusterError, match="bindir argument"):
        find_bindir(str(isolated / "nowhere"))
    monkeypatch.setenv(BINDIR_ENV, str(isolated / "nowhere"))
    with pytest.raises(ClusterError, match=BINDIR_ENV):
        find_bindir()


def test_nothing_found_explains(isolated: Path) -> None:
    with pytest.raises(ClusterError, match="postgresql` package") as info:
        find_bindir()
    assert BINDIR_ENV in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n", (15, 18)),
        ("postgres (PostgreSQL) 18devel\n", (18, 0)),
        ("postgres (PostgreSQL) 17.10\n", (17, 10)),
    ],
)
def test_parse_version(text: str, expected: tuple[int, int]) -> None:
    assert cluster_mod._parse_version(text) == expected


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("", "''"),
        ("a b", "'a b'"),
        ("it's", r"'it\'s'"),
        ("back\\slash", r"'back\\slash'"),
    ],
)
def test_conninfo_quote(value: str, quoted: str) -> None:
    assert cluster_mod._conninfo_quote(value) == quoted


@pytest.mark.parametrize(
    ("value", "quoted"),
    [("off", "'off'"), (True, "'on'"), (10, "'10'"), ("it's \\", r"'it''s \\'")],
)
def test_conf_quote(value: object, quoted: str) -> None:
    assert cluster_mod._conf_quote(value) == quoted


def test_conf_quote_rejects_newlines() -> None:
    with pytest.raises(ClusterError):
        cluster_mod._conf_quote("a\nb")


def test_dsn_and_lazy_start(isolated: Path) -> None:
    """Constructing a Cluster runs nothing; dsn() works before start; cleanup removes it."""
    c = cluster_mod.Cluster(bindir=fake_bindir(isolated / "bin"))
    try:
        base = os.path.dirname(c.data_dir)
        assert os.path.isdir(c.socket_dir)
        assert not os.path.exists(c.data_dir)
        assert c.port not in (0, 5432)
        assert c.dsn(user="a b", database="db", sslmode="require") == (
            f"host=127.0.0.1 port={c.port} user='a b' dbname=db sslmode=require"
        )
        assert c.dsn(unix=True).startswith(f"host={c.socket_dir} port={c.port} user=postgres")
        with pytest.raises(ValueError, match="parameter name"):
            c.dsn(**{"bad key": "x"})
    finally:
        c.cleanup()
    assert not os.path.exists(base)
