"""What the service needs of this machine beyond a valid config.yaml, checked before it starts.

:func:`feedsvc.config.load` checks the file on its own; this module checks the
file against the machine: the secret key, the database driver, folders that must
be writable, the SMTP password variable, the console's password hash, the DKIM key,
the HTTP address. It is the one home of these rules, so that ``feedsvc check``
reports exactly what ``feedsvc run`` refuses:

- ``check`` prints every :class:`Finding` (:func:`inspect`);
- ``run``, ``serve`` and a config reload refuse the errors (:func:`require`);
- a port that cannot be bound is only a warning for ``check``, since it may be
  free when the service starts; ``run`` and ``serve`` bind it for real first
  (:func:`listen`), before anything starts or logs ``started``.

Each finding points at the line of config.yaml to change (``file:line``).
"""

from __future__ import annotations

import errno
import os
import socket
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from feedsvc.config import Config
from feedsvc.errors import ConfigError
from feedsvc.newsletter.signing import load_signer
from feedsvc.newsletter.tokens import KEY_FILE, MIN_SECRET_LENGTH

Environ = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: ``where`` is ``file:line``; a warning is printed but fails nothing."""

    where: str
    message: str
    warning: bool = False

    @property
    def text(self) -> str:
        return f"{self.where}: {self.message}"

    def __str__(self) -> str:
        return f"{self.where}: warning: {self.message}" if self.warning else self.text


def inspect(config: Config, environ: Environ = os.environ, *, port: bool = True) -> list[Finding]:
    """Every finding for ``config`` on this machine, in the order of the file's lines.

    Args:
        environ: the environment the service will run with.
        port: also try to bind ``http.host``:``http.port`` (a warning if it fails).
    """
    checks: list[Callable[[Config, Environ], Iterator[Finding]]] = [
        _secret_key,
        _storage,
        _folders,
        _smtp_password,
        _admin_password,
        _dkim_key,
        _base_url,
        _templates,
    ]
    found = [finding for check in checks for finding in check(config, environ)]
    if port:
        found += _port(config)
    return sorted(found, key=lambda finding: _line(finding.where))


def require(config: Config, environ: Environ = os.environ) -> list[Finding]:
    """The warnings for ``config``, once no error stands in the way of running it.

    Raises:
        ConfigError: with one ``file:line: message`` per error.
    """
    found = inspect(config, environ, port=False)
    errors = [finding.text for finding in found if not finding.warning]
    if errors:
        raise ConfigError(errors)
    return found


def listen(config: Config) -> list[socket.socket]:
    """Sockets bound to ``http.host``:``http.port`` and listening, for the HTTP server.

    Raises:
        ConfigError: the address cannot be bound (in use, not on this machine…).
    """
    bound = _bind(config)
    if isinstance(bound, Finding):
        raise ConfigError([bound.text])
    return bound


def _line(where: str) -> int:
    number = where.rsplit(":", 1)[-1]
    return int(number) if number.isdigit() else 0


def _secret_key(config: Config, environ: Environ) -> Iterator[Finding]:
    """The rule of :func:`feedsvc.newsletter.tokens.secret_key`, without making a key file."""
    name = config.site.secret_key_env
    value = environ.get(name)
    if value:
        if len(value) < MIN_SECRET_LENGTH:
            yield Finding(
                config.where("site", "secret_key_env"),
                f"site.secret_key_env: ${name} has {len(value)} characters;"
                f" a secret key needs at least {MIN_SECRET_LENGTH}",
            )
        return
    path = config.data_path / KEY_FILE
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        return  # the first process to need it makes it
    except OSError as exc:
        yield Finding(config.where("data_dir"), f"data_dir: cannot read {path}: {exc.strerror}")
        return
    if len(key) < MIN_SECRET_LENGTH:
        yield Finding(
            config.where("data_dir"),
            f"data_dir: {path}: the secret key is empty or too short; delete it to make a new one",
        )


def _storage(config: Config, environ: Environ) -> Iterator[Finding]:
    """A database URL whose dialect or driver cannot be loaded (SQLite needs none)."""
    from feedsvc.store.engine import create  # SQLAlchemy only when there is a URL to try

    url = config.database_url
    if url.startswith("sqlite"):
        return
    try:
        create(url).dispose()  # loads the dialect and imports its driver; connects to nothing
    except ImportError as exc:
        reason = f"the database driver is not installed ({exc})"
    except Exception as exc:  # SQLAlchemy's own: an unknown dialect, a malformed URL
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    else:
        return
    yield Finding(config.where("storage", "url"), f"storage.url: {reason}")


def _folders(config: Config, environ: Environ) -> Iterator[Finding]:
    """Folders the service writes to: data_dir, the outbox, a SQLite file's folder."""
    folders: list[tuple[tuple[str, ...], Path]] = [(("data_dir",), config.data_path)]
    if config.mail.backend == "outbox":
        folders.append((("mail", "outbox_dir"), config.outbox_path))
    database = _sqlite_file(config.database_url)
    if database is not None:
        folders.append((("storage", "url"), database.parent))
    failed: list[Path] = []
    for loc, folder in folders:
        if any(folder.is_relative_to(bad) for bad in failed):
            continue  # one message per cause
        problem = _unwritable(folder)
        if problem:
            failed.append(folder)
            yield Finding(
                config.where(*loc), f"{'.'.join(loc)}: cannot write to {folder}: {problem}"
            )


