"""Signed tokens for the links in emails and the CSRF field of forms.

A token is an itsdangerous ``URLSafeTimedSerializer`` signature over a
subscriber's random ``key`` (never the address: a forwarded email or a proxy log
must not reveal who subscribes; never the id, which SQLite used to hand out again
once its row was deleted). Keys are never reused, so a removed subscriber's link
names nobody. Each purpose signs with its own salt, so a token minted for one
link is refused by every other route.

Links in emails sent before keys existed signed the integer id. :meth:`Tokens.read`
still reads them, with the time they were signed, and newsletter.consent decides
what they may still do.

Lifetimes follow what each link is for:

- ``confirm`` expires after 7 days: a stale sign-up should start over;
- ``unsubscribe`` and ``preferences`` never expire: they sit in every digest,
  and RFC 8058 expects the one-click link of an old email to keep working;
- ``csrf`` expires after a day: long enough for a form left open in a tab.

The secret comes from the environment variable named by ``site.secret_key_env``;
without one, a random key is generated once into ``data_dir/secret.key`` and read
back by every process that shares that folder.

::

    FeedsvcError
    └── TokenError        the token cannot be trusted; the web turns it into a friendly page
        ├── InvalidToken      tampered, truncated, another purpose, or another key
        └── ExpiredToken      genuine but past its purpose's lifetime
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

from feedsvc.config import Config
from feedsvc.errors import ConfigError, FeedsvcError
from feedsvc.model import Subscriber

KEY_FILE = "secret.key"
MIN_SECRET_LENGTH = 16


class Purpose(StrEnum):
    """What a token authorizes; the value is its salt and, for links, its URL path."""

    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"
    CSRF = "csrf"


MAX_AGE: dict[Purpose, timedelta | None] = {
    Purpose.CONFIRM: timedelta(days=7),
    Purpose.UNSUBSCRIBE: None,
    Purpose.PREFERENCES: None,
    Purpose.CSRF: timedelta(days=1),
}


@dataclass(frozen=True, slots=True)
class LinkRef:
    """Whom a link token names: a subscriber's key, or (an old link) its id; and when signed."""

    key: str | None
    legacy_id: int | None
    signed_at: datetime


class TokenError(FeedsvcError):
    """A token that cannot be trusted."""


class InvalidToken(TokenError):
    """The signature does not match: tampered, truncated, or made for another purpose."""


class ExpiredToken(TokenError):
    """A genuine token older than its purpose allows."""


class Tokens:
    """Mints and checks the tokens of every purpose with one secret."""

    def __init__(self, secret: str | bytes) -> None:
        self._serializers = {
            purpose: URLSafeTimedSerializer(secret, salt=f"feedsvc.{purpose.value}")
            for purpose in Purpose
        }

    @classmethod
    def from_config(cls, config: Config) -> Tokens:
        return cls(secret_key(config))

    def dumps(self, purpose: Purpose, value: int | str) -> str:
        """Sign ``value`` for ``purpose``; the result is safe in a URL path."""
        return self._serializers[purpose].dumps(value)

    def loads(self, purpose: Purpose, token: str) -> object:
        """The signed value, if ``token`` is genuine, of this purpose, and not expired.

        Raises:
            ExpiredToken: the signature is good but the token is too old.
            InvalidToken: anything else wrong with it.
        """
        return self._loads(purpose, token)[0]

    def _loads(self, purpose: Purpose, token: str) -> tuple[object, datetime]:
        max_age = MAX_AGE[purpose]
        seconds = int(max_age.total_seconds()) if max_age is not None else None
        try:
            value, signed_at = self._serializers[purpose].loads(
                token, max_age=seconds, return_timestamp=True
            )
        except SignatureExpired as exc:
            raise ExpiredToken(f"this {purpose.value} link has expired") from exc
        except BadData as exc:
            raise InvalidToken(f"this {purpose.value} link is not valid") from exc
        return value, signed_at.astimezone(UTC)

    def subscriber_token(self, purpose: Purpose, subscriber: Subscriber) -> str:
        """The token of ``subscriber``'s link for ``purpose``: it names the subscriber's key."""
        if not subscriber.key:
            raise ValueError(f"subscriber {subscriber.id} has no key")
        return self.dumps(purpose, subscriber.key)

    def read(self, purpose: Purpose, token: str) -> LinkRef:
        """Whom a link token names (see :meth:`loads` for what it raises)."""
        value, signed_at = self._loads(purpose, token)
        if isinstance(value, str):
            return LinkRef(value, None, signed_at)
        if isinstance(value, int) and not isinstance(value, bool):
            return LinkRef(None, value, signed_at)
        # Only a holder of the key could sign this; refuse it rather than guess.
        raise InvalidToken(f"this {purpose.value} link does not name a subscriber")

    def link(self, base_url: str, purpose: Purpose, subscriber: Subscriber) -> str:
        """``{base_url}/{purpose}/{token}``: the confirm, unsubscribe or preferences URL."""
        token = self.subscriber_token(purpose, subscriber)
        return f"{base_url.rstrip('/')}/{purpose.value}/{token}"

    def csrf_pair(self) -> tuple[str, str]:
        """A fresh ``(cookie value, form field value)`` for a double-submit CSRF check."""
        nonce = secrets.token_urlsafe(24)
        return nonce, self.dumps(Purpose.CSRF, nonce)

    def csrf_field(self, nonce: str) -> str:
        """The form field value that matches the cookie value ``nonce``."""
        return self.dumps(Purpose.CSRF, nonce)

    def csrf_matches(self, field: str | None, nonce: str | None) -> bool:
        """Whether a POST's field is a genuine, fresh signature of its cookie's value."""
        if not field or not nonce:
            return False
        try:
            signed = self.loads(Purpose.CSRF, field)
        except TokenError:
            return False
        return isinstance(signed, str) and hmac.compare_digest(signed, nonce)


def secret_key(config: Config) -> bytes:
    """The signing secret: ``$site.secret_key_env`` if set, else the shared key file.

    Raises:
        ConfigError: the variable is set but too short to be a secret.
    """
    name = config.site.secret_key_env
    value = os.environ.get(name)
    if value:
        if len(value) < MIN_SECRET_LENGTH:
            raise ConfigError(
                [f"${name}: a secret key needs at least {MIN_SECRET_LENGTH} characters"]
            )
        return value.encode()
    return key_file(config.data_path / KEY_FILE)


def key_file(path: Path) -> bytes:
    """Read the key at ``path``, creating it first if no process has yet.

    Processes that start together must end up with the same key, so the new key is
    written to a private temporary file and hard-linked into place: the link
    either appears whole or fails because another process won, and everyone then
    reads back the one that is there.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _create_key(path)
    key = path.read_bytes().strip()
    if len(key) < MIN_SECRET_LENGTH:
        raise ConfigError(
            [f"{path}: the secret key is empty or too short; delete it to make a new one"]
        )
    return key


def _create_key(path: Path) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(secrets.token_urlsafe(48) + "\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process created it first; its key is the one
    finally:
        temporary.unlink(missing_ok=True)
