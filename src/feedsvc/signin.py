"""Signing in to the operator console: the password hash, the limits, the sessions, the log.

There is one password; its argon2id hash (argon2-cffi, RFC 9106 parameters) sits in the
environment variable that ``http.admin_password_env`` names, printed by ``feedsvc admin
hash-password``. The password itself is never stored or logged.

- **Attempts are limited in the database** (``store.console``): at most
  ``PER_CLIENT`` failed attempts per client address and ``OVERALL`` from everyone
  (one account: a guesser with many addresses is held back too), counted by every
  process alike. A refused attempt is not checked at all.
- **A session** is a random secret in the browser's cookie; the database keeps
  only its SHA-256 (``Session.id``), with an expiry (``LIFETIME``) and the time it
  was signed out. The cookie also carries a fingerprint of the password hash, so a
  new password ends every session made with the old one.
- **The log** records every action with the session (the start of its id) and the
  client address: who and what, never a subscriber's address.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError

from feedsvc.config import Config
from feedsvc.store import Store
from feedsvc.store.console import Event, Limit, Session

log = logging.getLogger("feedsvc.signin")

PER_CLIENT = Limit(10, timedelta(minutes=15))
OVERALL = Limit(100, timedelta(minutes=15))
LIFETIME = timedelta(hours=8)
HANDLE = 12  # characters of a session's id that the log shows
_hasher = PasswordHasher()


class Outcome(StrEnum):
    SIGNED_IN = "signed in"
    WRONG = "wrong password"
    LIMITED = "too many attempts"


@dataclass(frozen=True, slots=True)
class SignIn:
    outcome: Outcome
    token: str | None = None  # the cookie's value, signed in
    retry_at: datetime | None = None  # limited: when to try again


@dataclass(frozen=True, slots=True)
class Operator:
    """Who is signed in: the session, and where it signed in from."""

    session: Session

    @property
    def handle(self) -> str:
        return self.session.id[:HANDLE]


def hash_password(password: str) -> str:
    """The hash to put in ``http.admin_password_env`` (argon2id, a fresh salt)."""
    return _hasher.hash(password)


def is_hash(value: str) -> bool:
    """Whether ``value`` is an argon2 hash this module can check a password against."""
    try:
        extract_parameters(value.strip())
    except InvalidHashError:
        return False
    return True


def stored_hash(config: Config, environ: Mapping[str, str] = os.environ) -> str | None:
    """The configured hash, or None when the variable is unset or holds no hash."""
    value = environ.get(config.http.admin_password_env, "").strip()
    return value if value and is_hash(value) else None


def sign_in(
    store: Store, password_hash: str, password: str, *, client: str, now: datetime
) -> SignIn:
    """Check ``password`` within the limits; a new session when it is right."""
    attempt = store.console.attempt(client, now, PER_CLIENT, OVERALL)
    if attempt is None:
        log.warning("sign-in refused", extra={"fields": {"client": client}})
        return SignIn(Outcome.LIMITED, retry_at=store.console.retry_at(client, now, PER_CLIENT))
    right = _verify(password_hash, password)
    store.console.settle(attempt, "ok" if right else "failed")
    if not right:
        log.warning("sign-in failed", extra={"fields": {"client": client}})
        return SignIn(Outcome.WRONG)
    secret = secrets.token_urlsafe(32)
    session = Session(_session_id(secret), client, now, now + LIFETIME)
    store.console.open_session(session)
    log.info("signed in", extra={"fields": {"client": client, "session": session.id[:HANDLE]}})
    return SignIn(Outcome.SIGNED_IN, token=f"{secret}.{_fingerprint(password_hash)}")


def operator(store: Store, password_hash: str, token: str, now: datetime) -> Operator | None:
    """Who ``token`` (a genuine cookie value) signs in, or None: signed out, expired, or
    made with another password."""
    secret, _, fingerprint = token.rpartition(".")
    if not secret or not hmac.compare_digest(fingerprint, _fingerprint(password_hash)):
        return None
    session = store.console.session(_session_id(secret), now)
    return Operator(session) if session else None


def sign_out(store: Store, who: Operator, *, client: str, now: datetime) -> None:
    store.console.end_session(who.session.id, now)
    record(store, who, client, "sign out", "console", now=now)


def record(
    store: Store,
    who: Operator | None,
    client: str,
    action: str,
    target: str,
    *,
    now: datetime,
    detail: str | None = None,
) -> None:
    """Log what an operator did from ``client`` (``who`` None: before signing in)."""
    handle = who.handle if who else "-"
    store.console.log(Event(now, handle, client, action, target, detail))
    fields = {"session": handle, "client": client, "action": action, "target": target}
    log.info("console action", extra={"fields": fields | ({"detail": detail} if detail else {})})


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _session_id(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _fingerprint(password_hash: str) -> str:
    """16 hex characters naming the password hash (not enough to guess anything from)."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]
