"""What an operator does to a source at run time, the same from the console and the CLI.

config.yaml says which sources exist; these change how the running service treats
one of them, in the database, so every process sharing it sees the change at its
next claim. config.yaml is never edited.

- **pause** / **resume**: a paused source is never claimed, by any process, until it
  is resumed (``store.sources.claim``). Its poll health stays as it was: resuming
  shows it again, and alerts keep judging it by its last poll.
- **poll now** makes the source due at once; the poll tick of a running service
  (every 15 s) takes it. The request that asked does not wait for the fetch. A
  retired (410) source stays retired, and a server's Retry-After holds, as for
  ``feedsvc poll`` without ``--force``.
- **forget the moved URL**: back to the configured URL after permanent redirects,
  as if new there (validators, errors and a 410 forgotten), due at once.

::

    FeedsvcError
    └── OperateError    the action cannot be done to this source; says why
"""

from __future__ import annotations

import logging
from datetime import datetime
from enum import StrEnum

from feedsvc.errors import FeedsvcError
from feedsvc.model import Source, SourceStatus
from feedsvc.store import Store

log = logging.getLogger("feedsvc.operate")


class OperateError(FeedsvcError):
    """The action cannot be done to this source (unknown, paused, retired, not moved)."""


class Done(StrEnum):
    """What an action did, as the CLI prints it and the console reports it."""

    PAUSED = "paused"
    ALREADY_PAUSED = "already paused"
    RESUMED = "resumed"
    NOT_PAUSED = "not paused"
    QUEUED = "queued for the next poll"
    RESTARTED = "back to its configured URL, queued for the next poll"


def pause(store: Store, source_id: str, *, by: str, now: datetime) -> Done:
    """Stop polling the source, in every process, until it is resumed."""
    source = known(store, source_id)
    if source.paused_at is not None:
        return Done.ALREADY_PAUSED
    store.sources.set_pause(source.id, now, by)
    log.info("source paused", extra={"fields": {"source": source.id, "by": by}})
    return Done.PAUSED


def resume(store: Store, source_id: str, *, by: str) -> Done:
    """Poll the source again on its schedule (at once if its next poll has passed)."""
    source = known(store, source_id)
    if source.paused_at is None:
        return Done.NOT_PAUSED
    store.sources.set_pause(source.id, None, None)
    log.info("source resumed", extra={"fields": {"source": source.id, "by": by}})
    return Done.RESUMED


def poll_now(store: Store, source_id: str, *, now: datetime) -> Done:
    """Queue the source for the next poll tick.

    Raises:
        OperateError: it is paused (resume it first) or retired (410: forget the
            moved URL, or ``feedsvc poll --force``).
    """
    source = known(store, source_id)
    if source.paused_at is not None:
        raise OperateError(f"source {source.id} is paused: resume it to poll it")
    if source.status is SourceStatus.RETIRED:
        raise OperateError(
            f"source {source.id} is retired (410 Gone): forget its moved URL, or"
            " run feedsvc poll --force"
        )
    store.sources.due_now(source.id, now)
    return Done.QUEUED


def forget_moved_url(store: Store, source_id: str, *, now: datetime) -> Done:
    """Go back to the URL in config.yaml, as if new there.

    Raises:
        OperateError: the source has not moved (its URL is the configured one).
    """
    source = known(store, source_id)
    if source.url == source.config_url:
        raise OperateError(f"source {source.id} has not moved: it is at its configured URL")
    store.sources.restart(source.id, now)
    log.info(
        "source moved back",
        extra={"fields": {"source": source.id, "from": source.url, "to": source.config_url}},
    )
    return Done.RESTARTED


def known(store: Store, source_id: str) -> Source:
    """The stored source; OperateError if there is none (or it left config.yaml)."""
    found = store.sources.list([source_id], count=False)
    if not found or not found[0].active:
        raise OperateError(f"no source {source_id!r} in config.yaml")
    return found[0]
