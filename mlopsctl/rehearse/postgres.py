"""PostgreSQL, the tracking server's backend store: a fresh cluster in the rehearsal's directory,
run as an unprivileged system user (PostgreSQL refuses to run as root), with password
authentication for the user and database the backend-store URI names."""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
from pathlib import Path

from mlopsctl.rehearse import _proc
from mlopsctl.rehearse.errors import MissingToolError

USER = "mlflow"
DATABASE = "mlflow"
# Debian installs the server's programs off PATH, one directory per major version.
DEBIAN_BINARIES = "/usr/lib/postgresql/*/bin/initdb"
_INSTALL = "apt-get install postgresql (Debian, Ubuntu) or your system's PostgreSQL server package"


def binaries() -> Path:
    """The directory holding initdb and postgres: PATH first, then Debian's versioned ones."""
    found = shutil.which("initdb")
    if found and shutil.which("postgres", path=str(Path(found).parent)):
        return Path(found).parent
    versions = sorted(
        glob.glob(DEBIAN_BINARIES),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if versions:
        return Path(versions[-1]).parent
    raise MissingToolError("PostgreSQL (initdb, postgres) is not installed", hint=_INSTALL)


def _owner() -> tuple[int, int]:
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    raise MissingToolError(
        "no unprivileged user to run PostgreSQL as (postgres or nobody)",
        hint="create one: useradd --system postgres",
    )


class Postgres:
    def __init__(
        self, service: _proc.Service, password: str, user: str = USER, database: str = DATABASE
    ) -> None:
        self.service = service
        self.password = password
        self.user = user
        self.database = database

    def uri(self, scheme: str = "postgresql") -> str:
        """The backend-store URI with ``scheme`` (``postgresql+psycopg2`` names the driver)."""
        where = f"{_proc.LOOPBACK}:{self.service.port}/{self.database}"
        return f"{scheme}://{self.user}:{self.password}@{where}"


def start(
    workspace: Path,
    timeout: float = 60,
    *,
    user: str = USER,
    database: str = DATABASE,
    password: str | None = None,
) -> Postgres:
    """A fresh cluster whose superuser ``user`` (password ``password``, a random one unless
    given) owns the database ``database``."""
    bindir = binaries()
    uid, gid = _owner()
    home = workspace / "postgres"
    data = home / "data"
    home.mkdir(mode=0o755)
    data.mkdir(mode=0o700)
    password = password or secrets.token_hex(12)
    pwfile = home / "pwfile"
    pwfile.write_text(password + "\n", encoding="utf-8")
    for path in (home, data, pwfile):
        os.chown(path, uid, gid)
    as_owner = ["setpriv", "--reuid", str(uid), "--regid", str(gid), "--clear-groups", "--"]
    env = {"PATH": _proc_path(bindir), "LANG": "C.UTF-8"}
    init = _proc.run(
        [
            *as_owner,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            user,
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "--encoding=UTF8",
            "--no-sync",
        ],
        env=env,
        cwd=home,
        timeout=120,
    )
    if init.returncode != 0:
        raise MissingToolError(f"initdb failed: {init.stderr[-1500:]}", hint=_INSTALL)
    port = _proc.free_port()
    service = _proc.start(
        name="postgres",
        argv=[
            *as_owner,
            str(bindir / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-h",
            _proc.LOOPBACK,
            "-k",
            str(home),
            "-c",
            "fsync=off",
        ],
        env=env,
        log=home / "postgres.log",
        cwd=home,
        port=port,
    )
    ready = _proc.wait_for(service, lambda: _accepts(home, port, password, bindir), timeout)
    if not ready:
        service.stop()
        raise MissingToolError(f"PostgreSQL did not start: {service.log_tail()}", hint=_INSTALL)
    created = _proc.run(
        [
            _psql(bindir),
            "-h",
            _proc.LOOPBACK,
            "-p",
            str(port),
            "-U",
            user,
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            f'CREATE DATABASE "{database}"',
        ],
        env={**env, "PGPASSWORD": password},
        timeout=60,
    )
    if created.returncode != 0:
        service.stop()
        raise MissingToolError(f"creating the database failed: {created.stderr}", hint=_INSTALL)
    return Postgres(service, password, user, database)


def _proc_path(bindir: Path) -> str:
    return f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}"


def _psql(bindir: Path) -> str:
    local = bindir / "psql"
    return str(local) if local.exists() else shutil.which("psql") or "psql"


def _accepts(home: Path, port: int, password: str, bindir: Path) -> bool:
    ready = bindir / "pg_isready"
    if not ready.exists():
        return (home / f".s.PGSQL.{port}").exists()
    result = _proc.run(
        [str(ready), "-h", _proc.LOOPBACK, "-p", str(port), "-q"],
        env={"PATH": "/usr/bin:/bin"},
        timeout=10,
    )
    return result.returncode == 0