def _sqlite_file(url: str) -> Path | None:
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return None
    database = url[len(prefix) :].split("?", 1)[0]
    return Path(database) if database and ":memory:" not in database else None


def _unwritable(folder: Path) -> str | None:
    """Why no file can be made in ``folder`` (created as the service would), or None.

    Tries it rather than asking ``os.access``, which answers yes to root on a
    read-only file system.
    """
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        return str(exc.strerror or exc)
    return None


def _smtp_password(config: Config, environ: Environ) -> Iterator[Finding]:
    variable = config.mail.smtp.password_env
    if config.mail.backend == "smtp" and variable and environ.get(variable) is None:
        yield Finding(
            config.where("mail", "smtp", "password_env"),
            f"mail.smtp.password_env: ${variable} is not set (mail.backend is smtp)",
        )


def _admin_password(config: Config, environ: Environ) -> Iterator[Finding]:
    """The console's password hash (``feedsvc.signin``): without it nobody can sign in."""
    from feedsvc.signin import is_hash  # argon2 only when the console is on

    variable = config.http.admin_password_env
    if not config.http.admin:
        return
    value = environ.get(variable, "").strip()
    if not value:
        problem = "is not set"
    elif not is_hash(value):
        problem = "does not hold a password hash (make one with `feedsvc admin hash-password`)"
    else:
        return
    yield Finding(config.where("http", "admin"), f"http.admin is true but ${variable} {problem}")


def _dkim_key(config: Config, environ: Environ) -> Iterator[Finding]:
    """The key file ``mail.dkim`` names, read and parsed as the senders will."""
    try:
        load_signer(config)
    except ConfigError as exc:
        for problem in exc.problems:
            message = problem.removeprefix(f"{config.path}: ")
            yield Finding(config.where("mail", "dkim", "private_key_file"), message)


def _base_url(config: Config, environ: Environ) -> Iterator[Finding]:
    if urlsplit(config.site.base_url).scheme != "https":
        yield Finding(
            config.where("site", "base_url"),
            "site.base_url is not https: one-click unsubscribe (RFC 8058) expects an HTTPS URL",
            warning=True,
        )


def _templates(config: Config, environ: Environ) -> Iterator[Finding]:
    """Every template, the newsroom's own first, rendered once with sample data."""
    from feedsvc import templates_loader

    for where, message in templates_loader.check(config):
        yield Finding(where, message)


def _port(config: Config) -> Iterator[Finding]:
    bound = _bind(config)
    if isinstance(bound, Finding):
        yield replace(bound, warning=True)
        return
    for sock in bound:
        sock.close()


# Why a bind failed, in the operator's words, and which key to change.
_BIND_REASONS = {
    errno.EADDRINUSE: ("port", "the port is in use (is feedsvc already running?)"),
    errno.EADDRNOTAVAIL: ("host", "the address is not on this machine"),
    errno.EACCES: ("port", "permission denied (ports below 1024 need privileges)"),
}


def _bind(config: Config) -> list[socket.socket] | Finding:
    """Bind every address ``http.host`` names, as asyncio's ``create_server`` would."""
    host, port = config.http.host, config.http.port
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        return Finding(
            config.where("http", "host"), f"http.host: cannot listen on {address}: {exc.strerror}"
        )
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, sockaddr in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(sockaddr)
            sock.listen()
    except OSError as exc:
        for sock in sockets:
            sock.close()
        key, reason = _BIND_REASONS.get(exc.errno or 0, ("port", str(exc.strerror or exc)))
        return Finding(
            config.where("http", key), f"http.{key}: cannot listen on {address}: {reason}"
        )
    return sockets
