"""A throwaway PostgreSQL server for the tests and the benchmarks.

:func:`postgres_server` runs Debian's ``initdb`` into a temporary folder, starts the server on
127.0.0.1 at a free port (its unix socket in that folder, password authentication with a
random password), and stops and removes it at the end. ``initdb`` refuses to run as root, so
as root the server runs as the ``postgres`` system user that Debian's package creates. When
``FEDRISK_TEST_POSTGRES_URL`` is set (a SQLAlchemy URL whose user may create databases),
that server is used instead and nothing is started. :meth:`PostgresServer.fresh_database`
gives each test (or benchmark) a database of its own.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

__all__ = [
    "NOT_INSTALLED",
    "URL_VARIABLE",
    "PostgresServer",
    "PostgresUnavailableError",
    "postgres_server",
]

URL_VARIABLE = "FEDRISK_TEST_POSTGRES_URL"
NOT_INSTALLED = "PostgreSQL is not installed: apt-get install postgresql (.ci/run does this)"

#: The unprivileged account that runs the server when we are root (Debian's package makes it).
_SERVER_USER = "postgres"
_START_TIMEOUT_S = 60
#: Settings for a throwaway server: no crash safety (tests), or the defaults (benchmarks).
_NOT_DURABLE = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class PostgresUnavailableError(RuntimeError):
    """No PostgreSQL server could be found or started; the message says what to do."""


@dataclass(frozen=True)
class PostgresServer:
    """A running server, reached as a user that may create databases."""

    url: URL  # its maintenance database (``postgres``)

    @contextmanager
    def fresh_database(self, *, prefix: str = "fedrisk_test") -> Iterator[str]:
        """Create an empty database, yield its SQLAlchemy URL, drop it (and its sessions)."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self._admin(f'CREATE DATABASE "{name}"')
        try:
            yield self.url.set(database=name).render_as_string(hide_password=False)
        finally:
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _admin(self, statement: str) -> None:
        engine = create_engine(self.url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(statement)
        finally:
            engine.dispose()


@contextmanager
def postgres_server(*, durable: bool = False) -> Iterator[PostgresServer]:
    """The server named by ``FEDRISK_TEST_POSTGRES_URL``, or a fresh one for the duration.

    ``durable`` keeps PostgreSQL's crash-safe defaults (fsync on every commit), as the
    benchmarks need; tests run faster without them. Raises :class:`PostgresUnavailableError`
    when the binaries are missing or the server does not start.
    """
    given = os.environ.get(URL_VARIABLE)
    if given:
        yield PostgresServer(make_url(given))
        return
    bindir = _bindir()
    folder = Path(tempfile.mkdtemp(prefix="fedrisk-pg-"))
    try:
        server = _start(bindir, folder, durable=durable)
        try:
            yield server
        finally:
            _stop(bindir, folder / "data")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _bindir() -> Path:
    """Debian's newest ``/usr/lib/postgresql/<major>/bin``, else ``initdb`` on the PATH."""
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if found:
        newest = max(found, key=lambda p: [int(n) for n in re.findall(r"\d+", p)])
        bindir = Path(newest).parent
    elif on_path := shutil.which("initdb"):
        bindir = Path(on_path).parent
    else:
        raise PostgresUnavailableError(NOT_INSTALLED)
    if not (bindir / "pg_ctl").is_file():
        raise PostgresUnavailableError(f"{NOT_INSTALLED} ({bindir} has initdb but no pg_ctl)")
    return bindir


def _start(bindir: Path, folder: Path, *, durable: bool) -> PostgresServer:
    password = secrets.token_urlsafe(18)
    pwfile = folder / "password"
    pwfile.write_text(password + "\n", encoding="ascii")
    pwfile.chmod(0o600)
    _hand_to_server_user(folder, pwfile)
    data = folder / "data"
    _run(
        [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=scram-sha-256",
         f"--pwfile={pwfile}", "-E", "UTF8", "--no-locale", "--no-sync"]
    )  # fmt: skip
    pwfile.unlink()
    for attempt in range(3):  # a free port can be taken between finding and binding it
        port = _free_port()
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(port),
            "unix_socket_directories": f"'{folder}'",
            **({} if durable else _NOT_DURABLE),
        }
        with (data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        log = folder / f"server-{attempt}.log"
        try:
            _run(
                [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w",
                 "-t", str(_START_TIMEOUT_S), "start"]
            )  # fmt: skip
        except PostgresUnavailableError as exc:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            if attempt == 2 or "could not bind" not in tail:
                raise PostgresUnavailableError(f"{exc}\nserver log:\n{tail}") from exc
            continue
        url = URL.create(
            "postgresql+psycopg",
            username="postgres",
            password=password,
            host="127.0.0.1",
            port=port,
            database="postgres",
        )
        return PostgresServer(url)
    raise AssertionError("unreachable")


def _stop(bindir: Path, data: Path) -> None:
    """Stop the server at once (its files are about to go); a server already gone is fine."""
    with suppress(PostgresUnavailableError):
        _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])


def _hand_to_server_user(folder: Path, *paths: Path) -> None:
    """As root, give ``folder`` (and ``paths`` in it) to the ``postgres`` user."""
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam(_SERVER_USER)
    except KeyError:
        raise PostgresUnavailableError(
            f"initdb refuses to run as root and there is no {_SERVER_USER!r} user to run it "
            f"as; {NOT_INSTALLED}"
        ) from None
    for path in (folder, *paths):
        os.chown(path, user.pw_uid, user.pw_gid)


def _run(command: Sequence[str]) -> None:
    """Run a PostgreSQL tool, as the ``postgres`` user when we are root."""
    if os.geteuid() == 0:
        command = ["runuser", "-u", _SERVER_USER, "--", *command]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        name = Path(command[4 if command[0] == "runuser" else 0]).name
        raise PostgresUnavailableError(
            f"{name} failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()}"
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
