"""The operator console's own rows: sign-in attempts, sessions, and the log of what was done.

Attempts are counted here, in the database every process shares, so N processes
behind one address allow the limit once, not N times. An attempt is written
(``checking``) and committed *before* it is counted and its password checked:
of two attempts at the same moment, the later one to commit sees the earlier, so
no interleaving lets more than the limit through. A refused attempt is not
counted against later ones: whoever waits out the window gets in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, func, select, update

from feedsvc.store.engine import reading, writing
from feedsvc.store.schema import admin_attempts, admin_events, admin_sessions

KEEP_ATTEMPTS = timedelta(days=1)
"""Attempts older than this are deleted as new ones come: far beyond any window."""
_COUNTED = ("checking", "failed")


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``count`` failed sign-in attempts in any ``window``."""

    count: int
    window: timedelta


@dataclass(frozen=True, slots=True)
class Session:
    id: str  # a hash of the cookie's secret
    client: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Event:
    """One thing done in the console: who (session, client), what, to what."""

    at: datetime
    session: str
    client: str
    action: str
    target: str
    detail: str | None = None
    id: int = 0


class ConsoleStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def attempt(self, client: str, now: datetime, per_client: Limit, overall: Limit) -> int | None:
        """Record a sign-in attempt from ``client``; its id when within both limits, else
        None (the attempt is then recorded as refused and counts for nothing)."""
        with writing(self._engine) as conn:
            conn.execute(delete(admin_attempts).where(admin_attempts.c.at < now - KEEP_ATTEMPTS))
            attempt_id = conn.execute(
                admin_attempts.insert()
                .values(at=now, client=client, outcome="checking")
                .returning(admin_attempts.c.id)
            ).scalar_one()
        counted = admin_attempts.c.outcome.in_(_COUNTED)
        mine = select(func.count()).where(
            counted,
            admin_attempts.c.client == client,
            admin_attempts.c.at > now - per_client.window,
        )
        anyone = select(func.count()).where(counted, admin_attempts.c.at > now - overall.window)
        with reading(self._engine) as conn:
            too_many = (
                conn.execute(mine).scalar_one() > per_client.count
                or conn.execute(anyone).scalar_one() > overall.count
            )
        if not too_many:
            return int(attempt_id)
        self.settle(attempt_id, "refused")
        return None

    def settle(self, attempt_id: int, outcome: str) -> None:
        """How the attempt ended: ``ok``, ``failed`` (counts from now on) or ``refused``."""
        with writing(self._engine) as conn:
            conn.execute(
                update(admin_attempts)
                .where(admin_attempts.c.id == attempt_id)
                .values(outcome=outcome)
            )

    def retry_at(self, client: str, now: datetime, per_client: Limit) -> datetime:
        """When the client's oldest counted attempt leaves its window (a refusal's Retry-After)."""
        query = select(func.min(admin_attempts.c.at)).where(
            admin_attempts.c.outcome.in_(_COUNTED),
            admin_attempts.c.client == client,
            admin_attempts.c.at > now - per_client.window,
        )
        with reading(self._engine) as conn:
            oldest = conn.execute(query).scalar_one_or_none()
        return (oldest if isinstance(oldest, datetime) else now) + per_client.window

    def open_session(self, session: Session) -> None:
        with writing(self._engine) as conn:
            conn.execute(
                delete(admin_sessions).where(admin_sessions.c.expires_at < session.created_at)
            )
            conn.execute(
                admin_sessions.insert().values(
                    id=session.id,
                    client=session.client,
                    created_at=session.created_at,
                    expires_at=session.expires_at,
                )
            )

    def session(self, session_id: str, now: datetime) -> Session | None:
        """The session, unless it expired or was signed out of."""
        query = select(admin_sessions).where(
            admin_sessions.c.id == session_id,
            admin_sessions.c.ended_at.is_(None),
            admin_sessions.c.expires_at > now,
        )
        with reading(self._engine) as conn:
            row = conn.execute(query).first()
        return Session(row.id, row.client, row.created_at, row.expires_at) if row else None

    def end_session(self, session_id: str, now: datetime) -> None:
        with writing(self._engine) as conn:
            conn.execute(
                update(admin_sessions).where(admin_sessions.c.id == session_id).values(ended_at=now)
            )

    def log(self, event: Event) -> None:
        with writing(self._engine) as conn:
            conn.execute(
                admin_events.insert().values(
                    at=event.at,
                    session=event.session,
                    client=event.client,
                    action=event.action,
                    target=event.target,
                    detail=event.detail,
                )
            )

    def events(self, *, before: int | None = None, limit: int = 100) -> list[Event]:
        """The log, newest first; ``before`` an event id, for the next page."""
        query = select(admin_events).order_by(admin_events.c.id.desc()).limit(limit)
        if before is not None:
            query = query.where(admin_events.c.id < before)
        with reading(self._engine) as conn:
            return [
                Event(r.at, r.session, r.client, r.action, r.target, r.detail, r.id)
                for r in conn.execute(query)
            ]
