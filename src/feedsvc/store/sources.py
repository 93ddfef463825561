"""Sources: syncing them from config.yaml, claiming due ones with a lease, recording
each poll's outcome.

A claim is a lease (``lease_owner``, ``lease_until``) taken in one statement, so
two processes never poll the same source at once; on PostgreSQL the candidate
rows are locked with ``FOR UPDATE SKIP LOCKED`` so concurrent claimers split the
work instead of queueing behind each other. The poller renews its leases while
it works; a process that dies leaves leases that expire, or that a claim on the
same host takes over at once (``feedsvc.lease``). Recording an outcome gives the
lease back only if it is still the recorder's, and adds a mark to the source's poll
history (its last ``POLL_HISTORY`` outcomes, for the console).

A paused source (``paused_at`` set, by ``ingest.operate``) is never claimed, by any
process: the pause is a column, not a process's memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    case,
    delete,
    func,
    literal,
    or_,
    select,
    update,
)

from feedsvc.lease import Holder
from feedsvc.model import Source, SourceStatus
from feedsvc.store.engine import any_row, insert, reading, writing
from feedsvc.store.schema import entries, poll_history, sources

POLL_HISTORY = 20
"""Poll outcomes kept per source: the console's strip of marks."""


def to_source(row: Any, entry_count: int = 0, *, show_pause: bool = False) -> Source:
    """A row as a ``Source``; with ``show_pause`` a paused one has the status ``paused``
    (its poll health stays in the row, for when it is resumed and for alerts)."""
    m = row._mapping  # keyed access costs a quarter of row.attribute; a claim reads thousands
    paused = show_pause and m["paused_at"] is not None
    return Source(
        id=m["id"],
        config_url=m["config_url"],
        url=m["url"],
        title=m["title"],
        status=SourceStatus.PAUSED if paused else SourceStatus(m["status"]),
        last_error=m["last_error"],
        error_count=m["error_count"],
        etag=m["etag"],
        last_modified=m["last_modified"],
        body_hash=m["body_hash"],
        first_polled_at=m["first_polled_at"],
        last_polled_at=m["last_polled_at"],
        next_poll_at=m["next_poll_at"],
        retry_after=m["retry_after"],
        warning=m["warning"],
        active=m["active"],
        entries=entry_count,
        paused_at=m["paused_at"],
        paused_by=m["paused_by"],
    )


class SourceStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def sync(self, configured: Iterable[tuple[str, str]], now: datetime) -> None:
        """Make the table match config.yaml's ``(id, url)`` pairs.

        A new source is due at once. A source whose configured URL changed starts
        over at that URL (the operator's word beats an old redirect or a 410).
        A source no longer configured is deactivated, not deleted: its entries
        stay until retention purges them.
        """
        wanted = dict(configured)
        with writing(self._engine) as conn:
            stored = {
                row.id: row.config_url
                for row in conn.execute(select(sources.c.id, sources.c.config_url))
            }
            for source_id, url in wanted.items():
                if source_id not in stored:  # another process may add it at the same moment
                    row = _fresh(source_id, url, now)
                    conn.execute(insert(conn, sources).values(row).on_conflict_do_nothing())
                elif stored[source_id] != url:
                    conn.execute(
                        update(sources)
                        .where(sources.c.id == source_id)
                        .values({**_fresh(source_id, url, now), "first_polled_at": None})
                    )
            conn.execute(
                update(sources)
                .where(sources.c.id.in_(list(wanted)))
                .where(sources.c.active.is_(False))
                .values(active=True, next_poll_at=now)
            )
            conn.execute(
                update(sources).where(sources.c.id.not_in(list(wanted))).values(active=False)
            )

    def claim(
        self,
        owner: str,
        now: datetime,
        lease: timedelta,
        *,
        ids: Sequence[str] | None = None,
        due_only: bool = True,
        force: bool = False,
        limit: int = 10_000,
        take_over: Sequence[str] = (),
    ) -> list[Source]:
        """Lease sources to ``owner`` and return them.

        Args:
            ids: only these sources (default: every active one).
            due_only: only those whose ``next_poll_at`` has come (the scheduler);
                ``feedsvc poll`` passes False to poll now.
            force: also retired sources and those a server's Retry-After holds back.
            take_over: owners (dead processes of this host) whose leases may be
                taken before they expire.
        """
        free = or_(sources.c.lease_until.is_(None), sources.c.lease_until < now)
        if take_over:
            free = or_(free, sources.c.lease_owner.in_(list(take_over)))
        conditions = [
            sources.c.active.is_(True),
            sources.c.paused_at.is_(None),
            free,
            or_(sources.c.lease_owner.is_(None), sources.c.lease_owner != owner),
        ]
        if ids is not None:
            conditions.append(sources.c.id.in_(list(ids)))
        if due_only:
            conditions.append(or_(sources.c.next_poll_at.is_(None), sources.c.next_poll_at <= now))
        if not force:
            conditions.append(sources.c.status != SourceStatus.RETIRED.value)
            conditions.append(or_(sources.c.retry_after.is_(None), sources.c.retry_after <= now))
        candidates = (
            select(sources.c.id)
            .where(and_(*conditions))
            .order_by(sources.c.next_poll_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        # One statement: the candidates as a subquery rather than a second round
        # trip with every claimed id as a parameter (2,000 of them in a busy tick).
        claim = (
            update(sources)
            .where(sources.c.id.in_(candidates.scalar_subquery()))
            .values(lease_owner=owner, lease_until=now + lease)
            .returning(*sources.c)
        )
        if not any_row(self._engine, select(sources.c.id).where(and_(*conditions))):
            return []  # most ticks find nothing due
        with writing(self._engine) as conn:
            return [to_source(row) for row in conn.execute(claim)]

    def holders(self, now: datetime) -> list[Holder]:
        """Who holds unexpired leases on sources, how many, until when."""
        query = (
            select(sources.c.lease_owner, func.count(), func.max(sources.c.lease_until))
            .where(sources.c.lease_until >= now, sources.c.lease_owner.is_not(None))
            .group_by(sources.c.lease_owner)
        )
        with reading(self._engine) as conn:
            return [Holder(owner, count, until) for owner, count, until in conn.execute(query)]

    def renew(self, owner: str, ids: Sequence[str], until: datetime) -> list[str]:
        """Extend ``owner``'s leases on ``ids`` to ``until``; return the ids still its own."""
        if not ids:
            return []
        with writing(self._engine) as conn:
            return list(
                conn.execute(
                    update(sources)
                    .where(sources.c.id.in_(list(ids)), sources.c.lease_owner == owner)
                    .values(lease_until=until)
                    .returning(sources.c.id)
                ).scalars()
            )

    def release(
        self,
        conn: Connection,
        source_id: str,
        values: dict[str, Any],
        owner: str | None,
        *,
        stored_new: bool = False,
    ) -> None:
        """Record a poll's outcome and give ``owner``'s lease back, inside the caller's
        transaction (a lease another process has taken over meanwhile stays its own).

        ``stored_new``: the poll stored new entries (its mark in the history says so).
        """
        conn.execute(
            update(sources).where(sources.c.id == source_id).values(**values, **_released(owner))
        )
        mark = _mark(values, stored_new)
        if mark is not None:
            _remember(conn, [(source_id, values["last_polled_at"], mark)])

    def record(self, source_id: str, values: dict[str, Any], owner: str | None = None) -> None:
        """Record an outcome that stored no entries (an error, a 304) in its own transaction."""
        with writing(self._engine) as conn:
            self.release(conn, source_id, values, owner)

    def record_many(
        self, outcomes: Sequence[tuple[str, dict[str, Any]]], owner: str | None = None
    ) -> None:
        """Record many outcomes (and release ``owner``'s leases) in one transaction."""
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for source_id, values in outcomes:
            columns = tuple(sorted(values))
            by_columns.setdefault(columns, []).append({"_id": source_id, **values})
        with writing(self._engine) as conn:
            for columns, rows in by_columns.items():
                statement = (
                    update(sources)
                    .where(sources.c.id == bindparam("_id"))
                    .values({name: bindparam(name) for name in columns} | _released(owner))
                )
                conn.execute(statement, rows)
            marks = [
                (source_id, values["last_polled_at"], mark)
                for source_id, values in outcomes
                if (mark := _mark(values, False)) is not None
            ]
            _remember(conn, marks)

    def list(self, ids: Sequence[str] | None = None, *, count: bool = True) -> list[Source]:
        """Every source (or those named), with its number of stored entries unless not
        ``count`` (the count reads every entry: a second on 1.8 million)."""
        counts = (
            select(entries.c.source_id, func.count().label("n"))
            .group_by(entries.c.source_id)
            .subquery()
        )
        query = (
            select(sources, func.coalesce(counts.c.n, 0).label("n"))
            .outerjoin(counts, counts.c.source_id == sources.c.id)
            .order_by(sources.c.active.desc(), sources.c.id)
        )
        if not count:
            query = select(sources, literal(0).label("n")).order_by(
                sources.c.active.desc(), sources.c.id
            )
        if ids is not None:
            query = query.where(sources.c.id.in_(list(ids)))
        with reading(self._engine) as conn:
            return [to_source(row, row.n, show_pause=True) for row in conn.execute(query)]

    def count_by_status(self) -> dict[SourceStatus, int]:
        """How many active sources are in each status (paused ones as ``paused``): one
        GROUP BY, cheap enough per scrape."""
        status = case(
            (sources.c.paused_at.is_not(None), SourceStatus.PAUSED.value), else_=sources.c.status
        )
        query = select(status, func.count()).where(sources.c.active.is_(True)).group_by(status)
        with reading(self._engine) as conn:
            return {SourceStatus(status): count for status, count in conn.execute(query)}

    def last_polled_at(self) -> datetime | None:
        """When any source was last polled (None: never); what /healthz calls the last poll."""
        with reading(self._engine) as conn:
            value = conn.execute(select(func.max(sources.c.last_polled_at))).scalar_one_or_none()
        return value if isinstance(value, datetime) else None

    def set_pause(self, source_id: str, paused_at: datetime | None, by: str | None) -> bool:
        """Pause (``paused_at`` a time) or resume (None) a source; False if there is none."""
        return self._change(source_id, {"paused_at": paused_at, "paused_by": by})

    def due_now(self, source_id: str, now: datetime) -> bool:
        """Make the source due at once: the next claim of any process polls it."""
        return self._change(source_id, {"next_poll_at": now})

    def restart(self, source_id: str, now: datetime) -> bool:
        """Back to the configured URL, as if it were new there (validators, errors and a
        410 forgotten), due at once; its entries and first poll time stay."""
        values = _fresh(source_id, "", now)
        for kept in ("id", "config_url", "url", "active"):
            del values[kept]
        return self._change(source_id, {**values, "url": sources.c.config_url})

    def _change(self, source_id: str, values: dict[str, Any]) -> bool:
        with writing(self._engine) as conn:
            result = conn.execute(update(sources).where(sources.c.id == source_id).values(values))
        return bool(result.rowcount)


def _mark(values: dict[str, Any], stored_new: bool) -> str | None:
    """What a recorded outcome says in the poll history; None when it was no poll (a
    lease given back unused)."""
    if "last_polled_at" not in values:
        return None
    if values.get("status") == SourceStatus.RETIRED.value:
        return "retired"
    if values.get("last_error"):
        return "error"
    return "new" if stored_new else "ok"


def _remember(conn: Connection, marks: Sequence[tuple[str, datetime, str]]) -> None:
    """Add poll marks and drop each source's marks beyond the newest ``POLL_HISTORY``."""
    if not marks:
        return
    conn.execute(
        poll_history.insert(), [{"source_id": s, "at": at, "outcome": m} for s, at, m in marks]
    )
    oldest_kept = (
        select(poll_history.c.id)
        .where(poll_history.c.source_id == bindparam("_source"))
        .order_by(poll_history.c.id.desc())
        .limit(1)
        .offset(POLL_HISTORY - 1)
        .scalar_subquery()
    )
    trim = delete(poll_history).where(
        poll_history.c.source_id == bindparam("_source"), poll_history.c.id < oldest_kept
    )
    conn.execute(
        trim, [{"_source": source_id} for source_id in dict.fromkeys(s for s, _, _ in marks)]
    )


def _fresh(source_id: str, url: str, now: datetime) -> dict[str, Any]:
    return {
        "id": source_id,
        "config_url": url,
        "url": url,
        "active": True,
        "status": SourceStatus.NEW.value,
        "error_count": 0,
        "last_error": None,
        "etag": None,
        "last_modified": None,
        "body_hash": None,
        "next_poll_at": now,
        "retry_after": None,
    }


def _released(owner: str | None) -> dict[str, Any]:
    """The lease columns after an outcome: cleared if ``owner`` holds the lease (or, with
    no owner given, whoever does)."""
    if owner is None:
        return {"lease_owner": None, "lease_until": None}
    mine = sources.c.lease_owner == owner
    return {
        "lease_owner": case((mine, None), else_=sources.c.lease_owner),
        "lease_until": case((mine, None), else_=sources.c.lease_until),
    }
